"""Kubernetes' taint rules as pure functions over Pod and Node JSON: tolerations and eviction.

A ``NoExecute`` taint on a node does not by itself cost a pod its place: Kubernetes' taint
manager evicts only the pods that do not tolerate it, and a pod whose matching tolerations
carry ``tolerationSeconds`` only once the smallest of them has passed since the taint's
``timeAdded`` (a toleration without it tolerates for ever). The operator reads a pod's node
fault with these rules (`trainguard.backends.kubernetes.nodes.taint_disruption`), so a taint a
job tolerates (a GPU node's ``NoExecute`` taint, the 300 s ``unreachable`` toleration every pod
gets) is no fault until Kubernetes itself would act on it; the fake cluster's scheduler and
taint manager (`trainguard.testing.kube`) use the same rules, which are the API's
(core/v1 ``Toleration.ToleratesTaint``), not ours.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

NO_EXECUTE = "NoExecute"


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Whether one toleration tolerates one taint (core/v1 ``Toleration.ToleratesTaint``)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return key == "" or key == taint.get("key")
    if operator != "Equal":
        return False
    return key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def evicting_taint(
    pod: Mapping[str, Any], taints: Iterable[Mapping[str, Any]], now: float
) -> Mapping[str, Any] | None:
    """The ``NoExecute`` taint for which the taint manager evicts ``pod`` at ``now``, or None.

    An untolerated one evicts at once; tolerated ones with ``tolerationSeconds`` once the
    smallest such time since the taint's ``timeAdded`` has passed.
    """
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (t for t in taints if t.get("effect") == NO_EXECUTE):
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return taint
        seconds = [float(t["tolerationSeconds"]) for t in matching if "tolerationSeconds" in t]
        if seconds and now >= added_at(taint) + max(min(seconds), 0.0):
            return taint
    return None


def eviction_due(pod: Mapping[str, Any], taints: Iterable[Mapping[str, Any]], now: float) -> bool:
    """Whether the taint manager evicts ``pod`` now from a node with ``taints``."""
    return evicting_taint(pod, taints, now) is not None


def added_at(taint: Mapping[str, Any]) -> float:
    """The taint's ``timeAdded`` in seconds since the epoch; now when it has none."""
    stamp = taint.get("timeAdded")
    if not isinstance(stamp, str) or not stamp:
        return time.time()
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def describe(taint: Mapping[str, Any]) -> str:
    """``key=value:Effect`` (``key:Effect`` without a value), as ``kubectl`` prints a taint."""
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"
