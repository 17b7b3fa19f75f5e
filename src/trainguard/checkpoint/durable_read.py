"""Reading one committed durable step: every file checked against the manifest first.

A DCP step directory is read through torch's ``FsspecReader``; `StepFiles` puts a check in
front of it: before any byte of a file is used, its size and checksum must equal what the
manifest recorded at commit, so a flipped byte or a truncated file is a `CheckpointCorrupt`,
never a silently wrong tensor. Loads run without collectives (``no_dist``), so one rank that
falls back to the durable tier never waits for ranks that did not. `buffer_for` picks the
tensor DCP loads into: the caller's own when it matches (loaded in place), else a new one.
Kept apart from `trainguard.checkpoint.durable`, which writes, commits and retains steps.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

import torch
from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict_loader import load as dcp_load

from trainguard.checkpoint import checksum, manifest
from trainguard.checkpoint.base import STATE_KEY
from trainguard.checkpoint.dcpio import find, quiet
from trainguard.checkpoint.manifest import DurableManifest, FileEntry
from trainguard.checkpoint.tree import TensorRef, dtype_from_name
from trainguard.errors import CheckpointCorrupt

METADATA_NAME = ".metadata"
EntryOf = Callable[[str, str], FileEntry]
"""``(path, algorithm) -> FileEntry``: a file's size and checksum as it is now."""


def read_manifest(fs: Any, path: str) -> DurableManifest:
    """The manifest of the step directory ``path`` (its algorithm known to us)."""
    source = posixpath.join(path, manifest.MANIFEST_NAME)
    try:
        with fs.open(source, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise CheckpointCorrupt(f"{source}: manifest missing beside a marker") from exc
    record = manifest.parse(DurableManifest, data, source=source)
    checksum.check_algorithm(record.algorithm, source=source)
    return record


class StepFiles:
    """The files of one committed step, each verified against ``record`` before it is read.

    Args:
        url: the step directory as an fsspec URL (what DCP's reader opens).
        path: the same directory as a path on the tier's file system (for messages, checks).
        record: the step's manifest.
        entry: measures a file now (size and checksum), to compare with the manifest.
    """

    def __init__(self, url: str, path: str, record: DurableManifest, *, entry: EntryOf) -> None:
        self.url, self.path, self.record, self._entry = url, path, record, entry

    def metadata(self) -> Any:
        """DCP's metadata of the step (verified)."""
        return _VerifyingReader(self).read_metadata()

    def load(self, state: dict[str, Any]) -> None:
        """Load the keys of ``state`` from the step, in place, without collectives."""
        try:
            with quiet():
                dcp_load(state, storage_reader=_VerifyingReader(self), no_dist=True)
        except CheckpointCorrupt:
            raise
        except (Exception, CheckpointException) as exc:
            corrupt = find(exc, CheckpointCorrupt)
            if corrupt is not None:
                raise corrupt from exc
            raise CheckpointCorrupt(f"durable step at {self.path}: cannot load: {exc}") from exc

    def verify(self, name: str) -> None:
        """Raise `CheckpointCorrupt` unless file ``name`` matches the manifest."""
        expected = self.record.files.get(name)
        where = posixpath.join(self.path, name)
        if expected is None:
            raise CheckpointCorrupt(f"{where}: not listed in the manifest")
        try:
            actual = self._entry(where, self.record.algorithm)
        except FileNotFoundError as exc:
            raise CheckpointCorrupt(f"{where}: listed in the manifest but missing") from exc
        if actual != expected:
            raise CheckpointCorrupt(
                f"{where}: size/checksum {actual.size}/{actual.checksum} != manifest "
                f"{expected.size}/{expected.checksum}"
            )


class _VerifyingReader(FsspecReader):
    """An FsspecReader that checks each file against the manifest before reading from it."""

    def __init__(self, files: StepFiles) -> None:
        super().__init__(files.url)
        self._files = files
        self._verified: set[str] = set()

    def _verify(self, name: str) -> None:
        if name not in self._verified:
            self._files.verify(name)
            self._verified.add(name)

    def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
        self._verify(METADATA_NAME)
        return super().read_metadata(*args, **kwargs)

    def read_data(self, plan: Any, planner: Any) -> Any:
        for item in plan.items:
            self._verify(self.storage_data[item.storage_index].relative_path)
        return super().read_data(plan, planner)


def buffer_for(ref: TensorRef, path: tuple[Any, ...], metadata: Any, target: Any) -> Any:
    """The caller's tensor at ``path`` when it matches the stored tensor, else a new one."""
    stored = metadata.state_dict_metadata.get(ref.fqn)
    if stored is None:
        raise CheckpointCorrupt(f"tensor {ref.fqn} missing from the DCP metadata")
    current = lookup(target, path[1:]) if path[:1] == (STATE_KEY,) else None
    shape, dtype = tuple(stored.size), dtype_from_name(ref.dtype)
    if isinstance(current, torch.Tensor) and (tuple(current.shape), current.dtype) == (
        shape,
        dtype,
    ):
        return current
    return torch.empty(shape, dtype=dtype)


def lookup(container: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path`` inside nested dicts/lists, or None."""
    for key in path:
        try:
            container = container[key]
        except (KeyError, IndexError, TypeError):
            return None
    return container
