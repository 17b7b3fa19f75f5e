"""`ScriptedGate`: an admission gate the test opens and closes, recording what it was told.

The controller's suspend/resume logic (`trainguard.controller.suspension`) depends only on the
`AdmissionGate` interface; this fake lets unit tests play Kueue — hold a job back, admit it
with node selectors and tolerations, evict it — without an API server, and check that the
controller released the quota once its pods were gone and finished the entry at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainguard.backends.gate import OPEN, Admission, AdmissionGate
from trainguard.store.records import JobRecord


@dataclass
class ScriptedGate(AdmissionGate):
    """Answers `answer` for every job; `released` and `finished` list the jobs told so."""

    answer: Admission = OPEN
    released_jobs: list[str] = field(default_factory=list)
    finished_jobs: list[tuple[str, bool]] = field(default_factory=list)
    """``(namespace/name, succeeded)``."""

    def admit(self, **fields: object) -> None:
        """Admit every job (``fields``: `Admission`'s node_selector, tolerations, ...)."""
        self.answer = Admission(admitted=True, **fields)  # type: ignore[arg-type]

    def evict(self, reason: str = "Preempted", message: str = "evicted by the test") -> None:
        """Hold every job back (a job with pods is stopped)."""
        self.answer = Admission(admitted=False, reason=reason, message=message)

    def admission(self, job: JobRecord, *, now: float) -> Admission:
        """The scripted answer."""
        del job, now
        return self.answer

    def released(self, job: JobRecord, *, now: float) -> None:
        """Record the release."""
        del now
        self.released_jobs.append(job.key)

    def finished(self, job: JobRecord, *, succeeded: bool, message: str, now: float) -> None:
        """Record the end."""
        del message, now
        self.finished_jobs.append((job.key, succeeded))
