"""Preallocated, memory-mapped slot files: where memory-tier blobs live.

A slot is a file in node-local shared memory (tmpfs), mapped ``MAP_SHARED``. Files in tmpfs
outlive the process that wrote them, which is the whole point: a worker killed with SIGKILL
loses nothing it committed. We do not use ``multiprocessing.shared_memory`` because its resource
tracker unlinks segments when their creator dies.

Space is reserved with ``posix_fallocate`` before mapping: writing past the free space of a
tmpfs through a mapping raises SIGBUS and kills the process, while ``fallocate`` fails cleanly
with ENOSPC, which we turn into `StorageFull`. The mapping is made with ``MAP_POPULATE`` so the
first copy into a fresh slot does not pay one page fault per 4 KiB; slots are reused, so a save
costs about one memcpy of the state.

torch is imported on the first tensor view of a slot, not with this module: the MTC server
stores opaque bytes in slots (`write`, `buffer`) and never loads it.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import mmap
import os
from pathlib import Path
from typing import TYPE_CHECKING

from trainguard.checkpoint.checksum import ALGORITHM, of_buffer
from trainguard.errors import CheckpointError, StorageFull

if TYPE_CHECKING:
    import torch

_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
GROWTH_SLACK = 1 << 20


def slot_name(index: int) -> str:
    """The file name of ring slot ``index``."""
    return f"slot_{index}.bin"


def slot_index(name: str) -> int | None:
    """The ring index a slot file name stands for (None for another name)."""
    stem = name.removeprefix("slot_").removesuffix(".bin")
    return int(stem) if stem.isdigit() else None


def _reserve(fd: int, size: int, path: Path) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(
                f"{path}: no space for a {size}-byte checkpoint slot in shared memory "
                f"({exc.strerror}); free memory in {path.parent} or lower memory_keep"
            ) from exc
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            os.ftruncate(fd, size)
            return
        raise CheckpointError(f"{path}: cannot reserve {size} bytes: {exc}") from exc


def _target_size(current: int, size: int) -> int:
    """Keep a big-enough file; leave headroom so a growing skeleton rarely forces a remap."""
    if current >= size:
        return max(current, 1)
    if current == 0:
        return size + size // 256 + (64 << 10)
    return size + size // 8 + GROWTH_SLACK


class Slot:
    """One slot file, mapped for reading and writing.

    Args:
        path: the slot file (created if missing).
        size: bytes the slot must hold; an existing larger file is kept as it is.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._bytes: torch.Tensor | None = None
        self.capacity = 0
        self.ensure(size)

    def ensure(self, size: int) -> None:
        """Make the slot hold at least ``size`` bytes (grows with some slack, remaps)."""
        if self._map is not None and size <= self.capacity:
            return
        self.close()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            current = os.fstat(fd).st_size
            wanted = _target_size(current, size)
            if wanted > current:
                _reserve(fd, wanted, self.path)
            flags = mmap.MAP_SHARED | _POPULATE
            self._map = mmap.mmap(fd, wanted, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.capacity = wanted

    @property
    def bytes(self) -> torch.Tensor:
        """The whole slot as a uint8 tensor sharing the mapping (made once per mapping)."""
        if self._map is None:
            raise CheckpointError(f"{self.path}: slot is closed")
        if self._bytes is None:
            import torch  # noqa: PLC0415 - only tensor users pay for torch (module docstring)

            self._bytes = torch.frombuffer(self._map, dtype=torch.uint8)
        return self._bytes

    def view(
        self, offset: int, nbytes: int, dtype: torch.dtype, shape: tuple[int, ...]
    ) -> torch.Tensor:
        """A tensor over ``[offset, offset + nbytes)`` whose storage is exactly that range.

        An exact storage matters to torch.distributed.checkpoint, which clones any tensor whose
        storage is larger than the tensor before writing it.
        """
        if self._map is None:
            raise CheckpointError(f"{self.path}: slot is closed")
        import torch  # noqa: PLC0415 - only tensor users pay for torch (module docstring)

        count = nbytes // torch.empty((), dtype=dtype).element_size()
        if count == 0:
            return torch.empty(shape, dtype=dtype)
        flat = torch.frombuffer(self._map, dtype=dtype, count=count, offset=offset)
        return flat.view(shape)

    def buffer(self, offset: int, nbytes: int) -> memoryview:
        """A read-write memoryview of a byte range (release it before `close`)."""
        if self._map is None:
            raise CheckpointError(f"{self.path}: slot is closed")
        return memoryview(self._map)[offset : offset + nbytes]

    def write(self, offset: int, data: builtins.bytes) -> None:  # `bytes` is the property
        """Copy ``data`` into the slot at ``offset`` (the slot must hold it)."""
        if offset + len(data) > self.capacity:
            raise CheckpointError(
                f"{self.path}: {len(data)} bytes at {offset} overflow a {self.capacity}-byte slot"
            )
        view = self.buffer(offset, len(data))
        try:
            view[:] = data
        finally:
            view.release()

    def checksum(self, nbytes: int, algorithm: str = ALGORITHM) -> str:
        """The checksum of the slot's first ``nbytes`` (the committed blob)."""
        view = self.buffer(0, nbytes)
        try:
            return of_buffer(view, algorithm)
        finally:
            view.release()

    def close(self) -> None:
        """Unmap. Views handed out must be gone (the mapping refuses to close otherwise)."""
        self._bytes = None
        if self._map is not None:
            # A tensor view may still be alive somewhere; the mapping is released with it.
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None
        self.capacity = 0
