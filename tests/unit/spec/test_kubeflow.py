"""Kubeflow PyTorchJob manifests become HyperPodPyTorchJobs with the same meaning."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import EXAMPLES
from trainguard import constants as c
from trainguard.errors import SpecError
from trainguard.spec import load_jobs

TEXT = (EXAMPLES / "kubeflow-pytorchjob.yaml").read_text()


def test_roles_become_replica_specs_master_first() -> None:
    loaded = load_jobs(TEXT, source="kf.yaml")[0]
    job = loaded.job
    assert job.kind == c.KIND
    assert [(r.name, r.replicas) for r in job.spec.replica_specs] == [("master", 1), ("worker", 2)]
    assert job.spec.nproc_per_node == "2"
    assert job.spec.run_policy.job_max_retry_count == 5
    assert job.spec.run_policy.clean_pod_policy == "None"
    assert job.spec.run_policy.active_deadline_seconds == 7200
    assert job.metadata.annotations is not None
    assert job.metadata.annotations[c.ANNOTATION_CONVERTED_FROM] == "kubeflow.org/v1/PyTorchJob"
    assert loaded.converted_from is not None


def test_defaults_follow_kubeflow_and_never_policy_means_no_retries() -> None:
    doc = yaml.safe_load(TEXT)
    del doc["spec"]["runPolicy"]
    for role in doc["spec"]["pytorchReplicaSpecs"].values():
        role["restartPolicy"] = "Never"
    job = load_jobs(yaml.safe_dump(doc), source="kf.yaml")[0].job
    assert job.spec.run_policy.clean_pod_policy == "None"
    assert job.spec.run_policy.job_max_retry_count == 0


def test_dropped_settings_are_warned() -> None:
    doc = yaml.safe_load(TEXT)
    doc["spec"]["runPolicy"]["cleanPodPolicy"] = "Running"
    del doc["spec"]["pytorchReplicaSpecs"]["Master"]  # elastic jobs scale one replica group
    doc["spec"]["elasticPolicy"] = {
        "rdzvBackend": "c10d",
        "minReplicas": 1,
        "maxReplicas": 3,
        "nProcPerNode": 4,
    }
    loaded = load_jobs(yaml.safe_dump(doc), source="kf.yaml")[0]
    messages = " | ".join(w.message for w in loaded.warnings)
    assert "rdzvBackend dropped" in messages
    assert "Running has no HyperPod equivalent" in messages
    assert loaded.job.spec.nproc_per_node == "4"
    assert loaded.job.spec.elastic_policy is not None
    assert loaded.job.spec.elastic_policy.max_replicas == 3


def test_elastic_bounds_map_and_a_master_role_is_refused() -> None:
    doc = yaml.safe_load(TEXT)
    doc["spec"]["elasticPolicy"] = {"minReplicas": 1, "maxReplicas": 2}
    with pytest.raises(SpecError, match="exactly one replica spec"):
        load_jobs(yaml.safe_dump(doc), source="kf.yaml")
    del doc["spec"]["pytorchReplicaSpecs"]["Master"]
    elastic = load_jobs(yaml.safe_dump(doc), source="kf.yaml")[0].job.spec.elastic_policy
    assert elastic is not None
    assert (elastic.min_replicas, elastic.max_replicas) == (1, 2)


def test_errors_use_kubeflow_paths() -> None:
    doc = yaml.safe_load(TEXT)
    doc["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = -1
    doc["spec"]["pytorchReplicaSpecs"]["Chief"] = doc["spec"]["pytorchReplicaSpecs"]["Master"]
    with pytest.raises(SpecError) as caught:
        load_jobs(yaml.safe_dump(doc), source="kf.yaml")
    paths = {i.path for i in caught.value.issues}
    assert "spec.pytorchReplicaSpecs.Worker.replicas" in paths
    assert any(p.startswith("spec.pytorchReplicaSpecs") and "Chief" in p for p in paths)


def test_semantic_errors_after_conversion_point_at_the_role() -> None:
    doc = yaml.safe_load(TEXT)
    containers = doc["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    containers.append(dict(containers[0]))
    with pytest.raises(SpecError) as caught:
        load_jobs(yaml.safe_dump(doc), source="kf.yaml")
    assert [i.path for i in caught.value.issues] == [
        "spec.pytorchReplicaSpecs.Worker.template.spec.containers[1].name"
    ]
