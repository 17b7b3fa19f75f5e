"""The one exception tree of trainguard.

Every error we raise on purpose is a `TrainguardError`, so callers (the CLI above all) can tell
our failures from bugs, map them to exit codes, and print them without a traceback. Library
exceptions are mapped at the boundary with ``raise ... from exc`` so the cause stays attached.

::

    TrainguardError
    ├── UserError                    the person can fix it (exit code 2 in the CLI)
    │   ├── SpecError                a manifest is invalid; carries every issue, not only the first
    │   ├── UsageError               a command-line value is malformed (fault spec, KEY=VALUE, ...)
    │   │   └── UnsafeName           a name that would build a path is not a DNS-1123 name
    │   └── AuthError                a request without a valid token
    ├── PlatformError                trainguard's own state machine or store refused an operation
    │   ├── InvalidTransition        a lifecycle table forbids the move
    │   ├── NotFoundError            a named object does not exist
    │   ├── ConflictError            the object exists already / was changed concurrently
    │   └── LeaseLostError           this controller no longer holds the store's lease
    └── InfrastructureError          the world misbehaved: processes, network, disks, devices
        ├── AgentError               an agent answered with an error, or not at all
        │   └── AgentRefused         the agent answered, refusing the request
        │   └── ScriptFailed         a pre-/post-train script exited non-zero
        ├── BackendError             a backend could not create/delete nodes or pods
        ├── StoreError               the store could not be read or written (locked, I/O)
        ├── CheckpointError          a checkpoint could not be written or read
        │   ├── CheckpointCorrupt    bytes on a tier do not match their manifest
        │   ├── CheckpointNotFound   no complete checkpoint at the asked step/tier
        │   └── StorageFull          the target file system is out of space or inodes
        └── HealthCheckError         a health probe could not run (not: the node is unhealthy)

``temporary`` tells a caller whether retrying the same operation later may succeed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


class TrainguardError(Exception):
    """Base of every error trainguard raises on purpose."""

    temporary: bool = False


class UserError(TrainguardError):
    """The input was wrong; the person who gave it can fix it."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem found in a manifest, located by its field path (``spec.runPolicy...``)."""

    path: str
    message: str
    severity: Severity = "error"

    def render(self, source: str) -> str:
        """Return ``source: path: message`` (the path is left out when empty)."""
        where = f"{source}: {self.path}" if self.path else source
        return f"{where}: {self.message}"


class SpecError(UserError):
    """A manifest failed validation. ``issues`` holds every error found, in document order."""

    def __init__(self, source: str, issues: Iterable[SpecIssue]) -> None:
        self.source = source
        self.issues = [i for i in issues if i.severity == "error"]
        super().__init__("\n".join(i.render(source) for i in self.issues) or source)


class UsageError(UserError):
    """A command-line argument or API parameter is malformed."""


class UnsafeName(UsageError):
    """A name used to build a path (job, namespace, pod, node) is not a DNS-1123 name."""


class AuthError(UserError):
    """A request carried no token or a wrong one; nothing was done."""


class PlatformError(TrainguardError):
    """trainguard's own rules refused the operation."""


class InvalidTransition(PlatformError):
    """A lifecycle transition that the transition table forbids."""

    def __init__(self, machine: str, current: str, target: str) -> None:
        self.machine, self.current, self.target = machine, current, target
        super().__init__(f"{machine}: illegal transition {current} -> {target}")


class NotFoundError(PlatformError):
    """A named object (job, pod, node, checkpoint step) does not exist."""


class ConflictError(PlatformError):
    """The object exists already, or changed under us."""


class LeaseLostError(PlatformError):
    """This controller's lease was taken over (or expired): it must stop acting at once.

    Raised by fenced store writes and by the lease renewal; never caught per job, so it ends
    the controller's loop instead of being retried or failing a job.
    """


class InfrastructureError(TrainguardError):
    """Processes, network, disks or devices did not behave."""

    temporary = True


class AgentError(InfrastructureError):
    """An elastic agent refused a request or could not be reached."""


class AgentRefused(AgentError):
    """The agent answered but refused the request (the connection itself is fine)."""


class BackendError(InfrastructureError):
    """A backend could not create, delete or inspect nodes or pods."""


class StoreError(InfrastructureError):
    """The store could not be read or written (a database locked past its timeout, an I/O
    error); the library's exception is the cause. Retrying later may succeed."""

    temporary = True


class CheckpointError(InfrastructureError):
    """A checkpoint could not be written or read."""


class CheckpointCorrupt(CheckpointError):
    """Stored bytes do not match the sizes/checksums of their manifest."""

    temporary = False


class CheckpointNotFound(CheckpointError):
    """No complete checkpoint exists for the requested step or tier."""

    temporary = False


class StorageFull(CheckpointError):
    """The file system has no space (or no inodes) left for the write."""


class HealthCheckError(InfrastructureError):
    """A health probe itself failed to run (a failed probe is a report, not an error)."""


class ScriptFailed(AgentError):
    """A pre- or post-train script exited non-zero; carries its exit code and stderr tail."""

    temporary = False

    def __init__(self, script: str, exitcode: int, stderr: str) -> None:
        self.script, self.exitcode, self.stderr = script, exitcode, stderr
        detail = f": {stderr.strip()}" if stderr.strip() else ""
        super().__init__(f"{script} exited with code {exitcode}{detail}")


class CorruptRecord(ValueError):
    """A stored job whose manifest, status or state the models refuse (written below
    validation). Deliberately outside `TrainguardError`, which a controller step retries: the
    controller fails that one job instead (`trainguard.controller.isolation`)."""
