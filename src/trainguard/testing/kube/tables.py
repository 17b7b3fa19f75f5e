"""``meta.k8s.io/v1 Table`` responses: what ``kubectl get`` prints, computed by the server.

kubectl asks for lists and objects with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``
(then the v1beta1 Table, then plain JSON) and prints the columns the server defines. The fake
answers the same way: built-in kinds through `printers.PRINTERS`, custom resources through their
CRD's ``additionalPrinterColumns`` (evaluated with `jsonpath`, ``date`` columns as ages, plus the
implicit ``Name``), CRDs and any other kind through the default ``Name``/``Created At`` columns.
``includeObject`` (``None``, ``Metadata`` — the API default — or ``Object``, which kubectl sends)
decides what each row carries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from trainguard.testing.kube import printers
from trainguard.testing.kube.jsonpath import compile_path
from trainguard.testing.kube.printers import NAME, column
from trainguard.testing.kube.timefmt import since

JsonMap = dict[str, Any]
INCLUDE_OBJECT = ("None", "Metadata", "Object")


def wants_table(accept: str | None) -> bool:
    """Whether an Accept header asks for a ``meta.k8s.io`` Table (v1 or v1beta1) first."""
    for offer in (accept or "").split(","):
        params = {
            k.strip(): v.strip() for k, _, v in (p.partition("=") for p in offer.split(";")[1:])
        }
        if (
            params.get("as") == "Table"
            and params.get("g") == "meta.k8s.io"
            and params.get("v") in ("v1", "v1beta1")
        ):
            return True
        if offer.strip().startswith(("application/json", "*/*")):
            return False
    return False


def include_object(value: str | None) -> str:
    """The ``includeObject`` query parameter, defaulted and checked.

    Raises:
        ValueError: naming the parameter, for a value other than None, Metadata or Object.
    """
    chosen = value or "Metadata"
    if chosen not in INCLUDE_OBJECT:
        raise ValueError(
            f"includeObject: unsupported value {chosen!r}; supported: {', '.join(INCLUDE_OBJECT)}"
        )
    return chosen


def table(
    objects: Iterable[JsonMap],
    *,
    kind: str,
    now: datetime,
    include: str = "Metadata",
    crd: JsonMap | None = None,
    resource_version: str = "",
    continue_token: str = "",
) -> JsonMap:
    """The Table of `objects` of `kind` (a custom resource's `crd` supplies its columns)."""
    columns, cells = _printer(kind, crd)
    metadata: JsonMap = {"resourceVersion": resource_version} if resource_version else {}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": [_row(obj, cells(obj, now), include) for obj in objects],
    }


def _row(obj: JsonMap, cells: list[Any], include: str) -> JsonMap:
    row: JsonMap = {"cells": cells}
    if include == "Object":
        row["object"] = obj
    elif include == "Metadata":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {}),
        }
    return row


def _printer(
    kind: str, crd: JsonMap | None
) -> tuple[list[JsonMap], Callable[[JsonMap, datetime], list[Any]]]:
    if crd is not None:
        return crd_printer(crd)
    if kind in printers.PRINTERS:
        found = printers.PRINTERS[kind]
        return found.columns, found.cells
    created = column(
        "Created At",
        "date",
        doc="CreationTimestamp is the server time when this object was created.",
    )
    return [NAME, created], lambda o, _now: [
        o["metadata"].get("name", ""),
        o["metadata"].get("creationTimestamp"),
    ]


def crd_printer(
    crd: JsonMap, version: str | None = None
) -> tuple[list[JsonMap], Callable[[JsonMap, datetime], list[Any]]]:
    """Columns and cell function of a CRD version: Name, then its ``additionalPrinterColumns``.

    Raises:
        ValueError: when a column's jsonPath uses JSONPath the fake does not implement.
    """
    versions = crd.get("spec", {}).get("versions") or []
    chosen = next(
        (v for v in versions if v.get("name") == version), versions[0] if versions else {}
    )
    declared = chosen.get("additionalPrinterColumns")
    if declared is None:
        declared = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    columns = [NAME] + [
        column(
            c["name"],
            c.get("type", "string"),
            priority=int(c.get("priority", 0)),
            fmt=c.get("format", ""),
            doc=c.get("description", ""),
        )
        for c in declared
    ]
    paths = [(compile_path(c["jsonPath"]), c.get("type", "string")) for c in declared]

    def cells(obj: JsonMap, now: datetime) -> list[Any]:
        return [obj.get("metadata", {}).get("name", "")] + [
            _cell(select(obj), kind, now) for select, kind in paths
        ]

    return columns, cells


def _cell(found: list[Any], kind: str, now: datetime) -> Any:
    """A cell as the CRD table convertor makes it: typed, dates as ages, None when absent."""
    if not found or found[0] is None:
        return None
    value = found[0]
    if kind == "date":
        return since(value, now) if isinstance(value, str) else "<invalid>"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    convert = _CONVERTERS.get(kind)
    if convert is None:
        return str(value)
    return convert(value)


def _integer(value: Any) -> Any:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return int(value) if numeric else None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "integer": _integer,
    "number": lambda v: v if isinstance(v, (int, float)) and not isinstance(v, bool) else None,
    "boolean": lambda v: v if isinstance(v, bool) else None,
}
