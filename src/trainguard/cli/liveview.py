"""Drawing ``trainguard run``'s progress: a live view on a terminal, plain lines elsewhere.

On a terminal (stderr is a tty) a rich `Live` region redraws in place: the job's phase and
restarts, a progress bar with step/total, ETA and loss, why pods wait when they cannot be
placed, and the newest events scrolling underneath — so a fault reads as a story (fault →
detected → restarted → "Training resumed at step N from memory"). Elsewhere (CI logs, pipes)
nothing is redrawn: each new event is one plain line and the step is printed every
`PLAIN_STEP_SECONDS`, with no escape codes. Results stay on stdout either way.
"""

from __future__ import annotations

import time

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from trainguard.cli.liveview_data import ProgressView, Snapshot
from trainguard.clock import rfc3339
from trainguard.store.base import Store
from trainguard.store.records import EventRecord

EVENT_ROWS = 8
"""Events kept visible under the progress bar (older ones scroll away)."""
PLAIN_STEP_SECONDS = 10.0
"""Seconds between two plain step lines when not on a terminal."""
STYLES = {"Warning": "yellow", "Normal": ""}


def format_eta(seconds: float | None) -> str:
    """``1:02:03`` / ``4:05`` / ``?`` when unknown."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def step_line(snap: Snapshot) -> str:
    """``step 120/400 (30%) loss 0.0123 eta 0:14``, or the parts that are known."""
    if snap.step is None:
        return "step -"
    text = f"step {snap.step}" + (f"/{snap.total}" if snap.total else "")
    if snap.total:
        text += f" ({min(snap.step / snap.total, 1.0):.0%})"
    if snap.loss is not None:
        text += f" loss {snap.loss:.6g}"
    if snap.total:
        text += f" eta {format_eta(snap.eta)}"
    return text


def event_line(event: EventRecord, *, clock: bool = False) -> str:
    """One event as a line (``clock``: time of day only, for the narrow live view)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time)) if clock else rfc3339(event.time)
    return f"{stamp} {event.type} {event.reason}: {event.message}"


class JobDisplay:
    """Follows one job and draws it on ``console``; use as a context manager.

    Args:
        store: the cluster's store.
        namespace: the job's namespace.
        name: the job's name.
        console: where to draw (stderr: stdout is for results).
    """

    def __init__(self, store: Store, namespace: str, name: str, *, console: Console) -> None:
        self.name, self.console = name, console
        self.view = ProgressView(store, namespace, name)
        self._live: Live | None = None
        self._bar = Progress(
            TextColumn("step"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            console=console,
        )
        self._task: TaskID = self._bar.add_task("train", total=None, extra="")
        self._next_plain_step = 0.0
        self._last_plain_step: int | None = None

    def __enter__(self) -> JobDisplay:
        if self.console.is_terminal:
            self._live = Live(self._render(self.view.snapshot), console=self.console)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
        self.view.close()

    def update(self) -> None:
        """Poll once and redraw (or print what is new)."""
        snap = self.view.update()
        if self._live is not None:
            self._live.update(self._render(snap))
        else:
            self._print_plain(snap)

    # --- terminal --------------------------------------------------------------------------

    def _render(self, snap: Snapshot) -> RenderableType:
        head = Text(f"job {self.name}  {snap.phase}  restarts {snap.restarts}", style="bold")
        parts: list[RenderableType] = [head]
        if snap.step is not None:
            extra = f"eta {format_eta(snap.eta)}  " if snap.total else ""
            extra += f"loss {snap.loss:.6g}" if snap.loss is not None else ""
            self._bar.update(self._task, completed=snap.step, total=snap.total, extra=extra)
            parts.append(self._bar.get_renderable())
        if snap.waiting:
            parts.append(Text(f"waiting for nodes: {snap.waiting}", style="yellow"))
        for event in snap.events[-EVENT_ROWS:]:
            parts.append(Text(event_line(event, clock=True), style=STYLES.get(event.type, "")))
        return Group(*parts)

    # --- not a terminal --------------------------------------------------------------------

    def _print_plain(self, snap: Snapshot) -> None:
        for event in snap.new_events:
            self._plain(event_line(event))
        now = time.monotonic()
        moved = snap.step is not None and snap.step != self._last_plain_step
        if moved and now >= self._next_plain_step:
            self._next_plain_step = now + PLAIN_STEP_SECONDS
            self._last_plain_step = snap.step
            self._plain(f"job {self.name} {snap.phase}: {step_line(snap)}")

    def _plain(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
