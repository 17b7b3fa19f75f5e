"""Per-rank worker log files that only the agent's user can read.

torch's ``DefaultLogsSpecs`` lays the files out (``<log_dir>/<run_id>_*/attempt_<N>/<rank>/``)
and creates them with the umask, so on a typical machine every local user could read
training output (which often prints paths, hyper-parameters, even credentials pulled from the
environment). `PrivateLogsSpecs` keeps torch's layout and code and only fixes the modes:
every directory of the run ``0700`` and the ``stdout.log``/``stderr.log`` files created
``0600`` before torch opens them (torch opens with ``"w"``, which keeps an existing file's
mode). The run directory is torch's ``mkdtemp`` (already ``0700``), so nothing is readable by
others even for the instant between torch's ``mkdir`` and our ``chmod``.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
from torch.distributed.elastic.multiprocessing.api import LogsDest

from trainguard.permissions import PRIVATE_DIR, create_private_file, private_dir


class PrivateLogsSpecs(DefaultLogsSpecs):
    """``DefaultLogsSpecs`` whose directories are ``0700`` and log files ``0600``.

    Args:
        log_dir: root of the per-rank logs (created ``0700``; a temp dir when None).
        redirects: which streams go to files.
        tee: which of those are also copied to the agent's output.
    """

    def __init__(self, log_dir: str | None = None, *, redirects: Std, tee: Std) -> None:
        if log_dir and log_dir != os.devnull:
            private_dir(log_dir)
        super().__init__(log_dir, redirects=redirects, tee=tee)

    def reify(self, envs: dict[int, dict[str, str]]) -> LogsDest:
        """torch's destinations, with private modes applied before any worker writes."""
        dest = super().reify(envs)
        files = [p for p in (*dest.stdouts.values(), *dest.stderrs.values()) if _real(p)]
        for path in files:
            create_private_file(path)
        directories = {Path(p).parent for p in files}
        directories |= {d.parent for d in directories}  # attempt_<N>
        for directory in sorted(directories):
            private_dir(directory, mode=PRIVATE_DIR)
        return dest


def _real(path: str) -> bool:
    return bool(path) and path != os.devnull
