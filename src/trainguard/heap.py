"""Keep the garbage collector off objects that live as long as the process (issue 18).

A process that imported torch holds millions of GC-tracked objects. Python's exit ends with a
full collection that visits each of them, and a worker forked by the agent's zygote visits the
zygote's copy on every full collection, writing to every page of it (copy-on-write faults).
On a shared 2-core machine that was most of the time from a job's last step to ``trainguard
run``'s exit, because the processes exit one after another: the workers (~5 s each, forked),
then the agent (~4.5 s), the MTC servers, then ``run`` itself (~3 s).

`freeze` moves every object tracked so far into the collector's permanent generation
(``gc.freeze``), which no collection visits again. Called where those objects stay alive
anyway, it changes nothing but the time: atexit handlers, module teardown and the finalizers
that reference counting triggers all still run; what is lost is only the collection of those
objects that are (or become) unreachable through reference cycles, and the operating system
reclaims them with the process.

* In the zygote and a hot spare, after the imports and before the worker's script runs (the
  fork Python's documentation recommends it for): the script's own objects are collected as
  in a fresh interpreter, the preloaded modules are never traversed again.
* At the end of our own processes (``trainguard`` commands, the agent): the final collection
  has nothing left to visit.
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Exempt every object tracked so far from all later collections, the final one included."""
    gc.freeze()
