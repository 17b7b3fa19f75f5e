"""Reading worker log files: new lines for the rule engine, the last lines for ``GET /logs``.

Workers write their stdout/stderr to files (torch's redirect), so reading never slows them
down. `LogFollower` remembers an offset per file and hands out only complete new lines
(a partial last line waits for its newline); `tail_lines` reads a file backwards in blocks so
``/logs?tail=K`` costs O(K), not O(file).
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

READ_LIMIT = 1 << 20
BLOCK = 64 * 1024
MAX_LINE = 64 * 1024


class LogFollower:
    """Complete lines appended to one file since the last `read`.

    Args:
        path: the file (it may not exist yet).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = b""

    def read(self) -> list[str]:
        """New complete lines (at most about 1 MiB per call; the rest comes next time)."""
        try:
            size = os.stat(self.path).st_size
            if size == self._offset:  # the usual case: nothing new, so no open()
                return []
            if size < self._offset:  # truncated or replaced: start over
                self._offset, self._partial = 0, b""
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read(READ_LIMIT)
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, rest = (self._partial + data).split(b"\n")
        self._partial = rest[-MAX_LINE:] if len(rest) > MAX_LINE else rest
        return [line.decode(errors="replace").rstrip("\r") for line in lines]


def tail_lines(path: str | Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path`` ([] when it does not exist)."""
    if count <= 0:
        return []
    if not Path(path).is_file():
        return []
    with Path(path).open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        chunks: deque[bytes] = deque()
        newlines, position = 0, end
        while position > 0 and newlines <= count:
            step = min(BLOCK, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step)
            chunks.appendleft(chunk)
            newlines += chunk.count(b"\n")
    text = b"".join(chunks).decode(errors="replace")
    lines = text.splitlines()
    return lines[-count:]
