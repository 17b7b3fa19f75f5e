"""Checksums of checkpoint bytes.

CRC-32 (zlib) because it is in the standard library, runs at several GB/s and releases the GIL
on large buffers, so computing it in a background thread does not stall the training loop.
It guards against torn writes, truncation and bit rot, not against tampering. The algorithm name
is stored next to every value so a later format can switch without breaking old checkpoints.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import IO

from trainguard.errors import CheckpointError

ALGORITHM = "crc32"
CHUNK = 16 * 1024 * 1024


def of_buffer(data: bytes | bytearray | memoryview) -> str:
    """Checksum of an in-memory buffer, as 8 hex digits."""
    view = memoryview(data).cast("B")
    value = 0
    for start in range(0, len(view), CHUNK):
        value = zlib.crc32(view[start : start + CHUNK], value)
    return f"{value:08x}"


def of_chunks(chunks: Iterable[bytes]) -> str:
    """Checksum of a sequence of chunks (a streamed file)."""
    value = 0
    for chunk in chunks:
        value = zlib.crc32(chunk, value)
    return f"{value:08x}"


def of_stream(stream: IO[bytes]) -> tuple[int, str]:
    """``(size, checksum)`` of a binary stream read to its end."""
    size = 0

    def chunks() -> Iterable[bytes]:
        nonlocal size
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            yield chunk

    digest = of_chunks(chunks())
    return size, digest


def check_algorithm(name: str, *, source: str) -> None:
    """Refuse checksums made with an algorithm this version does not know."""
    if name != ALGORITHM:
        raise CheckpointError(f"{source}: unknown checksum algorithm {name!r}")
