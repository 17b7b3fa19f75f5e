"""The /openapi/v3 documents kubectl reads, and their agreement with our patch tables."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.spec.crd import crd
from trainguard.testing.kube import k8sschemas, openapi, smp

KINDS = [*openapi.BUILTIN_KINDS, *openapi.kinds_of_crd(crd())]
needs_definitions = pytest.mark.skipif(
    not k8sschemas.definitions(), reason="kubernetes-validate (test dependency) is not installed"
)


def patch_operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [ops["patch"] for ops in doc["paths"].values() if "patch" in ops]


def test_index_names_every_group_version_with_a_content_hash() -> None:
    index = openapi.document("/openapi/v3", KINDS)
    assert index is not None
    assert set(index["paths"]) == {
        "api/v1",
        "apis/events.k8s.io/v1",
        "apis/coordination.k8s.io/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/sagemaker.amazonaws.com/v1",
        # stored-only kinds, served so a Helm chart applies
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/policy/v1",
        "apis/rbac.authorization.k8s.io/v1",
    }
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    assert openapi.document("/openapi/v3/apis/nothing/v1", KINDS) is None


def test_patch_operations_declare_field_validation_and_gvk() -> None:
    doc = openapi.document("/openapi/v3/apis/sagemaker.amazonaws.com/v1?hash=x", KINDS)
    assert doc is not None
    operations = patch_operations(doc)
    assert len(operations) == 2, "the object and its status subresource"
    for operation in operations:
        assert operation["x-kubernetes-group-version-kind"] == {
            "group": "sagemaker.amazonaws.com",
            "version": "v1",
            "kind": "HyperPodPyTorchJob",
        }
        assert {
            "name": "fieldValidation",
            "in": "query",
            "schema": {"type": "string", "uniqueItems": True},
        } in operation["parameters"]
        assert "application/strategic-merge-patch+json" not in operation["requestBody"]["content"]


def test_custom_resource_schema_is_the_crd_schema_with_object_meta() -> None:
    doc = openapi.document("/openapi/v3/apis/sagemaker.amazonaws.com/v1", KINDS)
    assert doc is not None
    schema = doc["components"]["schemas"]["com.amazonaws.sagemaker.v1.HyperPodPyTorchJob"]
    assert "replicaSpecs" in schema["properties"]["spec"]["properties"]
    assert schema["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/" + openapi.OBJECT_META}
    ]
    assert schema["x-kubernetes-group-version-kind"][0]["kind"] == "HyperPodPyTorchJob"


@needs_definitions
def test_builtins_accept_strategic_merge_and_carry_patch_strategies() -> None:
    doc = openapi.document("/openapi/v3/api/v1", KINDS)
    assert doc is not None
    for operation in patch_operations(doc):
        assert "application/strategic-merge-patch+json" in operation["requestBody"]["content"]
    schemas = doc["components"]["schemas"]
    env = schemas["io.k8s.api.core.v1.Container"]["properties"]["env"]
    assert (env["x-kubernetes-patch-strategy"], env["x-kubernetes-patch-merge-key"]) == (
        "merge",
        "name",
    )
    assert env["type"] == "array"
    assert env["items"] == {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.EnvVar"}]}
    assert schemas["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "Pod"}
    ]
    port = schemas["io.k8s.api.core.v1.ContainerPort"]["properties"]["containerPort"]
    assert port["type"] == "integer"
    assert "enum" not in schemas["io.k8s.api.core.v1.Pod"]["properties"]["kind"]


def test_int_or_string_is_converted() -> None:
    schema = {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]}
    assert k8sschemas.to_openapi(schema)["x-kubernetes-int-or-string"] is True


ROOTS = {
    "Pod": "io.k8s.api.core.v1.Pod",
    "Node": "io.k8s.api.core.v1.Node",
    "Service": "io.k8s.api.core.v1.Service",
    "Namespace": "io.k8s.api.core.v1.Namespace",
}


def _strategies_in_definitions(root: str) -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
    """Every merge list reachable from a kind in Kubernetes' definitions, by dotted path."""
    defs = k8sschemas.definitions()
    found: dict[str, tuple[str, str | None, tuple[str, ...]]] = {}

    def visit(name: str, path: str, depth: int) -> None:
        for field, prop in defs[name].get("properties", {}).items():
            dotted = f"{path}.{field}" if path else field
            if "merge" in prop.get("x-kubernetes-patch-strategy", "").split(","):
                found[dotted] = (
                    prop["x-kubernetes-patch-strategy"],
                    prop.get("x-kubernetes-patch-merge-key"),
                    tuple(prop.get("x-kubernetes-list-map-keys") or ()),
                )
            target = prop.get("items", prop)
            refs = [r["$ref"] for r in target.get("allOf", [])]
            if refs and depth < 6:
                visit(refs[0].removeprefix("#/components/schemas/"), dotted, depth + 1)

    visit(root, "", 0)
    return found


@needs_definitions
@pytest.mark.parametrize("kind", sorted(ROOTS))
def test_smp_table_matches_kubernetes_definitions(kind: str) -> None:
    declared = _strategies_in_definitions(ROOTS[kind])
    for path, (strategy, merge_key, map_keys) in declared.items():
        ours = smp.list_strategy(kind, path)
        assert ours is not None, f"{kind} {path} merges in Kubernetes"
        assert ours.merge_key == merge_key, path
        assert ours.retain_keys == ("retainKeys" in strategy), path
        if map_keys and len(map_keys) > 1:
            assert ours.apply_keys == map_keys, path
    for path in smp.LIST_STRATEGIES[kind]:
        assert path in declared, f"{kind} {path} is not a merge list in Kubernetes"
