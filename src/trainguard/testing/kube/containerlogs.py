"""Container logs of the fake cluster, served by the API server as ``pods/log``.

Each container writes stdout+stderr to a file; the kubelet registers it here by
(namespace, pod, container). The API server asks `LogRegistry.read` (registered with
``server.register_log_source``) for the last ``tail_lines`` lines and, with ``follow``, keeps
streaming what the container writes until it ends, as ``kubectl logs -f`` expects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

FOLLOW_POLL_SECONDS = 0.1
CHUNK = 64 * 1024


class LogNotFound(LookupError):
    """No such pod or container has logs on this cluster (the message says which)."""


@dataclass(frozen=True)
class _Log:
    path: Path
    running: Callable[[], bool]


class LogRegistry:
    """Where each container's log lives, and whether it may still grow."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str], dict[str, _Log]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def register(
        self, namespace: str, pod: str, container: str, path: Path, running: Callable[[], bool]
    ) -> None:
        with self._lock:
            self._logs.setdefault((namespace, pod), {})[container] = _Log(path, running)

    def close(self) -> None:
        """End every follow stream."""
        self._closed.set()

    def read(
        self, namespace: str, pod: str, container: str | None, tail_lines: int | None, follow: bool
    ) -> Iterator[bytes]:
        """The log's bytes (the last ``tail_lines`` lines), then new ones while ``follow``.

        Raises:
            LogNotFound: the pod or container has no log here.
        """
        entry = self._find(namespace, pod, container)
        if not entry.path.exists():
            return iter([b""])
        return self._stream(entry, tail_lines, follow)

    def _find(self, namespace: str, pod: str, container: str | None) -> _Log:
        with self._lock:
            containers = dict(self._logs.get((namespace, pod), {}))
        if not containers:
            raise LogNotFound(f'pod "{pod}" in namespace "{namespace}" has no logs')
        if not container:
            if len(containers) > 1:
                names = " ".join(containers)
                raise LogNotFound(
                    f"a container name must be specified for pod {pod}, choose one of: [{names}]"
                )
            container = next(iter(containers))
        if container not in containers:
            raise LogNotFound(f"container {container} is not valid for pod {pod}")
        return containers[container]

    def _stream(self, entry: _Log, tail_lines: int | None, follow: bool) -> Iterator[bytes]:
        with open(entry.path, "rb") as handle:
            data = handle.read()
            yield _tail(data, tail_lines)
            while follow and not self._closed.is_set():
                chunk = handle.read(CHUNK)
                if chunk:
                    yield chunk
                    continue
                if not entry.running():
                    yield handle.read()
                    return
                time.sleep(FOLLOW_POLL_SECONDS)


def _tail(data: bytes, tail_lines: int | None) -> bytes:
    if tail_lines is None:
        return data
    if tail_lines <= 0:
        return b""
    return b"".join(data.splitlines(keepends=True)[-tail_lines:])
