"""A table of broken manifests: each must fail with the expected field path and message."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES
from trainguard.errors import SpecError
from trainguard.spec import load_jobs

BASE: dict[str, Any] = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
RULES = ("spec", "runPolicy", "logMonitoringConfiguration")
CONTAINER = ("spec", "replicaSpecs", 0, "template", "spec", "containers", 0)


def setting(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


def deleting(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return apply


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "bad operator",
        setting((*RULES, 1, "operator"), "greater"),
        "spec.runPolicy.logMonitoringConfiguration[1].operator",
        "must be one of gt, gteq, lt, lteq, eq",
    ),
    (
        "bad log regex",
        setting((*RULES, 0, "logPattern"), "Loss: ([0-9"),
        "spec.runPolicy.logMonitoringConfiguration[0].logPattern",
        "invalid regular expression",
    ),
    (
        "bad stop regex",
        setting((*RULES, 3, "stopPattern"), "(*)"),
        "spec.runPolicy.logMonitoringConfiguration[3].stopPattern",
        "invalid regular expression",
    ),
    (
        "metric rule without group",
        setting((*RULES, 2, "logPattern"), ".*Loss: .*"),
        "spec.runPolicy.logMonitoringConfiguration[2].logPattern",
        "capturing group",
    ),
    (
        "threshold without operator",
        deleting((*RULES, 2, "operator")),
        "spec.runPolicy.logMonitoringConfiguration[2].operator",
        "required when metricThreshold",
    ),
    (
        "operator without threshold",
        deleting((*RULES, 2, "metricThreshold")),
        "spec.runPolicy.logMonitoringConfiguration[2].metricThreshold",
        "required when operator",
    ),
    (
        "rule without name",
        deleting((*RULES, 0, "name")),
        "spec.runPolicy.logMonitoringConfiguration[0].name",
        "required",
    ),
    (
        "rule name with space",
        setting((*RULES, 0, "name"), "Job Start"),
        "spec.runPolicy.logMonitoringConfiguration[0].name",
        "letters, digits",
    ),
    (
        "duplicate rule names",
        setting((*RULES, 1, "name"), "JobStart"),
        "spec.runPolicy.logMonitoringConfiguration[1].name",
        "duplicate rule name",
    ),
    (
        "zero data points",
        setting((*RULES, 2, "metricEvaluationDataPoints"), 0),
        "spec.runPolicy.logMonitoringConfiguration[2].metricEvaluationDataPoints",
        "at least 1",
    ),
    (
        "non-numeric threshold",
        setting((*RULES, 2, "metricThreshold"), "high"),
        "spec.runPolicy.logMonitoringConfiguration[2].metricThreshold",
        "must be a number",
    ),
    (
        "negative retry count",
        setting(("spec", "runPolicy", "jobMaxRetryCount"), -1),
        "spec.runPolicy.jobMaxRetryCount",
        "must be at least 0",
    ),
    (
        "negative PLR budget",
        setting(("spec", "runPolicy", "restartPolicy", "numRestartBeforeFullJobRestart"), -2),
        "spec.runPolicy.restartPolicy.numRestartBeforeFullJobRestart",
        "must be at least 0",
    ),
    (
        "eval period missing",
        deleting(("spec", "runPolicy", "restartPolicy", "evalPeriodSeconds")),
        "spec.runPolicy.restartPolicy.evalPeriodSeconds",
        "required",
    ),
    (
        "eval period as text",
        setting(("spec", "runPolicy", "restartPolicy", "evalPeriodSeconds"), "6h"),
        "spec.runPolicy.restartPolicy.evalPeriodSeconds",
        "must be an integer, got '6h'",
    ),
    (
        "bad clean pod policy",
        setting(("spec", "runPolicy", "cleanPodPolicy"), "Running"),
        "spec.runPolicy.cleanPodPolicy",
        "must be one of All, OnlyComplete, None",
    ),
    (
        "zero replicas",
        setting(("spec", "replicaSpecs", 0, "replicas"), 0),
        "spec.replicaSpecs[0].replicas",
        "must be at least 1",
    ),
    (
        "negative spares",
        setting(("spec", "replicaSpecs", 0, "spares"), -1),
        "spec.replicaSpecs[0].spares",
        "must be at least 0",
    ),
    (
        "maxReplicas below replicas",
        setting(("spec", "replicaSpecs", 0, "maxReplicas"), 2),
        "spec.replicaSpecs[0].maxReplicas",
        "must be at least replicas (4)",
    ),
    (
        "replica spec without template",
        deleting(("spec", "replicaSpecs", 0, "template")),
        "spec.replicaSpecs[0].template",
        "required",
    ),
    (
        "no replica specs",
        setting(("spec", "replicaSpecs"), []),
        "spec.replicaSpecs",
        "at least 1 item",
    ),
    (
        "bad nprocPerNode",
        setting(("spec", "nprocPerNode"), "many"),
        "spec.nprocPerNode",
        "must be auto, cpu, gpu or a positive integer",
    ),
    (
        "no containers",
        setting(("spec", "replicaSpecs", 0, "template", "spec", "containers"), []),
        "spec.replicaSpecs[0].template.spec.containers",
        "at least 1 item",
    ),
    (
        "env value as number",
        setting((*CONTAINER, "env", 0, "value"), 1),
        "spec.replicaSpecs[0].template.spec.containers[0].env[0].value",
        "quote numbers",
    ),
    (
        "command as string",
        setting((*CONTAINER, "command"), "hyperpodrun train.py"),
        "spec.replicaSpecs[0].template.spec.containers[0].command",
        "must be a list",
    ),
    (
        "bad quantity",
        setting((*CONTAINER, "resources", "limits", "nvidia.com/gpu"), "eight"),
        'spec.replicaSpecs[0].template.spec.containers[0].resources.limits["nvidia.com/gpu"]',
        "quantity",
    ),
    (
        "bad toleration effect",
        setting(
            ("spec", "replicaSpecs", 0, "template", "spec", "tolerations", 0, "effect"), "Never"
        ),
        "spec.replicaSpecs[0].template.spec.tolerations[0].effect",
        "must be one of",
    ),
    (
        "bad node selector value",
        setting(("spec", "replicaSpecs", 0, "template", "spec", "nodeSelector", "zone"), "a b"),
        "spec.replicaSpecs[0].template.spec.nodeSelector",
        "must be at most 63",
    ),
    ("bad job name", setting(("metadata", "name"), "Llama_FSDP"), "metadata.name", "lowercase"),
    ("missing name", deleting(("metadata", "name")), "metadata.name", "required"),
    (
        "elastic min above max",
        setting(("spec", "elasticPolicy", "minReplicas"), 8),
        "spec.elasticPolicy.minReplicas",
        "must not exceed maxReplicas",
    ),
    (
        "elastic step and discrete values",
        setting(("spec", "elasticPolicy", "replicaDiscreteValues"), [2, 4]),
        "spec.elasticPolicy.replicaDiscreteValues",
        "cannot be combined",
    ),
    (
        "wrong api version",
        setting(("apiVersion",), "sagemaker.amazonaws.com/v2"),
        "apiVersion",
        "must be sagemaker.amazonaws.com/v1",
    ),
    (
        "port out of range",
        setting((*CONTAINER, "ports", 0, "containerPort"), 70000),
        "spec.replicaSpecs[0].template.spec.containers[0].ports[0].containerPort",
        "at most 65535",
    ),
    (
        "suspend as text",
        setting(("spec", "runPolicy", "suspend"), "no"),
        "spec.runPolicy.suspend",
        "must be true or false",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_manifest_names_the_field(
    mutate: Callable[[dict[str, Any]], None], path: str, message: str
) -> None:
    document = copy.deepcopy(BASE)
    mutate(document)
    with pytest.raises(SpecError) as caught:
        load_jobs(yaml.safe_dump(document), source="job.yaml")
    rendered = [i.render("job.yaml") for i in caught.value.issues]
    assert any(r.startswith(f"job.yaml: {path}: ") and message in r for r in rendered), rendered


def test_the_issue_example_message_is_exact() -> None:
    document = copy.deepcopy(BASE)
    document["spec"]["runPolicy"]["logMonitoringConfiguration"][1]["operator"] = "above"
    with pytest.raises(SpecError) as caught:
        load_jobs(yaml.safe_dump(document), source="job.yaml")
    assert str(caught.value) == (
        "job.yaml: spec.runPolicy.logMonitoringConfiguration[1].operator: "
        "must be one of gt, gteq, lt, lteq, eq, got 'above'"
    )


def test_every_error_is_reported_not_only_the_first() -> None:
    document = copy.deepcopy(BASE)
    for mutate in (CASES[0][1], CASES[11][1], CASES[16][1], CASES[24][1]):
        mutate(document)
    with pytest.raises(SpecError) as caught:
        load_jobs(yaml.safe_dump(document), source="job.yaml")
    assert len(caught.value.issues) == 4


def test_semantic_errors_are_all_reported_together() -> None:
    document = copy.deepcopy(BASE)
    for mutate in (CASES[3][1], CASES[8][1], CASES[18][1], CASES[30][1]):
        mutate(document)
    with pytest.raises(SpecError) as caught:
        load_jobs(yaml.safe_dump(document), source="job.yaml")
    assert len(caught.value.issues) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: sagemaker.amazonaws.com/v1\nkind: HyperPodPyTorchJob\nspec: [\n",
            "invalid YAML at line",
        ),
        ("kind: HyperPodPyTorchJob\nkind: PyTorchJob\n", "duplicate key 'kind'"),
        ("- a\n- b\n", "document must be a mapping"),
        ("apiVersion: v1\nkind: ConfigMap\n", "must be HyperPodPyTorchJob"),
        ("", "no HyperPodPyTorchJob or PyTorchJob document found"),
    ],
)
def test_documents_that_are_not_jobs(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_jobs(text, source="job.yaml")
    assert message in str(caught.value)


def test_unknown_fields_are_kept_and_warned() -> None:
    document = copy.deepcopy(BASE)
    document["spec"]["runPolicy"]["futureKnob"] = {"x": 1}
    document["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]["gpuMagic"] = True
    loaded = load_jobs(yaml.safe_dump(document), source="job.yaml")[0]
    paths = {w.path for w in loaded.warnings if "unknown field" in w.message}
    assert paths == {
        "spec.runPolicy.futureKnob",
        "spec.replicaSpecs[0].template.spec.containers[0].gpuMagic",
    }
    dumped = loaded.job.to_manifest()
    assert dumped["spec"]["runPolicy"]["futureKnob"] == {"x": 1}
    assert (
        dumped["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]["gpuMagic"] is True
    )


def test_multi_document_file_skips_other_kinds_and_locates_errors() -> None:
    good = yaml.safe_dump(BASE)
    bad = copy.deepcopy(BASE)
    bad["spec"]["replicaSpecs"][0]["replicas"] = 0
    text = "apiVersion: v1\nkind: ConfigMap\n---\n" + good + "---\n" + yaml.safe_dump(bad)
    with pytest.raises(SpecError) as caught:
        load_jobs(text, source="all.yaml")
    assert [i.path for i in caught.value.issues] == ["document 3: spec.replicaSpecs[0].replicas"]
    jobs = load_jobs("apiVersion: v1\nkind: ConfigMap\n---\n" + good, source="all.yaml")
    assert any("ConfigMap skipped" in w.message for w in jobs[0].warnings)
