"""The Pod manifest of a launch: every field the operator adds, the template's fields kept."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from trainguard import constants as c
from trainguard.backends.base import PodLaunch
from trainguard.backends.kubernetes.podspec import (
    MEMORY_MOUNT_PATH,
    pod_manifest,
    with_node_affinity,
)
from trainguard.errors import BackendError
from trainguard.spec.k8s import Container, PodTemplateSpec

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "nlp"}, "annotations": {"note": "keep me"}},
    "spec": {
        "serviceAccountName": "trainer",
        "nodeSelector": {"node.kubernetes.io/instance-type": "ml.p5.48xlarge"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "securityContext": {"runAsUser": 1000},
        "restartPolicy": "OnFailure",
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "fsx"}}],
        "containers": [
            {
                "name": "pytorch",
                "image": "pytorch/pytorch:2.6.0",
                "command": ["hyperpodrun", "--nproc-per-node=2", "train.py"],
                "args": ["--steps=10"],
                "workingDir": "/workspace",
                "env": [
                    {"name": "OMP_NUM_THREADS", "value": "1"},
                    {"name": c.ENV_NNODES, "value": "99"},
                ],
                "resources": {"limits": {"nvidia.com/gpu": 8}},
                "ports": [{"name": "metrics", "containerPort": 9090}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            },
            {"name": "sidecar", "image": "busybox", "command": ["sleep", "inf"]},
        ],
    },
}


def launch(**changes: Any) -> PodLaunch:
    template = PodTemplateSpec.model_validate(TEMPLATE)
    base = PodLaunch(
        namespace="team-a",
        job="llama",
        job_uid="uid-123",
        pod="llama-pods-4",
        node="node-2",
        replica_spec="pods",
        node_rank=1,
        spare=False,
        attempt=3,
        container=template.spec.containers[0],
        nproc_per_node="2",
        nnodes=2,
        token="s3cret",
        labels={"team": "nlp", c.LABEL_JOB: "llama"},
        template=template,
        avoid=("node-7", "node-5"),
    )
    return replace(base, **changes)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = manifest["spec"]["containers"][0]
    return first


def env(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        var["name"]: var.get("value", var.get("valueFrom")) for var in container(manifest)["env"]
    }


def test_name_is_job_group_index_attempt_in_the_jobs_namespace() -> None:
    meta = pod_manifest(launch())["metadata"]
    assert (meta["name"], meta["namespace"]) == ("llama-pods-4-3", "team-a")


def test_labels_name_job_group_rank_attempt_and_spare_and_keep_the_templates() -> None:
    labels = pod_manifest(launch())["metadata"]["labels"]
    assert labels == {
        "team": "nlp",
        c.LABEL_JOB: "llama",
        c.LABEL_REPLICA_SPEC: "pods",
        c.LABEL_NODE_RANK: "1",
        c.LABEL_RESTART_ATTEMPT: "3",
        c.LABEL_SPARE: "false",
    }


def test_a_spare_has_no_rank_label_and_spare_true() -> None:
    labels = pod_manifest(launch(node_rank=None, spare=True))["metadata"]["labels"]
    assert c.LABEL_NODE_RANK not in labels
    assert labels[c.LABEL_SPARE] == "true"


def test_the_job_is_the_controller_owner_and_blocks_deletion() -> None:
    [owner] = pod_manifest(launch())["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "sagemaker.amazonaws.com/v1",
        "kind": "HyperPodPyTorchJob",
        "name": "llama",
        "uid": "uid-123",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_restart_policy_is_never_whatever_the_template_says() -> None:
    assert pod_manifest(launch())["spec"]["restartPolicy"] == "Never"


def test_template_fields_are_kept() -> None:
    manifest = pod_manifest(launch())
    spec = manifest["spec"]
    assert manifest["metadata"]["annotations"] == {"note": "keep me"}
    assert spec["serviceAccountName"] == "trainer"
    assert spec["nodeSelector"] == {"node.kubernetes.io/instance-type": "ml.p5.48xlarge"}
    assert spec["tolerations"] == TEMPLATE["spec"]["tolerations"]
    assert spec["securityContext"] == {"runAsUser": 1000}
    assert spec["containers"][1] == TEMPLATE["spec"]["containers"][1]
    first = container(manifest)
    assert first["image"] == "pytorch/pytorch:2.6.0"
    assert first["workingDir"] == "/workspace"
    assert first["resources"] == {"limits": {"nvidia.com/gpu": 8}}
    assert (first["command"], first["args"]) == (
        ["hyperpodrun", "--nproc-per-node=2", "train.py"],
        ["--steps=10"],
    )


def test_the_launch_template_is_not_changed() -> None:
    one = launch()
    before = one.template.to_manifest() if one.template else None
    pod_manifest(one)
    assert (one.template.to_manifest() if one.template else None) == before


def test_agent_port_8080_is_added_next_to_the_templates_ports() -> None:
    assert container(pod_manifest(launch()))["ports"] == [
        {"name": "metrics", "containerPort": 9090},
        {"name": "agent", "containerPort": 8080, "protocol": "TCP"},
    ]


def test_memory_is_an_emptydir_in_memory_mounted_where_shm_dir_points() -> None:
    manifest = pod_manifest(launch())
    assert manifest["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "fsx"}},
        {"name": "trainguard-memory", "emptyDir": {"medium": "Memory"}},
    ]
    assert container(manifest)["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "trainguard-memory", "mountPath": MEMORY_MOUNT_PATH},
    ]
    assert env(manifest)[c.ENV_SHM_DIR] == MEMORY_MOUNT_PATH


@pytest.mark.parametrize(
    ("name", "source"),
    [
        (c.ENV_AGENT_TOKEN, {"secretKeyRef": {"name": "llama-agent-token", "key": "token"}}),
        (c.ENV_AGENT_HOST, {"fieldRef": {"fieldPath": "status.podIP"}}),
        (c.ENV_POD_NAME, {"fieldRef": {"fieldPath": "metadata.name"}}),
        (c.ENV_NODE_NAME, {"fieldRef": {"fieldPath": "spec.nodeName"}}),
        (c.ENV_AGENT_PORT, "8080"),
        (c.ENV_JOB_NAME, "llama"),
        (c.ENV_JOB_NAMESPACE, "team-a"),
        (c.ENV_JOB_UID, "uid-123"),
        (c.ENV_NNODES, "2"),
        (c.ENV_NPROC_PER_NODE, "2"),
        ("OMP_NUM_THREADS", "1"),
    ],
)
def test_env_sources(name: str, source: object) -> None:
    assert env(pod_manifest(launch()))[name] == source


def test_env_names_are_unique_and_ours_replace_the_templates() -> None:
    names = [var["name"] for var in container(pod_manifest(launch()))["env"]]
    assert len(names) == len(set(names))


def test_the_token_itself_appears_nowhere_in_the_pod() -> None:
    assert "s3cret" not in repr(pod_manifest(launch()))


def test_extra_env_comes_last_and_wins() -> None:
    manifest = pod_manifest(launch(extra_env={c.ENV_NNODES: "3", "X": "y"}))
    assert env(manifest)[c.ENV_NNODES] == "3"
    assert container(manifest)["env"][-1] == {"name": "X", "value": "y"}


def test_required_affinity_is_healthy_and_not_avoided_and_the_node_is_preferred() -> None:
    affinity = pod_manifest(launch())["spec"]["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": c.LABEL_NODE_HEALTH, "operator": "In", "values": ["Schedulable"]},
                {
                    "key": "kubernetes.io/hostname",
                    "operator": "NotIn",
                    "values": ["node-5", "node-7"],
                },
            ]
        }
    ]
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {
            "weight": 100,
            "preference": {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}
                ]
            },
        }
    ]


def test_nothing_avoided_means_no_notin_expression() -> None:
    affinity = with_node_affinity(None, avoid=(), preferred=None)["nodeAffinity"]
    [term] = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [e["key"] for e in term["matchExpressions"]] == [c.LABEL_NODE_HEALTH]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in affinity


def test_our_expressions_join_every_term_of_the_templates_affinity() -> None:
    zone = {"key": "zone", "operator": "In", "values": ["a"]}
    rack = {"key": "rack", "operator": "In", "values": ["r1"]}
    pod_affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    given = {
        **pod_affinity,
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [zone]},
                    {"matchExpressions": [rack], "matchFields": [{"key": "metadata.name"}]},
                ]
            }
        },
    }
    result = with_node_affinity(given, avoid=("bad",), preferred="n1")
    terms = result["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert [t["matchExpressions"][0] for t in terms] == [zone, rack]
    assert all(len(t["matchExpressions"]) == 3 for t in terms)
    assert terms[1]["matchFields"] == [{"key": "metadata.name"}]
    assert result["podAntiAffinity"] == pod_affinity["podAntiAffinity"]
    assert (
        len(
            given["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"
            ][0]["matchExpressions"]
        )
        == 1
    )  # type: ignore[index]


def test_without_a_template_the_container_alone_makes_the_pod() -> None:
    bare = launch(template=None, container=Container(name="c", command=["python", "t.py"]))
    manifest = pod_manifest(bare)
    assert [c_["name"] for c_ in manifest["spec"]["containers"]] == ["c"]
    assert container(manifest)["command"] == ["hyperpodrun", "--nproc-per-node=2", "t.py"]


def test_a_name_kubernetes_refuses_is_an_error_naming_it() -> None:
    with pytest.raises(BackendError, match="Bad_Name"):
        pod_manifest(launch(pod="Bad_Name"))


def test_admission_node_selector_and_tolerations_join_the_templates() -> None:
    """Kueue's admission (flavor node labels, tolerations) is added; the template's stay."""
    gpu = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    spot = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}
    manifest = pod_manifest(launch(node_selector={"pool": "training"}, tolerations=(gpu, spot)))
    assert manifest["spec"]["nodeSelector"] == {
        "node.kubernetes.io/instance-type": "ml.p5.48xlarge", "pool": "training",
    }  # fmt: skip
    assert manifest["spec"]["tolerations"] == [gpu, spot]
    plain = pod_manifest(launch())
    assert plain["spec"]["nodeSelector"] == TEMPLATE["spec"]["nodeSelector"]
    assert plain["spec"]["tolerations"] == TEMPLATE["spec"]["tolerations"]
