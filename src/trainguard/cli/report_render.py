"""Draws the report ``trainguard run`` leaves in a job's directory, after ``run`` has exited.

Rendering the picture (importing matplotlib, drawing, encoding the PNG: ~1.6 s on a quiet
2-core machine) sat between a job's end and ``run``'s exit code, the largest part of the
shutdown time issue 18 measured. ``run`` still gathers the report itself when the job has ended
(milliseconds: the store and the agents' timelines as they are then, so a ``cluster down`` or a
new run of the job right after cannot change it) and pickles it beside the files it becomes
(`hand_over`); a background process at the lowest CPU priority, started through
`trainguard.backends.local.daemons.start_report_renderer`, draws it (`main`) and removes the
pickle. The files appear a second or two after ``run`` exits, each written whole (renamed into
place), and what failed is in ``report.log`` in the same directory.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from trainguard.backends.local.daemons import start_report_renderer
from trainguard.checkpoint.manifest import write_atomic
from trainguard.cli.report_data import JobReport

PENDING = ".report.pickle"
"""The gathered report waiting for the renderer, in the job's directory."""
LOG = "report.log"
"""The renderer's output (a traceback if it failed), beside the files."""
LOWEST_PRIORITY = 19
"""The renderer's niceness: it only takes CPU time nothing else wants."""


def hand_over(report: JobReport, *, home: Path, png: Path, page: Path) -> None:
    """Save ``report`` beside ``png`` and start the background process that draws it.

    Raises:
        OSError: the report could not be saved or the process not started.
    """
    pending = png.with_name(PENDING)
    write_atomic(pending, pickle.dumps(report))
    start_report_renderer(home, [str(pending), str(png), str(page)], log=png.with_name(LOG))


def render(pending: Path, *, png: Path, page: Path) -> None:
    """Draw the report saved at ``pending`` into ``png`` and ``page``; remove ``pending``."""
    from trainguard.cli.report_plot import render_html, render_png  # noqa: PLC0415 (heavy)

    report: JobReport = pickle.loads(pending.read_bytes())  # our own file, mode 0600
    pending.unlink()
    picture = render_png(report)
    write_atomic(png, picture)
    write_atomic(page, render_html(report, picture).encode())


def main(argv: list[str]) -> int:
    """``python -m trainguard.cli.report_render PENDING PNG HTML``."""
    os.nice(LOWEST_PRIORITY)
    pending, png, page = (Path(arg) for arg in argv)
    render(pending, png=png, page=page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
