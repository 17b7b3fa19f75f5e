"""The local socket between worker processes and their agent (reference §b.6).

Framing is HyperPod's: a 4-byte big-endian length, then a UTF-8 JSON object with ``type``,
``client_id`` and ``local_rank``. Workers find the socket through the environment variable
``HYPERPOD_ELASTICAGENT_SOCKET_SERVER_PATH``. This module holds the framing, the message type
names and a small blocking client; it imports nothing heavy because training scripts (through
`trainguard.checkpoint`) import it. It is a top-level leaf, not part of `trainguard.agent`,
because the agent and `trainguard.checkpoint` are independent siblings in the ``layers``
import contract: both speak this protocol, neither imports the other.

Message types used by trainguard (HyperPod's checkpoint types plus ours):

=====================  ======================================================================
``ckpt_info_update``   a save finished: ``{step, tier, path}`` -> ack
``ckpt_info_get``      which step did the controller agree on? -> ``{progress}``
``ckpt_save_begin``    a save starts (log-rule timers pause) -> ack
``ckpt_save_end``      the save is over (timers resume) -> ack
``ckpt_save_failed``   a save failed in the background: ``{step, rank, tier, error}`` -> ack
``ckpt_fetch``         fetch rank R's step S from peers into local memory -> ``{path} | {error}``
``resume_report``      training resumed: ``{step, tier, seconds}``, optionally
                       ``world_size``, ``saved_world_size`` and ``reason`` -> ack
``ckpt_replicate``     copy a committed memory step to the peer agent -> ``{replicated}``
``ckpt_peer_steps``    steps of rank R that peer agents hold -> ``{steps, world_sizes}``
``train_step``         a training step finished: ``{step, rank, total?, loss?}`` -> ack
=====================  ======================================================================
"""

from __future__ import annotations

import json
import os
import socket
import struct
import uuid
from typing import Any

from trainguard import constants as c
from trainguard.errors import AgentError, AgentRefused

HEADER = struct.Struct(">I")
MAX_MESSAGE = 16 * 1024 * 1024

RESTORE_STEP = -1
"""The ``step`` of the ``ckpt_save_begin``/``_end`` pair around a restore (not a save's stall)."""

CKPT_INFO_UPDATE = "ckpt_info_update"
CKPT_INFO_GET = "ckpt_info_get"
CKPT_SAVE_BEGIN = "ckpt_save_begin"
CKPT_SAVE_END = "ckpt_save_end"
CKPT_SAVE_FAILED = "ckpt_save_failed"
CKPT_FETCH = "ckpt_fetch"
RESUME_REPORT = "resume_report"
INVALID_RESPONSE = "invalid_response"
CKPT_REPLICATE = "ckpt_replicate"
CKPT_PEER_STEPS = "ckpt_peer_steps"
TRAIN_STEP = "train_step"


def encode(message: dict[str, Any]) -> bytes:
    """Length-prefixed UTF-8 JSON."""
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_MESSAGE:
        raise ValueError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return HEADER.pack(len(body)) + body


def read_message(sock: socket.socket) -> dict[str, Any] | None:
    """One message from ``sock``; ``None`` when the peer closed the connection."""
    header = _read_exactly(sock, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE:
        raise AgentError(f"agent socket: message of {length} bytes exceeds {MAX_MESSAGE}")
    body = _read_exactly(sock, length)
    if body is None:
        return None
    decoded: dict[str, Any] = json.loads(body)
    return decoded


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class AgentSocketClient:
    """A worker's connection to its agent; one request, one reply, in order.

    Args:
        path: socket path; defaults to the environment variable the agent sets.
        timeout: seconds to wait for a reply.
    """

    def __init__(self, path: str | None = None, *, timeout: float = 30.0) -> None:
        resolved = path or os.environ.get(c.ENV_AGENT_SOCKET)
        if not resolved:
            raise AgentError(f"no agent socket: {c.ENV_AGENT_SOCKET} is not set")
        self.path = resolved
        self.client_id = str(uuid.uuid4())
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(resolved)
        except OSError as exc:
            self._sock.close()
            raise AgentError(f"cannot connect to agent socket {resolved}: {exc}") from exc

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send ``{type: kind, **fields}`` and return the agent's reply."""
        message = {"type": kind, "client_id": self.client_id, "local_rank": self.local_rank}
        try:
            self._sock.sendall(encode(message | fields))
            reply = read_message(self._sock)
        except OSError as exc:
            raise AgentError(f"agent socket {self.path}: {exc}") from exc
        if reply is None:
            raise AgentError(f"agent socket {self.path} closed")
        if reply.get("type") == INVALID_RESPONSE:
            raise AgentRefused(f"agent refused {kind}: {reply.get('error', 'invalid request')}")
        return reply

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def __enter__(self) -> AgentSocketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
