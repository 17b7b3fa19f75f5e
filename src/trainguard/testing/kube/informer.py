"""List+watch caches of pods and nodes shared by the fake cluster's controllers.

A real scheduler and kubelet each keep an informer: list once, then watch from the list's
resourceVersion, relisting on ``410 Gone`` or a broken stream. Here the scheduler, every kubelet
and the node lifecycle controller run in one process, so they share one informer per resource
(the kubelets filter pods by ``spec.nodeName`` themselves) and are woken through ``on_change``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx

from trainguard.testing.kube.restclient import ApiError, KubeClient

log = logging.getLogger(__name__)
JSON = dict[str, Any]
RETRY_SECONDS = 0.2


class Informer:
    """A thread keeping ``path``'s objects current; read them with `items`."""

    def __init__(self, client: KubeClient, path: str, on_change: Callable[[], None]) -> None:
        self._client, self._path, self._on_change = client, path, on_change
        self._items: dict[tuple[str, str], JSON] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.synced = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer {path}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current stream ends (the caller closes the client to end it now)."""
        self._stopped.set()

    def items(self) -> list[JSON]:
        with self._lock:
            return list(self._items.values())

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._watch(self._relist())
            except (ApiError, httpx.HTTPError, ValueError) as exc:
                if self._stopped.is_set():
                    return
                log.debug("informer %s: %s; relisting", self._path, exc)
            self._stopped.wait(RETRY_SECONDS)

    def _relist(self) -> str:
        listing = self._client.request("GET", self._path)
        with self._lock:
            self._items = {_key(obj): obj for obj in listing.get("items") or []}
        self.synced.set()
        self._on_change()
        return str(listing.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, resource_version: str) -> None:
        while not self._stopped.is_set():
            with self._client.watch(self._path, resource_version) as events:
                for event in events:
                    if self._stopped.is_set():
                        return
                    if event.get("type") == "ERROR":
                        return  # 410 Gone or another watch error: relist
                    resource_version = self._apply(event) or resource_version

    def _apply(self, event: JSON) -> str:
        obj = event.get("object") or {}
        kind = event.get("type")
        if kind != "BOOKMARK":
            with self._lock:
                if kind == "DELETED":
                    self._items.pop(_key(obj), None)
                else:
                    self._items[_key(obj)] = obj
            self._on_change()
        return str(obj.get("metadata", {}).get("resourceVersion", ""))


def _key(obj: JSON) -> tuple[str, str]:
    metadata = obj.get("metadata", {})
    return metadata.get("namespace", ""), metadata.get("name", "")
