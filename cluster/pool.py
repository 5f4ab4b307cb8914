"""How the gateway reaches its shards: `fan` calls several shards at once and waits for all, `read` one,
`write` one shard's writer. `LocalPool` holds ShardServers in this process (tests, one machine);
`cluster/actors.py` has the Ray one, whose replicas fail over."""

from __future__ import annotations

from typing import Any, Protocol

from citeqa.cluster.shard import ShardServer


class Pool(Protocol):
    def fan(self, method: str, calls: dict[int, tuple]) -> dict[int, Any]: ...

    def read(self, shard: int, method: str, *args) -> Any: ...

    def write(self, shard: int, method: str, *args) -> Any: ...

    def ready(self) -> None: ...


class LocalPool:
    def __init__(self, servers: list[ShardServer]):
        self.servers = servers

    def fan(self, method: str, calls: dict[int, tuple]) -> dict[int, Any]:
        return {s: getattr(self.servers[s], method)(*args) for s, args in calls.items()}

    def read(self, shard: int, method: str, *args) -> Any:
        return getattr(self.servers[shard], method)(*args)

    def write(self, shard: int, method: str, *args) -> Any:
        return getattr(self.servers[shard], method)(*args)

    def ready(self) -> None:
        for server in self.servers:
            server.ping()
