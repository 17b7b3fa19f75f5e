"""Hostile HTTP clients on raw sockets: oversized bodies sent slowly, idle connections.

httpx cannot send a body the server refuses halfway, nor hold thousands of silent sockets, so
these speak HTTP/1.1 by hand.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Iterator

HOST = "127.0.0.1"
MB = 1 << 20


def head(path: str, *, token: str | None, length: int | None) -> bytes:
    """Request line and headers of a POST (chunked when ``length`` is None)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}", "Content-Type: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_body(size: int) -> Iterator[bytes]:
    """``{"x": "aaa...a"}`` of ``size`` bytes, one MiB at a time."""
    yield b'{"x": "'
    left = size - 9
    while left > 0:
        chunk = min(left, MB)
        yield b"a" * chunk
        left -= chunk
    yield b'"}'


def chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    """``parts`` in HTTP chunked transfer encoding."""
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def send(
    port: int, request: bytes, body: Iterator[bytes] | None = None, timeout: float = 30
) -> bytes:
    """Send ``request`` then ``body`` until the server answers or closes; its answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        for part in body or ():
            if select.select([sock], [], [], 0)[0]:
                break  # answered early: the rest is not read
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        return receive_all(sock)


def receive_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there is none)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def idle_connections(port: int, count: int) -> list[socket.socket]:
    """Up to ``count`` connections that never send a byte (those refused are skipped)."""
    opened = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            opened.append(socket.create_connection((HOST, port), timeout=5))
    return opened
