"""Evaluate a CRD's CEL rules (``x-kubernetes-validations``) on a document, as the API server does.

The API server runs each rule with ``self`` bound to the value at the rule's node, for every
value present in the object; a rule that yields false refuses the object with the rule's
message at ``path + fieldPath``. cel-python (a pure-Python CEL) stands in for the API server's
cel-go here, so tests prove the rules compile and mean what the messages say.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import celpy

VALIDATIONS = "x-kubernetes-validations"
_ENV = celpy.Environment()


def cel_violations(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """``path: message`` for every rule that ``value`` breaks."""
    return list(_violations(schema, value, path))


def _violations(schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    if value is None:
        return
    for rule in schema.get(VALIDATIONS, []):
        program = _ENV.program(_ENV.compile(rule["rule"]))
        if not program.evaluate({"self": celpy.json_to_cel(value)}):
            yield f"{path}{rule.get('fieldPath', '')}: {rule['message']}"
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            yield from _violations(sub, value.get(key), f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _violations(schema["items"], item, f"{path}[{index}]")
