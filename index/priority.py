"""Writes yield the CPU to questions.

A server embeds written documents, and merges its parts, on threads of lower priority (a higher nice
value; on Linux niceness is a property of each thread). When both compete for the cores, the kernel
gives questions most of the time: an ask answered while documents stream in costs about what it costs
on an idle server, and a write takes longer only while questions keep the cores busy (bench/notes.md).
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)


def lower_this_thread(niceness: int) -> None:
    """Add `niceness` to the calling thread's nice value (0: leave it). It cannot be raised back without
    privileges, so only threads that do nothing but background work call this."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + niceness))
    except OSError as exc:  # a sandbox that forbids it: writes then run at the questions' priority
        log.warning("could not lower the priority of a writing thread: %s", exc)
