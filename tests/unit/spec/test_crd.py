"""The generated CRD is one a real API server accepts, and it accepts every example.

Three checks hold it to Kubernetes: `kubernetes-validate --strict` against the published
``apiextensions.k8s.io/v1`` schema (the old CRD, with ``x-kubernetes-preserve-unknown-fields``
as a property name in 29 places, failed it); our own walk over the structural-schema rules the
API server enforces beyond that schema (tests/unit/spec/structural.py); every shipped
manifest validated against the openAPIV3Schema, with bad ones failing on the right field; and
the CEL rules run (tests/unit/spec/cel.py) on the same manifests.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import EXAMPLES, SAMPLE_ENV, SAMPLES
from tests.unit.spec.cel import cel_violations
from tests.unit.spec.structural import structural_errors, to_json_schema, walk
from trainguard import constants as c
from trainguard.errors import SpecError
from trainguard.spec import crd, load_jobs
from trainguard.spec.crd import INT_OR_STRING, PRESERVE, VALIDATIONS, schema_at, structural
from trainguard.spec.envsubst import substitute
from trainguard.spec.limits import MAX_LOG_RULES, MAX_REPLICA_GROUPS

VERSION = crd()["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
MANIFESTS = sorted(EXAMPLES.rglob("*.yaml")) + sorted(SAMPLES.glob("*.yaml"))


def test_identity() -> None:
    document = crd()
    assert document["metadata"]["name"] == "hyperpodpytorchjobs.sagemaker.amazonaws.com"
    assert document["spec"]["group"] == c.GROUP
    assert document["spec"]["names"]["kind"] == "HyperPodPyTorchJob"
    assert document["spec"]["names"]["shortNames"] == ["hpj", "hpjob"]
    assert document["spec"]["scope"] == "Namespaced"


def test_crd_passes_kubernetes_validate_strict() -> None:
    assert kubernetes_validate.validate(crd(), "1.33", strict=True) == "1.33"


def test_kubernetes_validate_catches_an_extension_used_as_a_property_name() -> None:
    """The old generator's bug, re-injected: the validator used above does see it."""
    document = crd()
    status = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    status["properties"][PRESERVE] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, "1.33", strict=True)


def test_schema_is_structural() -> None:
    assert structural_errors(SCHEMA) == []


@pytest.mark.parametrize(
    ("path", "damage", "complaint"),
    [
        ("status", lambda n: n["properties"].update({PRESERVE: True}), "property named"),
        ("spec.runPolicy.cleanPodPolicy", lambda n: n.pop("type"), "no type"),
        ("spec.runPolicy", lambda n: n.pop("type"), "without type: object"),
        ("spec.replicaSpecs", lambda n: n.pop("maxItems"), "maxItems"),
        ("spec.nprocPerNode", lambda n: n.update(type="string"), "int-or-string"),
        ("spec.elasticPolicy", lambda n: n.update({"$ref": "#/x"}), "$ref"),
        ("spec", lambda n: n["properties"].update(x={"anyOf": [{"type": "string"}]}), "anyOf"),
        ("spec.runPolicy.cleanPodPolicy", lambda n: n.update(default="Some"), "default"),
        ("spec.elasticPolicy", lambda n: n[VALIDATIONS][0].update(fieldPath=".min"), "fieldPath"),
    ],
    ids=[
        "preserve-as-property",
        "untyped",
        "untyped-object",
        "cel-unbounded",
        "typed-int-or-string",
        "ref",
        "anyof",
        "bad-default",
        "field-path",
    ],
)
def test_structural_check_sees_each_broken_rule(path: str, damage: Any, complaint: str) -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    damage(schema_at(schema, path))
    errors = structural_errors(schema)
    assert any(complaint in error for error in errors), errors


def test_each_crd_is_a_fresh_object() -> None:
    """Tests (and callers) edit the document; nothing may leak into the next one."""
    damaged = crd()
    for _, node in walk(damaged["spec"]["versions"][0]["schema"]["openAPIV3Schema"]):
        for value in [node, *node.get("anyOf", []), *node.get(VALIDATIONS, [])]:
            value["damaged"] = True
    assert "damaged" not in json.dumps(crd())


def test_root_metadata_restricts_only_name_and_generate_name() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["metadata"]["properties"]["labels"] = {"type": "object"}
    assert any("metadata" in error for error in structural_errors(schema))


def test_unknown_fields_are_kept_beside_type_object() -> None:
    for node in (SCHEMA["properties"]["status"], schema_at(SCHEMA, "spec.runPolicy")):
        assert node["type"] == "object"
        assert node[PRESERVE] is True
    meta = schema_at(SCHEMA, "spec.replicaSpecs[].template.metadata")
    assert meta["type"] == "object" and meta[PRESERVE] is True
    assert PRESERVE not in meta["properties"]


def test_int_or_string_fields() -> None:
    nproc = schema_at(SCHEMA, "spec.nprocPerNode")
    assert nproc[INT_OR_STRING] is True and "type" not in nproc
    limits = schema_at(SCHEMA, "spec.replicaSpecs[].template.spec.containers[].resources.limits")
    assert limits["additionalProperties"][INT_OR_STRING] is True


def test_status_subresource_printer_columns_and_rules() -> None:
    assert VERSION["subresources"] == {"status": {}}
    columns = {col["name"]: col["jsonPath"] for col in VERSION["additionalPrinterColumns"]}
    assert columns == {
        "Status": ".status.conditions[-1:].type",
        "Restarts": ".status.restartCount",
        "Age": ".metadata.creationTimestamp",
    }
    assert schema_at(SCHEMA, "spec.replicaSpecs")["maxItems"] == MAX_REPLICA_GROUPS
    rules = schema_at(SCHEMA, "spec.runPolicy.logMonitoringConfiguration")
    assert rules["maxItems"] == MAX_LOG_RULES
    assert "exists_one" in rules[VALIDATIONS][0]["rule"]
    assert "evalPeriodSeconds" in schema_at(SCHEMA, "spec.runPolicy.restartPolicy")["required"]


def test_a_union_kubernetes_cannot_express_is_refused() -> None:
    union = {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]}
    with pytest.raises(ValueError, match="union"):
        structural({"type": "object", "properties": {"x": union}})


def raw_documents(path: Path) -> list[dict[str, Any]]:
    """The manifest as kubectl would send it: variables substituted, not round-tripped."""
    text = substitute(path.read_text(), SAMPLE_ENV, source=path.name)
    return [doc for doc in yaml.safe_load_all(text) if doc and doc.get("kind") == c.KIND]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_example_satisfies_the_crd(path: Path) -> None:
    checker = jsonschema.Draft202012Validator(to_json_schema(SCHEMA))
    manifests = raw_documents(path) or [
        job.job.to_manifest() for job in load_jobs(path.read_text(), source=path.name)
    ]
    for manifest in manifests:
        assert [e.message for e in checker.iter_errors(manifest)] == []


def error_paths(manifest: dict[str, Any]) -> list[list[str | int]]:
    checker = jsonschema.Draft202012Validator(to_json_schema(SCHEMA))
    return [list(error.absolute_path) for error in checker.iter_errors(manifest)]


RULE_0 = ["spec", "runPolicy", "logMonitoringConfiguration", 0]


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda m: _rule(m).update(operator="above"), [*RULE_0, "operator"]),
        (lambda m: _rule(m).update(metricThreshold="high"), [*RULE_0, "metricThreshold"]),
        (
            lambda m: m["spec"]["replicaSpecs"][0].update(replicas="two"),
            ["spec", "replicaSpecs", 0, "replicas"],
        ),
        (lambda m: m["spec"].update(nprocPerNode=[8]), ["spec", "nprocPerNode"]),
        (
            lambda m: m["spec"]["runPolicy"]["restartPolicy"].pop("evalPeriodSeconds"),
            ["spec", "runPolicy", "restartPolicy"],
        ),
        (lambda m: m["metadata"].update(name="j" * 64), ["metadata", "name"]),
    ],
    ids=["operator", "threshold", "replicas", "nproc", "eval-period", "long-name"],
)
def test_a_bad_manifest_fails_on_the_right_field(edit: Any, where: list[str | int]) -> None:
    manifest = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
    assert error_paths(manifest) == []
    edit(manifest)
    assert error_paths(manifest) == [where]


def _rule(manifest: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = manifest["spec"]["runPolicy"]["logMonitoringConfiguration"][0]
    return rule


def test_nproc_per_node_may_be_an_integer() -> None:
    manifest = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    manifest["spec"]["nprocPerNode"] = 8
    assert error_paths(manifest) == []


def test_every_node_walked_has_a_path() -> None:
    paths = [path for path, _ in walk(SCHEMA)]
    assert ".spec.replicaSpecs[items].template.metadata" in paths
    assert len(paths) == len(set(paths))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_example_satisfies_the_cel_rules(path: Path) -> None:
    for manifest in raw_documents(path):
        assert cel_violations(SCHEMA, manifest) == []


def _metric_rule(manifest: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in _rules(manifest) if "metricThreshold" in r)


def _rules(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = manifest["spec"]["runPolicy"]["logMonitoringConfiguration"]
    return rules


def _twin_group(manifest: dict[str, Any]) -> None:
    manifest["spec"].pop("elasticPolicy")  # an elastic job has one group (its own rule)
    groups = manifest["spec"]["replicaSpecs"]
    groups.append(copy.deepcopy(groups[0]))


def _second_group(manifest: dict[str, Any]) -> None:
    groups = manifest["spec"]["replicaSpecs"]
    groups.append({**copy.deepcopy(groups[0]), "name": "others"})


def _discrete(manifest: dict[str, Any], values: list[int]) -> None:
    elastic = manifest["spec"]["elasticPolicy"]
    elastic.pop("replicaIncrementStep")
    elastic["replicaDiscreteValues"] = values


@pytest.mark.parametrize(
    ("edit", "violation"),
    [
        (_twin_group, ".spec.replicaSpecs: replica spec names must be unique"),
        (
            lambda m: _rules(m).append(copy.deepcopy(_rules(m)[0])),
            ".spec.runPolicy.logMonitoringConfiguration: log monitoring rule names must be unique",
        ),
        (lambda m: _metric_rule(m).pop("operator"), "].operator: operator is required"),
        (lambda m: _metric_rule(m).pop("metricThreshold"), "].metricThreshold: metricThreshold is"),
        (
            lambda m: m["spec"]["replicaSpecs"][0].update(replicas=3, maxReplicas=2),
            ".spec.replicaSpecs[0].maxReplicas: maxReplicas must be at least replicas",
        ),
        (
            lambda m: m["spec"]["elasticPolicy"].update(minReplicas=9, maxReplicas=2),
            ".spec.elasticPolicy.minReplicas: minReplicas must not exceed maxReplicas",
        ),
        (
            lambda m: m["spec"]["elasticPolicy"].update(
                replicaIncrementStep=1, replicaDiscreteValues=[2]
            ),
            ".spec.elasticPolicy.replicaDiscreteValues: set replicaIncrementStep or",
        ),
        (
            lambda m: _discrete(m, [2, 8]),
            ".spec.elasticPolicy.replicaDiscreteValues: replicaDiscreteValues must lie within",
        ),
        (_second_group, ".spec.replicaSpecs: an elastic job has exactly one replica spec"),
    ],
    ids=[
        "group-names",
        "rule-names",
        "operator",
        "threshold",
        "max-replicas",
        "elastic-bounds",
        "elastic-step",
        "elastic-discrete",
        "elastic-groups",
    ],
)
def test_cel_rules_refuse_what_semantics_refuses(edit: Any, violation: str) -> None:
    manifest = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
    edit(manifest)
    violations = cel_violations(SCHEMA, manifest)
    assert len(violations) == 1 and violation in violations[0], violations
    with pytest.raises(SpecError):  # trainguard validate refuses it too
        load_jobs(yaml.safe_dump(manifest), source="edited.yaml")


@pytest.mark.parametrize(
    ("field", "limit"),
    [("replicaSpecs", MAX_REPLICA_GROUPS), ("runPolicy.logMonitoringConfiguration", MAX_LOG_RULES)],
)
def test_validate_refuses_a_list_longer_than_the_crd_allows(field: str, limit: int) -> None:
    """The bounds that keep CEL cheap are the models' too, so validate and the API server agree."""
    manifest = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
    parent, _, key = f"spec.{field}".rpartition(".")
    holder = manifest
    for part in parent.split("."):
        holder = holder[part]
    holder[key] = [{**copy.deepcopy(holder[key][0]), "name": f"n{i}"} for i in range(limit + 1)]
    assert error_paths(manifest) == [["spec", *field.split(".")]]
    with pytest.raises(SpecError, match=f"spec.{field}: must have at most {limit} items"):
        load_jobs(yaml.safe_dump(manifest), source="long.yaml")
