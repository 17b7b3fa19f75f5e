"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``) for the fake API server.

`kubectl apply --server-side` and lightkube's ``client.apply`` send the configuration a manager
wants; the server merges it into the live object and records, per manager, which fields it owns in
``metadata.managedFields`` (`fieldsets.py` holds the ``FieldsV1`` format). What is implemented,
following structured-merge-diff:

* create when the object is missing; merge maps recursively; lists keyed as Kubernetes declares
  them (``x-kubernetes-list-type: map`` keys from `smp.LIST_STRATEGIES`, or from a CRD schema
  through ``crd_list_keys``), sets merged as sets, every other list atomic;
* ownership of every leaf and list element the configuration mentions; fields a manager applied
  before and omits now are removed when no other manager owns them;
* a conflict (409 ``Conflict``, one ``FieldManagerConflict`` cause per field naming the other
  manager) when another manager owns a field being set to a different value; ``force`` takes the
  fields over instead;
* a configuration with a field its schema does not declare fails before merging, as the typed
  conversion does (`fieldvalidation.FieldValidation.check_apply`, called by the server);
* `record_update` gives a non-apply write (``Update``) ownership of the fields it changed; the
  server calls it (through `fidelity.record_managed_fields`) for every create, update and
  non-apply patch of a main resource, naming the manager by ``fieldManager`` or the User-Agent.

Not implemented: defaulting and conversion before merging (a keyed element whose key the server
would default, such as a port's ``protocol``, is keyed by the fields given), the per-version
ownership translation, ``Apply`` of the ``status`` subresource, entries for writes to a
subresource (``subresource: status``: such writes leave managedFields as they are), and the ``.``
markers structured-merge-diff adds for maps an ``Update`` creates.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trainguard.testing.kube import fieldsets, smp
from trainguard.testing.kube.fieldsets import Path
from trainguard.testing.kube.patcherror import PatchError, bad_request

JsonMap = dict[str, Any]

SERVER_OWNED = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "metadata.resourceVersion",
        "metadata.generation",
        "metadata.creationTimestamp",
        "metadata.deletionTimestamp",
        "metadata.deletionGracePeriodSeconds",
        "metadata.managedFields",
        "metadata.selfLink",
        "status",
    }
)
"""Fields no manager owns through the main resource (status belongs to the subresource)."""


@dataclass(frozen=True)
class ApplyOptions:
    """One apply request's parameters."""

    manager: str
    """The ``fieldManager`` query parameter."""
    kind: str
    """The object's kind (decides built-in list keys)."""
    force: bool = False
    """``force=true``: take over conflicting fields instead of answering 409."""
    now: datetime | None = None
    """The time recorded in this manager's entry; defaults to the wall clock."""
    crd_list_keys: Callable[[str], tuple[str, ...] | None] | None = None
    """List keys for a custom resource's dotted path (None: every list atomic)."""


def list_keys_for(
    kind: str, crd_list_keys: Callable[[str], tuple[str, ...] | None] | None
) -> fieldsets.ListKeys:
    """The `ListKeys` of `kind`: the CRD's answer for a custom resource (given whenever the kind
    is one: a CRD may reuse a built-in's kind name, such as ``Job``), else the built-in table,
    else atomic."""
    if crd_list_keys is not None:
        return crd_list_keys
    if smp.supports(kind):

        def builtin(dotted: str) -> tuple[str, ...] | None:
            strategy = smp.list_strategy(kind, dotted)
            return strategy.apply_keys if strategy else None

        return builtin
    return lambda _dotted: None


def schema_list_keys(schema: JsonMap | None) -> Callable[[str], tuple[str, ...] | None]:
    """List keys of a CRD schema by dotted path: map keys, ``()`` for a set, None if atomic."""

    def keys(dotted: str) -> tuple[str, ...] | None:
        node = schema or {}
        for part in dotted.split("."):
            node = node.get("items", node) if node.get("type") == "array" else node
            node = (node.get("properties") or {}).get(part) or {}
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "map":
            return tuple(node.get("x-kubernetes-list-map-keys") or ())
        return () if list_type == "set" else None

    return keys


def server_side_apply(live: JsonMap | None, config: JsonMap, options: ApplyOptions) -> JsonMap:
    """The object after `options.manager` applies `config` to `live` (None: create it).

    Raises:
        PatchError: 400 for a configuration without apiVersion/kind/name or of another kind,
            409 Conflict (with causes) when another manager owns a field set to a new value.
    """
    _check_config(config, options.kind)
    keys = list_keys_for(options.kind, options.crd_list_keys)
    base = copy.deepcopy(live) if live is not None else _skeleton(config)
    applied = fieldsets.field_set(config, keys, skip=SERVER_OWNED)
    owners = _owners(base)
    previous = owners.pop((options.manager, "Apply"), set())
    taken = _conflicts(base, config, applied, owners, force=options.force)
    merged: JsonMap = _merge(base, _without_server_owned(config), keys, "")
    still_owned = set().union(*owners.values()) if owners else set()
    for path in sorted(previous - applied - still_owned, key=len, reverse=True):
        fieldsets.remove(merged, path)
    owners = {who: fields - taken for who, fields in owners.items()}
    owners[(options.manager, "Apply")] = applied
    writer = (options.manager, "Apply")
    _store_owners(
        merged, owners, writer=writer, api_version=str(config["apiVersion"]), now=options.now
    )
    return merged


def record_update(
    old: JsonMap | None,
    new: JsonMap,
    *,
    manager: str,
    kind: str,
    now: datetime | None = None,
    crd_list_keys: Callable[[str], tuple[str, ...] | None] | None = None,
) -> JsonMap:
    """`new` with ``managedFields`` updated for a non-apply write (create, update, other patches).

    The writing manager (``Update``) gets every field whose value this write changed; the other
    managers lose them.
    """
    keys = list_keys_for(kind, crd_list_keys)
    before = dict(fieldsets.walk(old, keys, skip=SERVER_OWNED)) if old else {}
    after = dict(fieldsets.walk(new, keys, skip=SERVER_OWNED))
    changed = {path for path, value in after.items() if path not in before or before[path] != value}
    owners = _owners(new)
    owners = {who: fields & set(after) for who, fields in owners.items()}
    mine = owners.pop((manager, "Update"), set()) | changed
    owners = {who: fields - changed for who, fields in owners.items()}
    owners[(manager, "Update")] = mine
    result = copy.deepcopy(new)
    api_version = str(new.get("apiVersion", "v1"))
    _store_owners(result, owners, writer=(manager, "Update"), api_version=api_version, now=now)
    return result


def _check_config(config: JsonMap, kind: str) -> None:
    for field in ("apiVersion", "kind"):
        if not config.get(field):
            raise bad_request(f"{field} must be set in an apply configuration")
    if config["kind"] != kind:
        raise bad_request(
            f"kind: the apply configuration is a {config['kind']}, the object a {kind}"
        )
    metadata = config.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise bad_request("metadata.name must be set in an apply configuration")


def _skeleton(config: JsonMap) -> JsonMap:
    metadata = {k: config["metadata"][k] for k in ("name", "namespace") if k in config["metadata"]}
    return {"apiVersion": config["apiVersion"], "kind": config["kind"], "metadata": metadata}


def _without_server_owned(config: JsonMap) -> JsonMap:
    result = {k: v for k, v in config.items() if k not in ("apiVersion", "kind", "status")}
    result["metadata"] = {
        k: v for k, v in config.get("metadata", {}).items() if f"metadata.{k}" not in SERVER_OWNED
    }
    return result


def _conflicts(
    live: JsonMap,
    config: JsonMap,
    applied: set[Path],
    owners: dict[tuple[str, str], set[Path]],
    *,
    force: bool,
) -> set[Path]:
    """The fields other managers own that this apply changes; raise 409 unless `force`."""
    clashes: list[tuple[Path, str]] = []
    for (manager, _operation), fields in sorted(owners.items()):
        for path in sorted(applied & fields):
            found, current = fieldsets.value_at(live, path)
            _, wanted = fieldsets.value_at(config, path)
            if found and current != wanted and not path[-1].startswith(("k:", "v:")):
                clashes.append((path, manager))
    if clashes and not force:
        raise _conflict_error(clashes)
    return {path for path, _ in clashes}


def _conflict_error(clashes: list[tuple[Path, str]]) -> PatchError:
    causes = [
        {
            "type": "FieldManagerConflict",
            "message": f'conflict with "{manager}"',
            "field": fieldsets.describe(path),
        }
        for path, manager in clashes
    ]
    if len(clashes) == 1:
        path, manager = clashes[0]
        message = (
            f'Apply failed with 1 conflict: conflict with "{manager}": {fieldsets.describe(path)}'
        )
    else:
        lines = "\n".join(
            f'- conflict with "{manager}": {fieldsets.describe(path)}' for path, manager in clashes
        )
        message = f"Apply failed with {len(clashes)} conflicts:\n{lines}"
    return PatchError(code=409, reason="Conflict", message=message, causes=causes)


def _merge(live: Any, config: Any, keys: fieldsets.ListKeys, dotted: str) -> Any:
    if isinstance(live, dict) and isinstance(config, dict):
        result = dict(live)
        for name, value in config.items():
            sub = f"{dotted}.{name}" if dotted else name
            result[name] = (
                _merge(live.get(name), value, keys, sub) if name in live else copy.deepcopy(value)
            )
        return result
    if isinstance(live, list) and isinstance(config, list):
        list_type = keys(dotted)
        if list_type is not None:
            return _merge_list(live, config, list_type, keys, dotted)
    return copy.deepcopy(config)


def _merge_list(
    live: list[Any],
    config: list[Any],
    list_type: tuple[str, ...],
    keys: fieldsets.ListKeys,
    dotted: str,
) -> list[Any]:
    result = list(live)
    for item in config:
        element = fieldsets.element_key(item, list_type)
        index = next(
            (i for i, old in enumerate(result) if fieldsets.element_key(old, list_type) == element),
            None,
        )
        if index is None:
            result.append(copy.deepcopy(item))
        elif list_type:
            result[index] = _merge(result[index], item, keys, dotted)
    return result


def _owners(obj: JsonMap) -> dict[tuple[str, str], set[Path]]:
    owners: dict[tuple[str, str], set[Path]] = {}
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("subresource"):
            continue
        who = (str(entry.get("manager", "")), str(entry.get("operation", "Update")))
        owners[who] = owners.get(who, set()) | fieldsets.from_fields_v1(entry.get("fieldsV1") or {})
    return owners


def _store_owners(
    obj: JsonMap,
    owners: dict[tuple[str, str], set[Path]],
    *,
    writer: tuple[str, str],
    api_version: str,
    now: datetime | None,
) -> None:
    """Write `owners` as ``managedFields``; only the writer's entry gets a new time."""
    metadata = obj.setdefault("metadata", {})
    previous = metadata.get("managedFields") or []
    kept = [e for e in previous if e.get("subresource")]
    times = {(e.get("manager"), e.get("operation")): e.get("time") for e in previous}
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = [
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": stamp
            if (manager, operation) == writer
            else times.get((manager, operation), stamp),
            "fieldsType": "FieldsV1",
            "fieldsV1": fieldsets.to_fields_v1(fields),
        }
        for (manager, operation), fields in owners.items()
        if fields
    ]
    metadata["managedFields"] = entries + kept
