"""The durable tier: torch.distributed.checkpoint (DCP) directories on any fsspec file system.

Layout under ``<uri>/<job>/``::

    .tmp-step_<N>/            DCP writes here first (every rank, one file per rank)
    step_<N>/                 renamed from the temporary name by the coordinator
    step_<N>/trainguard-manifest.json   every file's size and checksum
    step_<N>/COMMITTED        completion marker, written last

Files are ``0600`` in ``0700`` directories unless ``file_mode`` says otherwise; temporaries of
killed saves are swept on start and by retention (rules: `trainguard.checkpoint.durable_files`).

We use DCP's layout, not our own, because DCP reshards on load: a step saved by two ranks loads
into one or three, each rank reading every tensor (a replicated DDP model and optimizer) or its
own slice of it (a DTensor) wherever the saving ranks put it. The non-tensor part of the state
(the pickled skeleton) is each saving rank's own; at another world size every rank takes rank
0's, since the controller renumbered the ranks and old rank r's values are no more new rank r's
than anyone's. Each rank checksums the files it wrote and the coordinator (rank 0 of the
checkpoint group) gathers them into the manifest, renames the directory and writes the marker; a
step without its marker does not exist for readers. Reading verifies every file a rank is about
to read against the manifest (`trainguard.checkpoint.durable_read`), so a flipped byte is a
`CheckpointCorrupt`, never a silently wrong tensor. Loads run without collectives (``no_dist``),
so one rank falling back to this tier never waits for ranks that did not.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import MutableMapping
from typing import Any

import torch.distributed as dist
from fsspec.core import url_to_fs
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save

from trainguard.checkpoint import checksum, manifest
from trainguard.checkpoint.base import TierName, merge_payload
from trainguard.checkpoint.dcpio import RecordingWriter, mapped, quiet
from trainguard.checkpoint.durable_files import (
    DEFAULT_FILE_MODE,
    DurableModes,
    remove_temporaries,
    stale_steps,
)
from trainguard.checkpoint.durable_read import (
    METADATA_NAME,
    StepFiles,
    buffer_for,
    read_manifest,
)
from trainguard.checkpoint.manifest import DurableManifest, FileEntry
from trainguard.checkpoint.tree import FlatState, iter_refs
from trainguard.checkpoint.tree import load_skeleton as unpickle
from trainguard.clock import Clock, SystemClock
from trainguard.errors import CheckpointError, CheckpointNotFound

log = logging.getLogger("trainguard.checkpoint")

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
        file_mode: mode of every file written (directories: the same plus ``x`` per ``r``);
            local file systems only.
        generation: the run id recorded in each manifest (see `ShardMeta.generation`).
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
        file_mode: int = DEFAULT_FILE_MODE,
        generation: str | None = None,
    ) -> None:
        self.uri, self.job, self.rank, self.world_size = uri, job, rank, world_size
        self.generation = generation
        self.keep, self.group = keep, group
        self.clock: Clock = clock or SystemClock()
        try:
            self.fs, base = url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise CheckpointError(f"durable checkpoint uri {uri!r}: {exc}") from exc
        self.root = posixpath.join(base.rstrip("/"), job)
        self.protocol = _protocol(self.fs)
        self.modes = DurableModes(self.fs, self.protocol, file_mode)
        self._writing: int | None = None

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
        self._writing = step
        try:
            return self._write(step, tmp, flat, skeleton)
        finally:
            self._writing = None

    def _write(self, step: int, tmp: str, flat: FlatState, skeleton: bytes) -> bool:
        state: dict[str, Any] = {r.fqn: t for r, t in zip(flat.refs, flat.tensors, strict=True)}
        state[manifest.SKELETON_KEY.format(rank=self.rank)] = skeleton
        entries: dict[str, FileEntry] | str
        writer = RecordingWriter(self._url(tmp), sync_files=True)
        try:
            self.modes.make_dir(self.root)
            self.modes.make_dir(tmp)  # before DCP writes: nothing in it is ever reachable
            with quiet():
                dcp_save(state, storage_writer=writer, process_group=self.group, no_dist=self._solo)
            entries = self._own_entries(tmp)
        except (Exception, CheckpointException) as exc:
            self._cleanup(tmp)
            raise mapped(writer.os_error or exc, f"durable write of step {step} to {tmp}") from exc
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
                self.modes.apply([path])
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
                generation=self.generation,
            )
            self._pipe(posixpath.join(tmp, manifest.MANIFEST_NAME), manifest.dumps(record))
            names = (METADATA_NAME, manifest.MANIFEST_NAME)
            self.modes.apply(posixpath.join(tmp, name) for name in names)
            final = self.step_path(step)
            if self.fs.exists(final):
                self.fs.rm(final, recursive=True)
            self.fs.mv(tmp, final, recursive=True)
            self._pipe(posixpath.join(final, manifest.MARKER_NAME), b"%d\n" % step)
            self.modes.apply([posixpath.join(final, manifest.MARKER_NAME)])
        except Exception as exc:
            self._cleanup(tmp)
            raise mapped(exc, f"durable commit of step {step}") from exc
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
        self.sweep()

    def sweep(self) -> list[int]:
        """Delete temporaries no live writer owns (coordinator only); return their steps.

        Called on construction and after every retention; the rule is `durable_files`'s.
        """
        if self.rank != 0:
            return []
        try:
            names = [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.root, detail=False)]
            committed = self.steps()
        except (FileNotFoundError, CheckpointError):
            return []
        exclusive = not self._solo or self.world_size == 1
        doomed = stale_steps(
            names,
            prefix=TMP_PREFIX,
            exclusive=exclusive,
            newest=committed[-1] if committed else None,
            busy=self._writing,
        )
        return remove_temporaries(self.fs, self.root, TMP_PREFIX, doomed)

    # --- reading ------------------------------------------------------------------------
    def saved_world_size(self, step: int) -> int:
        """Ranks that saved committed ``step`` (its manifest's ``world_size``)."""
        return read_manifest(self.fs, self.step_path(step)).world_size

    def generation_of(self, step: int) -> str | None:
        """The run that saved committed ``step`` (``None`` for steps of older versions)."""
        return read_manifest(self.fs, self.step_path(step)).generation

    def read(self, step: int, target: MutableMapping[str, Any]) -> Any:
        """Verify and load ``step`` into ``target`` (any world size); return its user content.

        Raises:
            CheckpointNotFound: the step has no completion marker.
            CheckpointCorrupt: the manifest or a file does not match.
        """
        path = self.step_path(step)
        if not self.fs.exists(posixpath.join(path, manifest.MARKER_NAME)):
            raise CheckpointNotFound(f"durable step {step} at {path} has no completion marker")
        step_files = StepFiles(
            self._url(path), path, read_manifest(self.fs, path), entry=self._entry
        )
        record = step_files.record
        same_size = record.world_size == self.world_size
        key = manifest.SKELETON_KEY.format(rank=self.rank if same_size else 0)
        holder: dict[str, Any] = {key: b""}
        step_files.load(holder)
        skeleton = unpickle(holder[key], source=f"{path}:{key}")
        metadata = step_files.metadata()
        tensors = {
            ref.fqn: buffer_for(ref, path, metadata, target) for path, ref in iter_refs(skeleton)
        }
        step_files.load(dict(tensors))
        return merge_payload(target, skeleton, lambda ref, current: tensors[ref.fqn])


def _step_of(name: str, prefix: str) -> int | None:
    digits = name.removeprefix(prefix)
    return int(digits) if name.startswith(prefix) and digits.isdigit() else None


def _protocol(fs: Any) -> str:
    protocol = fs.protocol
    return str(protocol[0] if isinstance(protocol, tuple | list) else protocol)
