"""``pods/log`` served from whatever runs the pods: log sources registered by the kubelet.

The API server has no logs of its own; the real one proxies to the kubelet of the pod's node.
Here a kubelet registers a `LogSource` callable with the server; a source that does not know
the pod raises `LookupError` and the next one is asked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from trainguard.testing.kube.apierrors import not_found

LogSource = Callable[[str, str, str | None, int | None, bool], Iterator[bytes]]
"""``(namespace, pod, container or None, tailLines or None, follow) -> chunks of the log``."""


class LogSources:
    """The registered sources, asked in registration order."""

    def __init__(self) -> None:
        self._sources: list[LogSource] = []
        self._lock = threading.Lock()

    def register(self, source: LogSource) -> None:
        with self._lock:
            self._sources.append(source)

    def unregister(self, source: LogSource) -> None:
        with self._lock:
            if source in self._sources:
                self._sources.remove(source)

    def open(
        self, namespace: str, pod: str, container: str | None, tail_lines: int | None, follow: bool
    ) -> Iterator[bytes]:
        """The first source's log stream for the pod; 404 naming the pod when no source has it."""
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            try:
                return source(namespace, pod, container, tail_lines, follow)
            except LookupError:
                continue
        raise not_found("", "pods", pod)
