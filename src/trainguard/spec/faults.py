"""A requested fault as a typed value: `FaultSpec`, and the ``KIND[:key=value,...]`` grammar.

Kinds: ``kill-worker`` (SIGKILL a worker), ``hang-worker`` (SIGSTOP it, so only a log rule can
notice), ``kill-agent`` (SIGKILL a pod's agent), ``node-unhealthy`` (mark the node
``UnschedulablePendingReboot``, or the value of ``status=``, as HyperPod's resiliency test
does). Keys: ``rank`` (global worker rank; default 0), ``node`` (node name; default the node of
``rank``), ``after`` (seconds after the job's first training step; default 0), ``at-step``
(once the job's reported training step reaches N). When both are given, both must hold.

Why here, pure: the CLI parses a spec once at its boundary (`parse_fault`), the store keeps it
as JSON and hands it back typed, and the controller's injector reads its fields — nobody
turns a spec back into text except to show it to a person (`FaultSpec.render`). Executing a
fault is `trainguard.controller.fault_injection`; when it is due, `controller.fault_requests`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from trainguard import constants as c
from trainguard.errors import UsageError

FaultKind = Literal["kill-worker", "hang-worker", "kill-agent", "node-unhealthy"]
NodeHealth = Literal["UnschedulablePendingReboot", "UnschedulablePendingReplacement"]
KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
KEYS = ("rank", "node", "after", "at-step", "status")
NODE_STATUSES: tuple[NodeHealth, ...] = get_args(NodeHealth)
assert NODE_STATUSES == (c.HEALTH_PENDING_REBOOT, c.HEALTH_PENDING_REPLACEMENT)


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault specification (see the module docstring for each field's meaning)."""

    kind: FaultKind
    rank: int = 0
    node: str | None = None
    after: float = 0.0
    status: NodeHealth = "UnschedulablePendingReboot"
    at_step: int | None = None

    def render(self) -> str:
        """Back to ``KIND:key=value`` form, for people (messages, ``fault list``)."""
        parts = [f"rank={self.rank}", f"after={self.after:g}"]
        if self.at_step is not None:
            parts.append(f"at-step={self.at_step}")
        if self.node:
            parts.append(f"node={self.node}")
        if self.kind == "node-unhealthy":
            parts.append(f"status={self.status}")
        return f"{self.kind}:{','.join(parts)}"


def parse_fault(text: str) -> FaultSpec:
    """Parse ``KIND[:key=value,...]``; `UsageError` names what is wrong."""
    kind, _, rest = text.strip().partition(":")
    if kind not in KINDS:
        raise UsageError(f"fault {text!r}: kind must be one of {', '.join(KINDS)}")
    values: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise UsageError(
                f"fault {text!r}: {item!r} is not key=value with key in {', '.join(KEYS)}"
            )
        values[key] = value
    rank = _number(text, values, "rank", int, minimum=0)
    after = _number(text, values, "after", float, minimum=0)
    at_step = _number(text, values, "at-step", int, minimum=1) if "at-step" in values else None
    status = values.get("status", c.HEALTH_PENDING_REBOOT)
    if status not in NODE_STATUSES:
        raise UsageError(f"fault {text!r}: status must be one of {', '.join(NODE_STATUSES)}")
    return FaultSpec(
        kind,
        rank=int(rank),
        node=values.get("node") or None,
        after=after,
        status=status,
        at_step=int(at_step) if at_step is not None else None,
    )


def _number(
    text: str, values: dict[str, str], key: str, kind: type[int] | type[float], *, minimum: int
) -> float:
    """``values[key]`` as a finite ``kind`` of at least ``minimum``; `UsageError` otherwise."""
    noun = "an integer" if kind is int else "a number"
    raw = values.get(key, "0")
    try:
        value = kind(raw)
    except ValueError as exc:
        raise UsageError(f"fault {text!r}: {key} must be {noun}, not {raw!r}") from exc
    if not minimum <= value < math.inf:
        least = "not negative" if minimum == 0 else f"at least {minimum}"
        raise UsageError(f"fault {text!r}: {key} must be finite and {least}")
    return value
