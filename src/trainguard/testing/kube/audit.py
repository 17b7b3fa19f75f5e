"""A record of every request the fake served, in RBAC's terms.

Each entry is what an RBAC rule would have to allow: verb (get, list, watch, create, update,
patch, delete, deletecollection), API group, resource, subresource and namespace. Tests
compare the set an operator used with the ClusterRole shipped in the Helm chart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class AuditEntry:
    """One request; ``namespace`` is "" for cluster-scoped or all-namespace requests."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    user_agent: str = ""
    """The client's ``User-Agent`` (``kubectl/...``, ``python-httpx2/...`` for lightkube), so a
    test can tell one client's permissions from the others' on a shared server."""


class AuditLog:
    """Thread-safe, append-only list of `AuditEntry`; iterate it or call `entries`."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def record(self, entry: AuditEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[AuditEntry]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[AuditEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def permissions(self, *, user_agent: str = "") -> set[tuple[str, str, str]]:
        """``(group, resource[/subresource], verb)`` triples, the shape of RBAC rules (of the
        requests whose ``User-Agent`` starts with ``user_agent``)."""
        return {
            (e.group, f"{e.resource}/{e.subresource}" if e.subresource else e.resource, e.verb)
            for e in self.entries()
            if e.user_agent.startswith(user_agent)
        }
