"""Why a Pod's container ended or cannot start, in words, from the Pod's status.

The controller fails a job whose pods never start (`trainguard.policy.restart`); the job's
``Failed`` condition must then say *why* — "container pytorch terminated: StartError (exit
code 128): exec: ... not found", "container pytorch waiting: CreateContainerConfigError:
secret "x" not found" — not only that a pod was lost. Kubernetes keeps that in
``status.containerStatuses[].state`` (terminated ``reason``/``message``/``exitCode``, or
the kubelet's waiting ``reason``/``message``), plus pod-level ``reason``/``message``
(``Evicted``) and the ``PodScheduled`` condition of a pod no node takes. Pure: a Pod in its
wire form in, text out.
"""

from __future__ import annotations

from typing import Any

Manifest = dict[str, Any]
ROUTINE_WAITING = frozenset({"ContainerCreating", "PodInitializing"})
"""Waiting reasons of a container that is simply on its way: no failure."""


def pod_failure(pod: Manifest) -> str | None:
    """Every failure ``pod``'s status tells of, joined with ``"; "``; None when it tells none."""
    status = pod.get("status") or {}
    found = [
        text
        for key in ("initContainerStatuses", "containerStatuses")
        for container in status.get(key) or []
        if (text := container_failure(container)) is not None
    ]
    if status.get("reason"):
        found.append(_joined(f"pod {status['reason']}", status.get("message")))
    unscheduled = _unscheduled(status)
    if unscheduled is not None:
        found.append(unscheduled)
    return "; ".join(found) or None


def container_failure(container: Manifest) -> str | None:
    """One ``containerStatuses`` entry's failure: a terminated state other than a clean
    exit, or a waiting reason other than the routine ones."""
    name = container.get("name", "?")
    state = container.get("state") or {}
    terminated = state.get("terminated")
    if terminated is not None:
        code = terminated.get("exitCode")
        if code == 0 and terminated.get("reason") in (None, "Completed"):
            return None
        reason = terminated.get("reason") or "Error"
        head = f"container {name} terminated: {reason} (exit code {code})"
        return _joined(head, terminated.get("message"))
    waiting = state.get("waiting")
    if waiting is not None and waiting.get("reason") not in ROUTINE_WAITING:
        head = f"container {name} waiting: {waiting.get('reason') or 'unknown reason'}"
        return _joined(head, waiting.get("message"))
    return None


def _unscheduled(status: Manifest) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            head = f"not scheduled: {condition.get('reason') or 'Unschedulable'}"
            return _joined(head, condition.get("message"))
    return None


def _joined(head: str, message: object) -> str:
    return f"{head}: {str(message).strip()}" if message else head
