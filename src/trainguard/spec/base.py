"""Base model and shared field types for manifest models.

Manifests are Kubernetes objects: camelCase keys, unknown keys preserved (a user's manifest may
carry fields of a newer operator, and ``kubectl apply`` would keep them), quantities that are
ints or strings. `ManifestModel` gives every model those rules once: snake_case attributes,
camelCase aliases, extra keys kept in ``model_extra`` so a round trip loses nothing, and
`unknown_keys` reports where they were.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema
from pydantic.alias_generators import to_camel

from trainguard.names import DNS_SUBDOMAIN_RE

QUANTITY_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)$")


class ManifestModel(BaseModel):
    """A Kubernetes-shaped object: camelCase on the wire, unknown keys kept."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
    )

    def to_manifest(self) -> dict[str, Any]:
        """The wire form: camelCase keys, ``None`` left out, unknown keys included."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def unknown_keys(value: Any, path: str = "") -> Iterator[tuple[str, ManifestModel, str]]:
    """Yield ``(dotted path, owning model, key)`` of every key kept only because no model
    knows it (the owner tells which keys were expected there)."""
    if isinstance(value, ManifestModel):
        for key in value.model_extra or {}:
            yield join_path(path, key), value, key
        for name, field in type(value).model_fields.items():
            yield from unknown_keys(getattr(value, name), join_path(path, field.alias or name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unknown_keys(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, ManifestModel | list):
                yield from unknown_keys(item, join_path(path, str(key)))


def join_path(path: str, key: str) -> str:
    """``spec`` + ``runPolicy`` -> ``spec.runPolicy``; keys with dots or slashes are quoted."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        key = f'"{key}"' if not path else f'["{key}"]'
        return f"{path}{key}" if path else key
    return f"{path}.{key}" if path else key


def _check_quantity(value: Any) -> int | float | str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a quantity such as 8, 500m or 32Gi, got {value!r}")
    if isinstance(value, str) and not QUANTITY_RE.match(value):
        raise ValueError(f"must be a quantity such as 8, 500m or 32Gi, got {value!r}")
    return value


def _check_label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN_RE.match(prefix)):
        raise ValueError(f"label key {key!r}: prefix must be a DNS subdomain")
    if not name or len(name) > 63 or not LABEL_NAME_RE.match(name):
        raise ValueError(
            f"label key {key!r}: name must be 1-63 alphanumerics, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return key


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, val in labels.items():
        _check_label_key(key)
        if len(val) > 63 or not LABEL_VALUE_RE.match(val):
            raise ValueError(
                f"label {key!r}: value {val!r} must be at most 63 alphanumerics, '-', '_' or "
                "'.', starting and ending alphanumeric"
            )
    return labels


Quantity = Annotated[
    Any,
    BeforeValidator(_check_quantity),
    WithJsonSchema(
        {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    ),
]
Labels = Annotated[dict[str, str], AfterValidator(check_labels)]
