"""The durable tier: torch.distributed.checkpoint (DCP) directories on any fsspec file system.

Layout under ``<uri>/<job>/``::

    .tmp-step_<N>/            DCP writes here first (every rank, one file per rank)
    step_<N>/                 renamed from the temporary name by the coordinator
    step_<N>/trainguard-manifest.json   every file's size and checksum
    step_<N>/COMMITTED        completion marker, written last

We use DCP's layout, not our own, because DCP reshards on load: a step saved by two ranks loads
into one or three. Each rank checksums the files it wrote and the coordinator (rank 0 of the
checkpoint group) gathers them into the manifest, renames the directory and writes the marker;
a step without its marker does not exist for readers. Reading verifies every file a rank is
about to read against the manifest (`_VerifyingReader`), so a flipped byte is a
`CheckpointCorrupt`, never a silently wrong tensor. Loads run without collectives
(``no_dist``), so one rank falling back to this tier never waits for ranks that did not.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import posixpath
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any

import torch
import torch.distributed as dist
from fsspec.core import url_to_fs
from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict_loader import load as dcp_load
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save

from trainguard.checkpoint import checksum, manifest
from trainguard.checkpoint.base import STATE_KEY, TierName, merge_payload
from trainguard.checkpoint.dcpio import RecordingWriter
from trainguard.checkpoint.manifest import DurableManifest, FileEntry
from trainguard.checkpoint.tree import FlatState, TensorRef, dtype_from_name, iter_refs
from trainguard.checkpoint.tree import load_skeleton as unpickle
from trainguard.clock import Clock, SystemClock
from trainguard.errors import CheckpointCorrupt, CheckpointError, CheckpointNotFound, StorageFull

log = logging.getLogger("trainguard.checkpoint")

METADATA_NAME = ".metadata"
STEP_PREFIX = "step_"
TMP_PREFIX = ".tmp-step_"


class DurableTier:
    """One rank's view of the durable tier.

    Args:
        uri: fsspec URI of the checkpoint root (``/path``, ``file:///path``, ``s3://b/p``...).
        job: job name (a directory level).
        rank: rank in the checkpoint group.
        world_size: ranks in the checkpoint group.
        keep: complete steps to retain (M); older ones are deleted by the coordinator.
        group: the process group for save collectives (a dedicated gloo group), or ``None``
            when torch.distributed is not initialized (single process).
        clock: time source for manifest timestamps.
    """

    name = TierName.DURABLE

    def __init__(
        self,
        uri: str,
        *,
        job: str,
        rank: int,
        world_size: int,
        keep: int = 2,
        group: Any = None,
        clock: Clock | None = None,
    ) -> None:
        self.uri, self.job, self.rank, self.world_size = uri, job, rank, world_size
        self.keep, self.group = keep, group
        self.clock: Clock = clock or SystemClock()
        try:
            self.fs, base = url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise CheckpointError(f"durable checkpoint uri {uri!r}: {exc}") from exc
        self.root = posixpath.join(base.rstrip("/"), job)
        self.protocol = _protocol(self.fs)

    # --- naming -------------------------------------------------------------------------
    def step_path(self, step: int) -> str:
        """Directory of a committed step."""
        return posixpath.join(self.root, f"{STEP_PREFIX}{step}")

    def _url(self, path: str) -> str:
        return path if self.protocol in ("file", "local") else f"{self.protocol}://{path}"

    # --- discovery ----------------------------------------------------------------------
    def steps(self) -> list[int]:
        """Committed steps (marker present), oldest first."""
        try:
            names = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CheckpointError(f"durable tier {self.root}: cannot list: {exc}") from exc
        found = []
        for path in names:
            step = _step_of(posixpath.basename(path.rstrip("/")), STEP_PREFIX)
            if step is not None and self.fs.exists(posixpath.join(path, manifest.MARKER_NAME)):
                found.append(step)
        return sorted(found)

    # --- writing ------------------------------------------------------------------------
    def write(self, step: int, flat: FlatState, skeleton: bytes) -> bool:
        """Write ``step`` collectively; True on every rank once the coordinator committed it.

        Args:
            step: the training step.
            flat: tensors to write (views of the pinned memory snapshot are fine).
            skeleton: this rank's pickled skeleton.

        Raises:
            StorageFull: the target file system ran out of space (on any rank).
            CheckpointError: DCP or the file system failed otherwise.
        """
        tmp = posixpath.join(self.root, f"{TMP_PREFIX}{step}")
        state: dict[str, Any] = {r.fqn: t for r, t in zip(flat.refs, flat.tensors, strict=True)}
        state[manifest.SKELETON_KEY.format(rank=self.rank)] = skeleton
        entries: dict[str, FileEntry] | str
        writer = RecordingWriter(self._url(tmp), sync_files=True)
        try:
            with _quiet():
                dcp_save(state, storage_writer=writer, process_group=self.group, no_dist=self._solo)
            entries = self._own_entries(tmp)
        except (Exception, CheckpointException) as exc:
            self._cleanup(tmp)
            raise _mapped(writer.os_error or exc, f"durable write of step {step} to {tmp}") from exc
        gathered = self._gather(entries)
        ok = False
        if self.rank == 0:
            ok = self._commit(step, tmp, gathered)
        return self._broadcast(ok)

    @property
    def _solo(self) -> bool:
        return self.group is None

    def _own_entries(self, tmp: str) -> dict[str, FileEntry]:
        prefix = f"__{self.rank}_"
        entries = {}
        for path in self.fs.ls(tmp, detail=False):
            name = posixpath.basename(path)
            if name.startswith(prefix):
                entries[name] = self._entry(path)
        return entries

    def _entry(self, path: str, algorithm: str = checksum.ALGORITHM) -> FileEntry:
        with self.fs.open(path, "rb") as stream:
            size, digest = checksum.of_stream(stream, algorithm)
        return FileEntry(size=size, checksum=digest)

    def _gather(self, entries: dict[str, FileEntry] | str) -> list[Any]:
        if self._solo:
            return [entries]
        out: list[Any] = [None] * self.world_size if self.rank == 0 else []
        dist.gather_object(entries, out if self.rank == 0 else None, dst=0, group=self.group)
        return out

    def _broadcast(self, ok: bool) -> bool:
        if self._solo:
            return ok
        holder = [ok]
        dist.broadcast_object_list(holder, src=0, group=self.group)
        return bool(holder[0])

    def _commit(self, step: int, tmp: str, gathered: list[Any]) -> bool:
        files: dict[str, FileEntry] = {}
        for part in gathered:
            if not isinstance(part, dict):
                log.error("durable step %d: a rank failed after writing: %s", step, part)
                self._cleanup(tmp)
                return False
            files.update(part)
        try:
            files[METADATA_NAME] = self._entry(posixpath.join(tmp, METADATA_NAME))
            record = DurableManifest(
                job=self.job,
                step=step,
                world_size=self.world_size,
                files=files,
                created=self.clock.wall(),
            )
            self._pipe(posixpath.join(tmp, manifest.MANIFEST_NAME), manifest.dumps(record))
            final = self.step_path(step)
            if self.fs.exists(final):
                self.fs.rm(final, recursive=True)
            self.fs.mv(tmp, final, recursive=True)
            self._pipe(posixpath.join(final, manifest.MARKER_NAME), b"%d\n" % step)
        except Exception as exc:
            self._cleanup(tmp)
            raise _mapped(exc, f"durable commit of step {step}") from exc
        self.retain(newest=step)
        return True

    def _pipe(self, path: str, data: bytes) -> None:
        with self.fs.open(path, "wb") as handle:
            handle.write(data)

    def _cleanup(self, tmp: str) -> None:
        if self.rank != 0:
            return
        try:
            if self.fs.exists(tmp):
                self.fs.rm(tmp, recursive=True)
        except OSError as exc:
            log.warning("durable tier: cannot remove temporary %s: %s", tmp, exc)

    def retain(self, *, newest: int | None = None) -> None:
        """Delete complete steps beyond the newest ``keep`` (coordinator only).

        Args:
            newest: the step just committed; steps above it belong to a timeline abandoned by
                a resume from an older step, and are deleted too (they would otherwise
                outlive every new step in the retention order).
        """
        if self.rank != 0:
            return
        steps = self.steps()
        doomed = [s for s in steps if newest is not None and s > newest]
        kept = [s for s in steps if s not in doomed]
        for step in doomed + kept[: -self.keep or None]:
            try:
                self.fs.rm(self.step_path(step), recursive=True)
            except OSError as exc:
                log.warning("durable tier: cannot delete old step %d: %s", step, exc)

    # --- reading ------------------------------------------------------------------------
    def read(self, step: int, target: MutableMapping[str, Any]) -> Any:
        """Verify and load ``step`` into ``target`` (any world size); return its user content.

        Raises:
            CheckpointNotFound: the step has no completion marker.
            CheckpointCorrupt: the manifest or a file does not match.
        """
        path = self.step_path(step)
        if not self.fs.exists(posixpath.join(path, manifest.MARKER_NAME)):
            raise CheckpointNotFound(f"durable step {step} at {path} has no completion marker")
        record = self._manifest(path)
        key = manifest.SKELETON_KEY.format(rank=self.rank if self.rank < record.world_size else 0)
        holder: dict[str, Any] = {key: b""}
        self._load(path, record, holder)
        skeleton = unpickle(holder[key], source=f"{path}:{key}")
        metadata = _VerifyingReader(self._url(path), self, record).read_metadata()
        tensors = {
            ref.fqn: _buffer_for(ref, path, metadata, target) for path, ref in iter_refs(skeleton)
        }
        self._load(path, record, dict(tensors))
        return merge_payload(target, skeleton, lambda ref, current: tensors[ref.fqn])

    def _manifest(self, path: str) -> DurableManifest:
        source = posixpath.join(path, manifest.MANIFEST_NAME)
        try:
            with self.fs.open(source, "rb") as handle:
                data = handle.read()
        except FileNotFoundError as exc:
            raise CheckpointCorrupt(f"{source}: manifest missing beside a marker") from exc
        record = manifest.parse(DurableManifest, data, source=source)
        checksum.check_algorithm(record.algorithm, source=source)
        return record

    def _load(self, path: str, record: DurableManifest, state: dict[str, Any]) -> None:
        reader = _VerifyingReader(self._url(path), self, record)
        try:
            with _quiet():
                dcp_load(state, storage_reader=reader, no_dist=True)
        except CheckpointCorrupt:
            raise
        except (Exception, CheckpointException) as exc:
            corrupt = _find(exc, CheckpointCorrupt)
            if corrupt is not None:
                raise corrupt from exc
            raise CheckpointCorrupt(f"durable step at {path}: cannot load: {exc}") from exc


class _VerifyingReader(FsspecReader):
    """An FsspecReader that checks each file against the manifest before reading from it."""

    def __init__(self, url: str, tier: DurableTier, record: DurableManifest) -> None:
        super().__init__(url)
        self._tier, self._record = tier, record
        self._verified: set[str] = set()
        self._dir = tier.step_path(record.step)

    def _verify(self, name: str) -> None:
        if name in self._verified:
            return
        expected = self._record.files.get(name)
        where = posixpath.join(self._dir, name)
        if expected is None:
            raise CheckpointCorrupt(f"{where}: not listed in the manifest")
        try:
            actual = self._tier._entry(where, self._record.algorithm)
        except FileNotFoundError as exc:
            raise CheckpointCorrupt(f"{where}: listed in the manifest but missing") from exc
        if actual != expected:
            raise CheckpointCorrupt(
                f"{where}: size/checksum {actual.size}/{actual.checksum} != manifest "
                f"{expected.size}/{expected.checksum}"
            )
        self._verified.add(name)

    def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
        self._verify(METADATA_NAME)
        return super().read_metadata(*args, **kwargs)

    def read_data(self, plan: Any, planner: Any) -> Any:
        for item in plan.items:
            self._verify(self.storage_data[item.storage_index].relative_path)
        return super().read_data(plan, planner)


def _buffer_for(ref: TensorRef, path: tuple[Any, ...], metadata: Any, target: Any) -> Any:
    """The caller's tensor at ``path`` when it matches the stored tensor, else a new one."""
    stored = metadata.state_dict_metadata.get(ref.fqn)
    if stored is None:
        raise CheckpointCorrupt(f"tensor {ref.fqn} missing from the DCP metadata")
    current = _lookup(target, path[1:]) if path[:1] == (STATE_KEY,) else None
    shape, dtype = tuple(stored.size), dtype_from_name(ref.dtype)
    if isinstance(current, torch.Tensor) and (tuple(current.shape), current.dtype) == (
        shape,
        dtype,
    ):
        return current
    return torch.empty(shape, dtype=dtype)


def _lookup(container: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path`` inside nested dicts/lists, or None."""
    for key in path:
        try:
            container = container[key]
        except (KeyError, IndexError, TypeError):
            return None
    return container


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence DCP's "assuming the intent is to save/load in a single process" (we mean it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*assuming the intent is to", category=UserWarning
        )
        yield


def _step_of(name: str, prefix: str) -> int | None:
    digits = name.removeprefix(prefix)
    return int(digits) if name.startswith(prefix) and digits.isdigit() else None


def _protocol(fs: Any) -> str:
    protocol = fs.protocol
    return str(protocol[0] if isinstance(protocol, tuple | list) else protocol)


def _find(exc: BaseException, kind: type[Exception]) -> Any:
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


def _mapped(exc: BaseException, what: str) -> CheckpointError:
    """Map a write failure: out of space is `StorageFull`, anything else `CheckpointError`."""
    full = _find(exc, OSError)
    if full is not None and full.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"{what}: no space left ({full}); training continues on memory")
    if isinstance(exc, CheckpointError):
        return exc
    return CheckpointError(f"{what}: {exc}")
