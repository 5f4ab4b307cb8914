"""Shards as Ray actors: R named replicas of each, restarted by Ray when their process dies, and the pool
the gateway calls them through, which goes to another replica when one does not answer.

Replicas of a shard serve one folder (shared storage: one host, or a network file system): a write is
committed by one of them and every replica takes it in before its next read (ShardServer's `shared`),
so a POST that returned is read by all. Calls go straight to the actors, one per shard per step: a hop
through Ray Serve's proxy would cost 4-10 ms of CPU per call, an actor call about 0.3 ms.
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from citeqa.cluster.shard import ShardServer
from citeqa.index.errors import DocumentNotFound
from citeqa.index.sharding import ShardMap

log = logging.getLogger(__name__)

NAMESPACE = "citeqa"
FAILOVER_S = 60.0  # how long a call keeps trying other replicas (and restarted ones) before it fails
_GONE = (RayActorError, ActorDiedError, ActorUnavailableError)
# A write sent again after its replica died may have been done by that replica before it died: the error
# the retry then gets says so. A delete answered "no such document" on a retry has deleted it. (A put
# sent again replaces the document with itself, and needs no such rule.)
_APPLIED_IF: dict[str, type[Exception]] = {"delete": DocumentNotFound}


def actor_name(generation: str, shard: str, replica: int) -> str:
    return f"{generation}/{shard}/r{replica}"


def start(collection: Path, shard_map: ShardMap, replicas: int, generation: str, settings: dict,
          num_cpus: float = 0) -> list[list[Any]]:
    """The replicas of every shard (found when they run already, started when not), spread over the
    nodes. They reserve no CPU (`num_cpus`): a replica's use comes in bursts, and a reservation would cap
    replicas at the CPU count and starve an ingestion running beside them of its actors. They live as
    long as the process that started them (the gateway).
    Returns handles[shard][replica]."""
    cls = ray.remote(ShardServer)
    handles = []
    for shard in shard_map.shards:
        handles.append([cls.options(
            name=actor_name(generation, shard, r), namespace=NAMESPACE, get_if_exists=True, max_restarts=-1,
            max_concurrency=8, num_cpus=num_cpus, scheduling_strategy="SPREAD",
        ).remote(str(Path(collection).resolve() / shard), settings, replicas > 1) for r in range(replicas)])
    return handles


def stop(handles: list[list[Any]]) -> None:
    for replicas in handles:
        for h in replicas:
            ray.kill(h, no_restart=True)


class RayPool:
    """Calls shard actors; a replica that died or is restarting is passed over for the next one."""

    def __init__(self, handles: list[list[Any]], failover_s: float = FAILOVER_S):
        self.handles, self.failover_s = handles, failover_s
        self._turn = [itertools.cycle(range(len(r))) for r in handles]
        self.failovers = 0  # calls that went to another replica (the tests watch it)

    def _call(self, shard: int, replica: int, method: str, args: tuple):
        return getattr(self.handles[shard][replica], method).remote(*args)

    def _result(self, shard: int, replica: int, ref, method: str, args: tuple) -> Any:
        deadline = time.monotonic() + self.failover_s
        tried = 0
        while True:
            try:
                return ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except RayTaskError as exc:  # the shard's own error (a 404, a bad input): the caller's
                if tried and isinstance(exc.cause, _APPLIED_IF.get(method, ())):
                    return None  # the replica that died had done it (see _APPLIED_IF)
                raise exc.cause from None
            except (*_GONE, GetTimeoutError):
                if time.monotonic() >= deadline:
                    raise
            tried += 1
            self.failovers += 1
            replicas = len(self.handles[shard])
            replica = (replica + 1) % replicas
            if tried % replicas == 0:  # every replica failed once: give Ray time to restart one
                time.sleep(0.1)
            log.warning("shard %d: a replica did not answer %s; trying replica %d", shard, method, replica)
            ref = self._call(shard, replica, method, args)

    def fan(self, method: str, calls: dict[int, tuple]) -> dict[int, Any]:
        sent = {}
        for s, args in calls.items():
            replica = next(self._turn[s])
            sent[s] = (replica, self._call(s, replica, method, args), args)
        return {s: self._result(s, r, ref, method, args) for s, (r, ref, args) in sent.items()}

    def read(self, shard: int, method: str, *args) -> Any:
        return self.fan(method, {shard: args})[shard]

    def write(self, shard: int, method: str, *args) -> Any:
        """Committed by one replica; the others read it before their next answer (shared folder)."""
        return self.read(shard, method, *args)

    def ready(self) -> None:
        """Every replica of every shard answers (loaded): the gateway says ready only then."""
        ray.get([h.ping.remote() for replicas in self.handles for h in replicas])
