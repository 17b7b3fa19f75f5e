"""Every shipped example and every HyperPod-shaped sample validates, without surprises."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, SAMPLE_ENV, SAMPLES
from trainguard.errors import SpecError
from trainguard.spec import load_jobs

MANIFESTS = sorted(EXAMPLES.rglob("*.yaml")) + sorted(SAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_without_unknown_fields(path: Path) -> None:
    jobs = load_jobs(path.read_text(), source=path.name, env=SAMPLE_ENV)
    assert len(jobs) == 1
    unknown = [w for w in jobs[0].warnings if "unknown field" in w.message]
    assert unknown == []


def test_at_least_the_three_required_examples_exist() -> None:
    names = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert {"minimal.yaml", "full-run-policy.yaml", "kubeflow-pytorchjob.yaml"} <= names


def test_full_example_sets_every_run_policy_and_rule_field() -> None:
    job = load_jobs((EXAMPLES / "full-run-policy.yaml").read_text(), source="full")[0].job
    policy = job.spec.run_policy
    assert policy.restart_policy is not None
    unset = [name for name, value in policy if value is None]
    unset += [name for name, value in policy.restart_policy if value is None]
    assert unset == []
    for field in type(policy.rules[0]).model_fields:
        assert any(getattr(rule, field) is not None for rule in policy.rules), field
    assert job.spec.elastic_policy is not None


def test_hpto_sample_values_after_envsubst() -> None:
    text = (SAMPLES / "llama3-fsdp-hpto.yaml").read_text()
    job = load_jobs(text, source="hpto.yaml", env=SAMPLE_ENV)[0].job
    assert job.spec.nproc_per_node == "8"
    assert job.spec.replica_specs[0].replicas == 2
    restart = job.spec.run_policy.restart_policy
    assert restart is not None
    assert (restart.num_restart_before_full_job_restart, restart.eval_period_seconds) == (3, 21600)
    assert [r.name for r in job.spec.run_policy.rules] == ["JobStart", "JobHangingDetection"]


def test_hpto_sample_without_envsubst_names_the_variables() -> None:
    text = (SAMPLES / "llama3-fsdp-hpto.yaml").read_text()
    with pytest.raises(SpecError) as caught:
        load_jobs(text, source="hpto.yaml")
    paths = {i.path for i in caught.value.issues}
    assert "spec.nprocPerNode" in paths
    assert "spec.replicaSpecs[0].replicas" in paths
    assert all("envsubst" in i.message for i in caught.value.issues)


def test_envsubst_reports_unset_variables() -> None:
    text = (SAMPLES / "llama3-fsdp-hpto.yaml").read_text()
    with pytest.raises(SpecError) as caught:
        load_jobs(text, source="hpto.yaml", env={"GPU_PER_NODE": "8"})
    assert "EFA_PER_NODE" in str(caught.value)
    assert "NUM_NODES" in str(caught.value)
