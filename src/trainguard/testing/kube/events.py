"""core/v1 Events from the fake cluster's components, so ``kubectl describe`` tells the story.

The scheduler reports ``Scheduled``/``FailedScheduling``, the kubelet ``Started``/``Killing``
and the taint manager ``TaintManagerEviction`` with the components and words of the real ones.
An event that cannot be written is logged and dropped, as client-go's recorder drops it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from trainguard.testing.kube.restclient import ApiError, KubeClient

log = logging.getLogger(__name__)


def record_event(
    client: KubeClient,
    obj: Mapping[str, Any],
    *,
    kind: str,
    reason: str,
    message: str,
    component: str,
    now: str,
) -> None:
    """Write one Event about ``obj`` (a Pod or Node); ``kind`` is ``Normal`` or ``Warning``."""
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace") or "default"
    name = f"{metadata.get('name', 'object')}.{uuid.uuid4().hex[:16]}"
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": obj.get("kind", "Pod"),
            "name": metadata.get("name", ""),
            "namespace": metadata.get("namespace", ""),
            "uid": metadata.get("uid", ""),
        },
        "type": kind,
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        client.request("POST", f"/api/v1/namespaces/{namespace}/events", body=event)
    except (ApiError, httpx.HTTPError) as exc:
        log.warning("event %s %s dropped: %s", reason, name, exc)
