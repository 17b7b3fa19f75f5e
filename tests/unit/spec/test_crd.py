"""The generated CRD is a structural schema that accepts every example and rejects bad values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import EXAMPLES
from trainguard import constants as c
from trainguard.spec import crd, load_jobs

SCHEMA = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.get("properties", {}).items():
            yield from walk(value, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from walk(node[key], f"{path}[{key}]")
        for index, option in enumerate(node.get("anyOf", [])):
            yield from walk(option, f"{path}|{index}")


def test_identity() -> None:
    document = crd()
    assert document["metadata"]["name"] == "hyperpodpytorchjobs.sagemaker.amazonaws.com"
    assert document["spec"]["group"] == c.GROUP
    assert document["spec"]["names"]["kind"] == "HyperPodPyTorchJob"
    assert document["spec"]["scope"] == "Namespaced"


def test_schema_is_structural() -> None:
    for path, node in walk(SCHEMA):
        assert "$ref" not in node, path
        assert "$defs" not in node, path
        if "|" in path.rsplit(".", 1)[-1]:
            continue  # anyOf branches may omit type beside x-kubernetes-int-or-string
        typed = "type" in node
        assert (
            typed
            or node.get("x-kubernetes-preserve-unknown-fields")
            or node.get("x-kubernetes-int-or-string")
        ), path
        if "properties" in node:
            assert node.get("additionalProperties") in (None, False), path


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 'nullable' -> JSON Schema null type, so jsonschema can check documents."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_satisfy_the_crd(path: Path) -> None:
    manifest = load_jobs(path.read_text(), source=path.name)[0].job.to_manifest()
    jsonschema.validate(manifest, to_json_schema(SCHEMA))


def test_crd_rejects_a_bad_operator() -> None:
    manifest = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
    manifest["spec"]["runPolicy"]["logMonitoringConfiguration"][0]["operator"] = "above"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, to_json_schema(SCHEMA))
