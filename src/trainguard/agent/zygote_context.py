"""torch's process context with workers forked by the zygote instead of ``Popen``.

`ZygoteContext` is the agent's cold-start context (`trainguard.agent.workers.ColdContext`)
whose handlers override only ``_popen``: torch's handler still builds the argv and the
environment (``os.environ`` + the rank's variables) and opens the ``stdout.log``/``stderr.log``
files exactly as for a cold start; we hand those fds, the agent's stdin and cwd to
`trainguard.agent.zygote_client.Zygote.fork`. Log tee, error files, polling and ``close`` stay
torch's code. Handlers are registered one by one, so when the zygote fails on rank k the ranks
before it are in ``subprocess_handlers`` and ``close`` stops them before the agent starts the
whole group cold.
"""

from __future__ import annotations

import os
from typing import Any

from torch.distributed.elastic.multiprocessing.subprocess_handler import SubprocessHandler

from trainguard.agent.workers import ColdContext
from trainguard.agent.zygote_client import ForkedProcess, Zygote


class _ZygoteHandler(SubprocessHandler):
    """torch's handler, with the process forked by the zygote."""

    def __init__(self, zygote: Zygote, **kwargs: Any) -> None:
        self._zygote = zygote
        super().__init__(**kwargs)

    def _popen(self, args: tuple[Any, ...], env: dict[str, str]) -> Any:
        stdout = self._stdout.fileno() if self._stdout else 1
        stderr = self._stderr.fileno() if self._stderr else 2
        forked: ForkedProcess = self._zygote.fork(
            [str(a) for a in args], env=env, cwd=os.getcwd(), stdio=(0, stdout, stderr)
        )
        return forked


class ZygoteContext(ColdContext):
    """torch's process context whose workers the given zygote forks."""

    def __init__(self, *, zygote: Zygote, **kwargs: Any) -> None:
        self._zygote = zygote
        super().__init__(**kwargs)

    def _handler(self, **options: Any) -> SubprocessHandler:
        return _ZygoteHandler(self._zygote, **options)
