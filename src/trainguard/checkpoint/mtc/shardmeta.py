"""The ``Shard-Meta`` header: the client's end-to-end checksum of a shard.

``InMemoryCheckpointClient.put_checkpoint`` sends ``Shard-Meta: {"checksum": <base64 of the
16-byte xxh3-128 digest>, "algorithm": "xxh3_128"}`` and ``get_checkpoint`` refuses a body whose
xxh3-128 differs from the header it gets back. The server checks the body against the header on
the way in (a torn upload is a 400, not a shard that fails later, on restore) and returns the
header exactly as it was sent. Our memory tier adds its own CRC-32C over the stored bytes, so
a shard damaged in shared memory is caught by the server before the client sees it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import xxhash

from trainguard.checkpoint.mtc.limits import FieldError

HEADER = "Shard-Meta"
ALGORITHM = "xxh3_128"
MAX_HEADER_CHARS = 512


@dataclass(frozen=True)
class ShardChecksum:
    """A parsed ``Shard-Meta`` header and its original text (returned verbatim)."""

    digest: bytes
    text: str

    def verify(self, body: bytes) -> None:
        """Raise `FieldError` when ``body`` does not hash to the header's checksum."""
        if xxhash.xxh3_128(body).digest() != self.digest:
            raise FieldError(f"{HEADER}.checksum", "does not match the request body")


def parse(text: str | None) -> ShardChecksum:
    """Parse and check a ``Shard-Meta`` header value.

    Raises:
        FieldError: missing, not JSON, an unknown algorithm or a malformed checksum.
    """
    if not text:
        raise FieldError(HEADER, "header is required")
    if len(text) > MAX_HEADER_CHARS:
        raise FieldError(HEADER, f"longer than {MAX_HEADER_CHARS} characters")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise FieldError(HEADER, "is not JSON") from None
    if not isinstance(value, dict):
        raise FieldError(HEADER, "must be a JSON object")
    algorithm = value.get("algorithm", ALGORITHM)
    if algorithm != ALGORITHM:
        raise FieldError(f"{HEADER}.algorithm", f"{str(algorithm)[:32]!r} is not {ALGORITHM!r}")
    return ShardChecksum(digest=_digest(value.get("checksum")), text=text)


def of_body(body: bytes) -> ShardChecksum:
    """The header the library would send for ``body``."""
    encoded = base64.b64encode(xxhash.xxh3_128(body).digest()).decode()
    return parse(json.dumps({"checksum": encoded, "algorithm": ALGORITHM}))


def _digest(encoded: object) -> bytes:
    if not isinstance(encoded, str):
        raise FieldError(f"{HEADER}.checksum", "must be a base64 string")
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise FieldError(f"{HEADER}.checksum", "is not valid base64") from None
    if len(digest) != 16:
        raise FieldError(f"{HEADER}.checksum", f"is {len(digest)} bytes, xxh3_128 has 16")
    return digest
