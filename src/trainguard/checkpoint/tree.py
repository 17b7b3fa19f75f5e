"""Split a state dict into tensor bytes and a small picklable skeleton, and merge it back.

Every tier stores a checkpoint the same way: the dense tensors (the bulk of the bytes) as raw
storage, and everything else — nesting, ints, ``param_groups``, ``user_content`` — as one small
pickled *skeleton* in which each tensor is replaced by a `TensorRef`. Separating the two is what
lets the memory tier copy tensors straight into shared memory (one ``copy_`` per tensor, no
serialisation) and the durable tier hand the same tensors to torch.distributed.checkpoint.

Restoring merges into the caller's state dict in place, as ``dcp.load`` does: a tensor of the
same shape and dtype is overwritten with ``copy_`` (so parameters keep their identity and
device), anything else is replaced. Entries the checkpoint does not have are left alone.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import torch

from trainguard.errors import CheckpointCorrupt

Path = tuple[Any, ...]
ALIGN = 64


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor of the skeleton lives.

    Attributes:
        index: position in the flat tensor list (and in the memory blob's table).
        fqn: stable, unique name of the tensor's path (the key in the durable tier).
        dtype: dtype name, e.g. ``"float32"``.
        shape: shape of the stored (local) tensor.
        offset: byte offset in the memory blob.
        nbytes: byte length in the memory blob.
        global_shape: full shape when the tensor is a DTensor shard, else ``None``.
    """

    index: int
    fqn: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    global_shape: tuple[int, ...] | None = None


@dataclass
class FlatState:
    """A state dict split for storage.

    Attributes:
        skeleton: the state dict with every dense tensor replaced by its `TensorRef`.
        refs: the refs, in blob order.
        tensors: the tensors to store (DTensors as they are; tiers take ``to_local()``).
        nbytes: total tensor bytes, each tensor aligned to 64 bytes.
    """

    skeleton: Any
    refs: list[TensorRef]
    tensors: list[torch.Tensor]
    nbytes: int

    def skeleton_bytes(self) -> bytes:
        """The pickled skeleton (refs included)."""
        return pickle.dumps(self.skeleton, protocol=pickle.HIGHEST_PROTOCOL)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def dtype_from_name(name: str) -> torch.dtype:
    """Inverse of `dtype_name`; an unknown name means the stored metadata is damaged."""
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointCorrupt(f"unknown dtype {name!r} in checkpoint metadata")
    return dtype


def fqn_of(path: Path) -> str:
    """A unique string for a key path: str keys escaped, other keys tagged with their type."""
    parts = []
    for key in path:
        if isinstance(key, str):
            parts.append(key.replace("%", "%25").replace("/", "%2F"))
        else:
            parts.append(f"%{type(key).__name__}:{key}")
    return "/".join(parts)


def is_dtensor(value: Any) -> bool:
    """True for ``torch.distributed.tensor.DTensor`` (without importing it when unused)."""
    return type(value).__name__ == "DTensor" and hasattr(value, "to_local")


def local_tensor(value: torch.Tensor) -> torch.Tensor:
    """The bytes this rank holds: a DTensor's local shard, or the tensor itself."""
    return value.to_local() if is_dtensor(value) else value  # type: ignore[attr-defined]


def _storable(value: Any) -> bool:
    if is_dtensor(value):
        return True
    return (
        isinstance(value, torch.Tensor)
        and value.layout == torch.strided
        and not (value.is_quantized or value.is_meta)
    )


def flatten(state: Mapping[str, Any]) -> FlatState:
    """Split ``state`` into a skeleton and its dense tensors (sparse/quantized stay pickled).

    Raises:
        CheckpointError: never; unpicklable values fail later, when the skeleton is pickled.
    """
    refs: list[TensorRef] = []
    tensors: list[torch.Tensor] = []
    offset = 0

    def visit(value: Any, path: Path) -> Any:
        nonlocal offset
        if _storable(value):
            local = local_tensor(value)
            nbytes = local.numel() * local.element_size()
            ref = TensorRef(
                index=len(refs),
                fqn=fqn_of(path),
                dtype=dtype_name(local.dtype),
                shape=tuple(local.shape),
                offset=offset,
                nbytes=nbytes,
                global_shape=tuple(value.shape) if is_dtensor(value) else None,
            )
            refs.append(ref)
            tensors.append(value)
            offset += -(-nbytes // ALIGN) * ALIGN
            return ref
        if isinstance(value, Mapping):
            return {k: visit(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
            items = [visit(v, (*path, i)) for i, v in enumerate(value)]
            return items if isinstance(value, list) else tuple(items)
        return value

    skeleton = visit(dict(state), ())
    return FlatState(skeleton=skeleton, refs=refs, tensors=tensors, nbytes=offset)


def load_skeleton(data: bytes | memoryview, *, source: str) -> Any:
    """Unpickle a skeleton written by this module; damage is `CheckpointCorrupt`."""
    try:
        return pickle.loads(data)  # our own file in our own directory
    except Exception as exc:
        raise CheckpointCorrupt(f"{source}: cannot unpickle checkpoint skeleton: {exc}") from exc


def iter_refs(skeleton: Any) -> Iterator[tuple[Path, TensorRef]]:
    """Every `TensorRef` in a skeleton with its key path."""

    def walk(value: Any, path: Path) -> Iterator[tuple[Path, TensorRef]]:
        if isinstance(value, TensorRef):
            yield path, value
        elif isinstance(value, Mapping):
            for k, v in value.items():
                yield from walk(v, (*path, k))
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                yield from walk(v, (*path, i))

    yield from walk(skeleton, ())


Resolver = Callable[[TensorRef, Any], torch.Tensor]
"""Given a ref and the caller's current value at that path (or ``None``), return the tensor
to put there: either the caller's own tensor, filled in place, or a new one."""


def merge(target: MutableMapping[str, Any], skeleton: Mapping[str, Any], resolve: Resolver) -> None:
    """Merge a skeleton into ``target`` in place, asking ``resolve`` for every tensor."""
    for key, value in skeleton.items():
        current = target.get(key)
        target[key] = _merged(current, value, resolve)


def _merged(current: Any, value: Any, resolve: Resolver) -> Any:
    if isinstance(value, TensorRef):
        return resolve(value, current)
    if isinstance(value, Mapping):
        base = current if isinstance(current, MutableMapping) else {}
        merge(base, value, resolve)
        return base
    if isinstance(value, list | tuple):
        olds = current if isinstance(current, list | tuple) and len(current) == len(value) else ()
        items = [_merged(olds[i] if olds else None, v, resolve) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    return value


def fits(current: Any, ref: TensorRef) -> bool:
    """Whether the caller's ``current`` value can receive ``ref``'s bytes in place."""
    if not isinstance(current, torch.Tensor):
        return False
    local = local_tensor(current)
    return dtype_name(local.dtype) == ref.dtype and tuple(local.shape) == ref.shape
