"""A DCP writer that remembers the operating-system error behind a failed write.

torch.save's zip writer turns a failed ``write`` into ``RuntimeError: unexpected pos``, which
hides the one fact a caller needs: the disk is full. Wrapping DCP's streams lets the durable
tier see the original ``OSError`` (ENOSPC, EDQUOT...) and report `StorageFull` (`mapped`).
"""

from __future__ import annotations

import contextlib
import errno
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter

from trainguard.errors import CheckpointError, StorageFull


class _Recording:
    """A stream that records the first OSError of its writer and re-raises it."""

    def __init__(self, inner: Any, writer: RecordingWriter) -> None:
        self._inner, self._writer = inner, writer

    def _guard(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._inner, name)(*args)
        except OSError as exc:
            self._writer.os_error = self._writer.os_error or exc
            raise

    def write(self, data: Any) -> Any:
        return self._guard("write", data)

    def flush(self) -> Any:
        return self._guard("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _RecordingFileSystem:
    def __init__(self, inner: Any, writer: RecordingWriter) -> None:
        self._inner, self._writer = inner, writer

    @contextmanager
    def create_stream(self, path: Any, mode: str) -> Iterator[Any]:
        try:
            with self._inner.create_stream(path, mode) as stream:
                yield _Recording(stream, self._writer)
        except OSError as exc:  # raised when the stream is closed (buffered data flushed)
            self._writer.os_error = self._writer.os_error or exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RecordingWriter(FsspecWriter):
    """`FsspecWriter` whose ``os_error`` is the first OSError any of its streams raised."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.os_error: OSError | None = None
        self.fs = _RecordingFileSystem(self.fs, self)  # type: ignore[assignment]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence DCP's "assuming the intent is to save/load in a single process" (we mean it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*assuming the intent is to", category=UserWarning
        )
        yield


def find(exc: BaseException, kind: type[Exception]) -> Any:
    """The first exception of ``kind`` in ``exc``'s cause chain or DCP's per-rank failures."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return item
        if isinstance(item, tuple):  # DCP's per-rank failures are (exception, traceback)
            stack.extend(item)
            continue
        stack.append(getattr(item, "exception", None))
        stack.append(item.__cause__ if isinstance(item, BaseException) else None)
        stack.extend((getattr(item, "failures", None) or {}).values())
    return None


def mapped(exc: BaseException, what: str) -> CheckpointError:
    """Map a write failure: out of space is `StorageFull`, anything else `CheckpointError`."""
    full = find(exc, OSError)
    if full is not None and full.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"{what}: no space left ({full}); training continues on memory")
    if isinstance(exc, CheckpointError):
        return exc
    return CheckpointError(f"{what}: {exc}")
