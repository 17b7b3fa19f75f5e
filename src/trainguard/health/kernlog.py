"""Sources of kernel log lines, each read incrementally with a cursor.

`KmsgSource` reads ``/dev/kmsg``, the kernel's structured ring buffer: each ``read`` returns one
record, an open descriptor keeps its own position, and a fresh descriptor starts at the oldest
record still buffered — so the first read after start sees everything this boot has kept, and
later reads see only new records. `FileLogSource` follows a text log (``/var/log/kern.log``, a
simulated node's log) like ``tail -F``: it remembers the inode and offset, finishes the old file
after a rotation, starts over after a truncation and never returns a half-written line.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO, Protocol

from trainguard.errors import HealthCheckError

KMSG_PATH = "/dev/kmsg"
_READ_CHUNK = 64 * 1024
_MAX_READ = 16 * 1024 * 1024


class LogSource(Protocol):
    """Something that yields the kernel log lines written since the last call."""

    @property
    def description(self) -> str:
        """Where the lines come from (for messages)."""
        ...

    def read_new(self) -> list[str]:
        """Lines appended since the previous call (all buffered lines on the first call for
        ``/dev/kmsg``; see each source)."""
        ...


def parse_kmsg_records(data: bytes) -> list[str]:
    """Messages of ``/dev/kmsg`` records (``prio,seq,usec,flags;message`` lines; the indented
    ``KEY=value`` continuation lines are dropped, ``\\xNN`` escapes kept as text)."""
    messages = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        if not raw or raw[0] == " ":
            continue
        head, sep, message = raw.partition(";")
        if sep and head.count(",") >= 3:
            messages.append(message)
    return messages


class KmsgSource:
    """``/dev/kmsg`` (needs CAP_SYSLOG or ``kernel.dmesg_restrict=0``)."""

    def __init__(self, path: str = KMSG_PATH) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def description(self) -> str:
        """The device path."""
        return self.path

    def read_new(self) -> list[str]:
        """Every record not read yet; records the kernel overwrote before we read them are
        skipped (``EPIPE``), as ``dmesg --follow`` does."""
        fd = self._open()
        messages: list[str] = []
        pending = b""
        while True:
            try:
                data = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    continue
                raise HealthCheckError(f"cannot read {self.path}: {exc.strerror}") from exc
            if not data:
                break
            pending += data
            complete, _, pending = pending.rpartition(b"\n")
            messages.extend(parse_kmsg_records(complete))
        return messages

    def close(self) -> None:
        """Close the descriptor; the next read starts from the oldest buffered record."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise HealthCheckError(f"cannot open {self.path}: {exc.strerror}") from exc
        return self._fd


class FileLogSource:
    """A text log file followed across appends, rotation and truncation.

    ``from_start`` decides where the very first read begins: at the start of the file (one-shot
    checks, a simulated node's own log) or at its end (a long-lived system log whose history
    belongs to earlier boots). A missing file reads as no lines until it appears.
    """

    def __init__(self, path: str | Path, *, from_start: bool = False) -> None:
        self.path = Path(path)
        self.from_start = from_start
        self._fh: BinaryIO | None = None
        self._inode: int | None = None
        self._partial = b""
        self._opened_once = False

    @property
    def description(self) -> str:
        """The file path."""
        return str(self.path)

    def read_new(self) -> list[str]:
        """Complete lines appended since the previous call."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self._drain_and_close() if self._fh else []
        except OSError as exc:
            raise HealthCheckError(f"cannot stat {self.path}: {exc.strerror}") from exc
        lines: list[str] = []
        if self._fh is not None and st.st_ino != self._inode:
            lines = self._drain_and_close()
        if self._fh is None:
            self._open(at_end=not self.from_start and not self._opened_once)
        assert self._fh is not None
        if st.st_size < self._fh.tell():
            self._fh.seek(0)
            self._partial = b""
        return lines + self._read_lines()

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _open(self, *, at_end: bool) -> None:
        try:
            self._fh = self.path.open("rb")
        except OSError as exc:
            raise HealthCheckError(f"cannot open {self.path}: {exc.strerror}") from exc
        self._inode = os.fstat(self._fh.fileno()).st_ino
        self._partial = b""
        self._opened_once = True
        if at_end:
            self._fh.seek(0, os.SEEK_END)

    def _read_lines(self) -> list[str]:
        assert self._fh is not None
        data = self._partial + self._fh.read(_MAX_READ)
        complete, sep, self._partial = data.rpartition(b"\n")
        if not sep:
            return []
        return complete.decode("utf-8", errors="replace").splitlines()

    def _drain_and_close(self) -> list[str]:
        lines = self._read_lines()
        if self._partial:
            lines.append(self._partial.decode("utf-8", errors="replace"))
        self.close()
        self._partial = b""
        return lines
