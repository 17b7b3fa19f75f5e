"""The tee of worker log files to the agent's stdout and stderr, one thread for all of them.

Workers write to files (torch's redirect); the agent copies each new line, prefixed with
``[rankN]:``, to its own output so ``kubectl logs`` shows them. torch's ``TailLog`` does that
with one thread per file, each looking for new lines ten times a second: four threads and 40
wake-ups a second for two workers, 0.3 % of a core beside training (issue 18). `LogTee` takes
over the same files, prefixes and destinations from torch's tails with one thread that looks
every `TEE_INTERVAL_S`; `stop` ends its wait at once and copies what is left, so stopping the
workers waits for no sleep. Lines are copied as torch does: ``readline`` until the end of the
file, a partial last line as it stands.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TextIO

from torch.distributed.elastic.multiprocessing.tail_log import TailLog

TEE_INTERVAL_S = 0.5
"""Seconds between two looks for new lines (a person reads these; rules read the files)."""


@dataclass
class _Source:
    path: str
    header: str
    dst: TextIO
    handle: IO[str] | None = None


class LogTee(TailLog):
    """Copies new lines of ``sources`` to their destinations from one daemon thread (a
    ``TailLog`` to torch's process context, which starts and stops it).

    Args:
        sources: ``(file, line prefix, destination)`` for every file to copy.
        name: the thread's name.
    """

    def __init__(self, sources: Sequence[tuple[str, str, TextIO]], *, name: str) -> None:
        super().__init__(name, {}, sys.stdout)  # torch's bookkeeping only: no files, no threads
        self._sources = [_Source(path, header, dst) for path, header, dst in sources]
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @classmethod
    def replacing(cls, tails: Sequence[TailLog], *, name: str) -> LogTee:
        """One tee for the files of torch ``TailLog`` objects that were never started."""
        sources = []
        for tail in tails:  # torch keeps what a tail copies in these (private) attributes
            prefixes = tail._log_line_prefixes or {}
            for rank, path in tail._log_files.items():
                header = prefixes.get(rank, f"[{tail._name}{rank}]:")
                sources.append((path, header, tail._dst))
        return cls(sources, name=name)

    def start(self) -> LogTee:
        """Begin copying (nothing to copy: no thread)."""
        if self._sources:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Copy what is left and end the thread; the files are closed."""
        self._finished.set()
        if self._thread.is_alive():
            self._thread.join()

    def stopped(self) -> bool:
        """Whether `stop` has run."""
        return self._finished.is_set() and not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                finishing = self._finished.wait(TEE_INTERVAL_S)
                for source in self._sources:
                    _copy(source)
                if finishing:
                    return
        finally:
            for source in self._sources:
                if source.handle is not None:
                    source.handle.close()


def _copy(source: _Source) -> None:
    if source.handle is None:
        try:
            source.handle = open(source.path, errors="replace")  # noqa: SIM115 (kept open)
        except FileNotFoundError:
            return
    with contextlib.suppress(ValueError, OSError):  # a closed destination: nothing to copy to
        while line := source.handle.readline():
            source.dst.write(f"{source.header}{line}")
