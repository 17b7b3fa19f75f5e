"""Kubeflow's ``PyTorchJob`` (``kubeflow.org/v1``) read and converted to a HyperPodPyTorchJob.

Teams move from the Kubeflow training operator to HyperPod's; accepting their manifests as they
are lets them try trainguard before rewriting anything. The conversion keeps what has a
meaning here (replicas, templates, cleanPodPolicy, deadlines, backoffLimit as the retry budget,
elastic bounds) and says, as a warning, what it drops (c10d/etcd rendezvous settings: the
controller hands out ranks and master addresses itself).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from trainguard import constants as c
from trainguard.errors import SpecIssue
from trainguard.spec.base import ManifestModel
from trainguard.spec.k8s import ObjectMeta, PodTemplateSpec

ROLE_ORDER = ("Master", "Worker")
_DROPPED_ELASTIC = ("rdzv_backend", "rdzv_port", "rdzv_host", "rdzv_id", "rdzv_conf", "standalone")


class KubeflowReplicaSpec(ManifestModel):
    """One role (Master or Worker) of a PyTorchJob."""

    replicas: int = Field(default=1, ge=0)
    restart_policy: Literal["Always", "OnFailure", "Never", "ExitCode"] | None = None
    template: PodTemplateSpec


class KubeflowRunPolicy(ManifestModel):
    """Kubeflow's common run policy."""

    clean_pod_policy: Literal["All", "Running", "None"] | None = None
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    backoff_limit: int | None = Field(default=None, ge=0)
    scheduling_policy: Any = None
    suspend: bool | None = None
    managed_by: str | None = None


class KubeflowElasticPolicy(ManifestModel):
    """torchrun-style elastic settings of a PyTorchJob."""

    min_replicas: int | None = Field(default=None, ge=1)
    max_replicas: int | None = Field(default=None, ge=1)
    rdzv_backend: str | None = None
    rdzv_port: int | None = None
    rdzv_host: str | None = None
    rdzv_id: str | None = None
    rdzv_conf: list[Any] | None = None
    standalone: bool | None = None
    n_proc_per_node: int | None = Field(default=None, ge=1)
    max_restarts: int | None = Field(default=None, ge=0)
    metrics: list[Any] | None = None


class KubeflowPyTorchJobSpec(ManifestModel):
    """``spec`` of a Kubeflow PyTorchJob."""

    pytorch_replica_specs: dict[Literal["Master", "Worker"], KubeflowReplicaSpec] = Field(
        min_length=1
    )
    run_policy: KubeflowRunPolicy = Field(default_factory=KubeflowRunPolicy)
    elastic_policy: KubeflowElasticPolicy | None = None
    nproc_per_node: str | None = None


class KubeflowPyTorchJob(ManifestModel):
    """A ``kubeflow.org/v1`` ``PyTorchJob``."""

    api_version: Literal["kubeflow.org/v1"]
    kind: Literal["PyTorchJob"]
    metadata: ObjectMeta
    spec: KubeflowPyTorchJobSpec
    status: dict[str, Any] | None = None


def convert(job: KubeflowPyTorchJob) -> tuple[dict[str, Any], list[SpecIssue]]:
    """The HyperPodPyTorchJob manifest for ``job`` and warnings for what did not carry over."""
    warnings: list[SpecIssue] = []
    roles = [r for r in ROLE_ORDER if r in job.spec.pytorch_replica_specs]
    replica_specs = []
    for role in roles:
        replica = job.spec.pytorch_replica_specs[role]
        if replica.replicas == 0:
            continue
        replica_specs.append(
            {
                "name": role.lower(),
                "replicas": replica.replicas,
                "template": replica.template.to_manifest(),
            }
        )
    metadata = job.metadata.to_manifest()
    annotations = dict(metadata.get("annotations") or {})
    annotations[c.ANNOTATION_CONVERTED_FROM] = f"{c.KUBEFLOW_API_VERSION}/{c.KUBEFLOW_KIND}"
    metadata["annotations"] = annotations
    spec: dict[str, Any] = {
        "nprocPerNode": _nproc(job),
        "replicaSpecs": replica_specs,
        "runPolicy": _run_policy(job, warnings),
    }
    elastic = _elastic_policy(job, warnings)
    if elastic:
        spec["elasticPolicy"] = elastic
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": metadata,
        "spec": spec,
    }, warnings


def role_path(index: int, job: KubeflowPyTorchJob) -> str:
    """The Kubeflow path of converted replica spec ``index`` (for error messages)."""
    roles = [
        r
        for r in ROLE_ORDER
        if r in job.spec.pytorch_replica_specs and job.spec.pytorch_replica_specs[r].replicas > 0
    ]
    return f"spec.pytorchReplicaSpecs.{roles[index]}" if index < len(roles) else "spec"


def _nproc(job: KubeflowPyTorchJob) -> str:
    elastic = job.spec.elastic_policy
    if elastic is not None and elastic.n_proc_per_node is not None:
        return str(elastic.n_proc_per_node)
    return job.spec.nproc_per_node or "auto"


def _run_policy(job: KubeflowPyTorchJob, warnings: list[SpecIssue]) -> dict[str, Any]:
    source = job.spec.run_policy
    clean = source.clean_pod_policy or "None"  # Kubeflow's default keeps pods
    if clean == "Running":
        warnings.append(
            SpecIssue(
                "spec.runPolicy.cleanPodPolicy",
                "Running has no HyperPod equivalent; converted to All",
                "warning",
            )
        )
        clean = "All"
    policy: dict[str, Any] = {"cleanPodPolicy": clean}
    retries = _retry_budget(job)
    if retries is not None:
        policy["jobMaxRetryCount"] = retries
    for key in ("active_deadline_seconds", "ttl_seconds_after_finished", "suspend"):
        value = getattr(source, key)
        if value is not None:
            policy[type(source).model_fields[key].alias or key] = value
    if source.scheduling_policy is not None:
        warnings.append(
            SpecIssue(
                "spec.runPolicy.schedulingPolicy",
                "gang-scheduling settings are not used; use Kueue labels on metadata instead",
                "warning",
            )
        )
    return policy


def _retry_budget(job: KubeflowPyTorchJob) -> int | None:
    policies = {r.restart_policy for r in job.spec.pytorch_replica_specs.values()}
    if policies <= {"Never", None} and "Never" in policies:
        return 0
    if job.spec.run_policy.backoff_limit is not None:
        return job.spec.run_policy.backoff_limit
    elastic = job.spec.elastic_policy
    return elastic.max_restarts if elastic is not None else None


def _elastic_policy(job: KubeflowPyTorchJob, warnings: list[SpecIssue]) -> dict[str, Any]:
    source = job.spec.elastic_policy
    if source is None:
        return {}
    dropped = [
        type(source).model_fields[k].alias or k
        for k in _DROPPED_ELASTIC
        if getattr(source, k) is not None
    ]
    if dropped:
        warnings.append(
            SpecIssue(
                "spec.elasticPolicy",
                f"{', '.join(dropped)} dropped: the controller assigns ranks and master addresses",
                "warning",
            )
        )
    return {
        key: value
        for key, value in (
            ("minReplicas", source.min_replicas),
            ("maxReplicas", source.max_replicas),
        )
        if value is not None
    }
