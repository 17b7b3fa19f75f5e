"""Namespaces: one per training job, with its rank count and how many steps to retain.

The library creates its namespace once (``POST /v1/cp/namespaces/{ns}?num_ranks=&
steps_retained=``; ``num_ranks`` is the data-parallel world size plus one metadata rank) and
reads it back as ``{"num_ranks": N, "steps_to_retain_per_rank": K}``. The config is written
next to the namespace's shards in shared memory, so a restarted server still knows it: shards
in tmpfs outlive the server process, and their namespace must too.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from trainguard.checkpoint import manifest
from trainguard.errors import ConflictError, CorruptRecord
from trainguard.permissions import private_dir

CONFIG_FILE = "namespace.json"


@dataclass(frozen=True)
class NamespaceConfig:
    """A namespace's shape.

    Attributes:
        num_ranks: ranks that make a step complete (world size + metadata ranks).
        steps_retained: newest steps each rank keeps; older ones are evicted.
    """

    num_ranks: int
    steps_retained: int

    def as_json(self) -> dict[str, int]:
        """The body of ``GET /v1/cp/namespaces/{ns}``."""
        return {"num_ranks": self.num_ranks, "steps_to_retain_per_rank": self.steps_retained}

    @classmethod
    def from_json(cls, value: object) -> NamespaceConfig:
        """Parse what `as_json` wrote (or a peer answered).

        Raises:
            CorruptRecord: not that shape.
        """
        if not isinstance(value, dict):
            raise CorruptRecord(f"namespace config is not an object: {str(value)[:80]}")
        try:
            return cls(int(value["num_ranks"]), int(value["steps_to_retain_per_rank"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord(f"namespace config {str(value)[:80]}: {exc}") from exc


class NamespaceRegistry:
    """Namespace configs under ``root`` (``<root>/<ns>/namespace.json``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._configs: dict[str, NamespaceConfig] = {}
        self._load()

    def _load(self) -> None:
        for path in sorted(self.root.glob(f"*/{CONFIG_FILE}")):
            try:
                config = NamespaceConfig.from_json(json.loads(path.read_text()))
            except (OSError, ValueError) as exc:
                raise CorruptRecord(f"{path}: unreadable namespace config: {exc}") from exc
            self._configs[path.parent.name] = config

    def get(self, name: str) -> NamespaceConfig | None:
        """The config of ``name``, or None."""
        with self._lock:
            return self._configs.get(name)

    def names(self) -> list[str]:
        """Every namespace this server knows."""
        with self._lock:
            return sorted(self._configs)

    def items(self) -> list[tuple[str, NamespaceConfig]]:
        """Every namespace with its config."""
        with self._lock:
            return sorted(self._configs.items())

    def create(self, name: str, config: NamespaceConfig) -> bool:
        """Create ``name``; False when it already exists with the same config.

        Raises:
            ConflictError: it exists with another rank count or retention.
        """
        with self._lock:
            current = self._configs.get(name)
            if current == config:
                return False
            if current is not None:
                raise ConflictError(
                    f"namespace {name!r} exists with num_ranks={current.num_ranks}, "
                    f"steps_retained={current.steps_retained}"
                )
            directory = self.root / name
            private_dir(directory)
            manifest.write_atomic(directory / CONFIG_FILE, json.dumps(config.as_json()).encode())
            self._configs[name] = config
            return True

    def forget(self, name: str) -> bool:
        """Drop ``name``'s config (its shards are the store's); False if unknown."""
        with self._lock:
            if self._configs.pop(name, None) is None:
                return False
            (self.root / name / CONFIG_FILE).unlink(missing_ok=True)
            return True
