"""``status`` of a HyperPodPyTorchJob as HyperPod writes it (reference §f), plus our additions.

The controller fills these models and writes them once per step; ``kubectl get -o yaml`` users
and HyperPod tooling read the same keys (``restartCount``, ``restartStatus``,
``latestFaultyPodInstanceList``...). ``resumes``, ``goodput`` and ``checkpoint`` are
trainguard's own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from trainguard.spec.base import ManifestModel

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ManifestModel):
    """One entry of ``status.conditions`` (Created, PodsRunning, Running, Faulted, ...)."""

    type: str
    status: ConditionStatus = "True"
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    last_probe_time: str | None = None


class RestartStatus(ManifestModel):
    """Window accounting for ``runPolicy.restartPolicy``."""

    current_eval_period: str | None = Field(
        default=None, description="Start (RFC 3339) of the current evalPeriodSeconds window."
    )
    full_job_restart_count: int = 0
    restart_count: int = Field(default=0, description="Process-level restarts in the window.")


class FaultyPodInstanceList(ManifestModel):
    """What the last restart was and whom it blamed."""

    restart_type: Literal["PLR", "JLR", "Scale"] | None = None
    faulty_instance_id_list: list[str] = Field(default_factory=list)
    faulty_pod_list: list[str] = Field(default_factory=list)
    faulty_rank_list: list[int] = Field(default_factory=list)


class ObjectReference(ManifestModel):
    """A pod of the job."""

    name: str
    namespace: str | None = None
    uid: str | None = None


class Resume(ManifestModel):
    """Where training resumed after a restart (trainguard addition)."""

    restart: int = Field(description="Restart number (status.restartCount when it happened).")
    step: int | None = Field(
        default=None, description="Checkpoint step resumed from; null = scratch."
    )
    tier: str | None = Field(default=None, description="memory, peer, durable or none.")
    world_size: int | None = Field(default=None, description="Ranks that resumed.")
    saved_world_size: int | None = Field(
        default=None, description="Ranks that saved the step resumed from (differs after a resize)."
    )
    reason: str | None = Field(
        default=None,
        description="Why a faster tier or a newer step was passed over, e.g. 'memory tier "
        "holds world size 6 (step 120); job now runs 4'.",
    )


class CheckpointFailureRecord(ManifestModel):
    """The latest failed checkpoint save of the job (trainguard addition)."""

    step: int
    rank: int = Field(description="Global rank of the worker whose save failed.")
    tier: str | None = Field(default=None, description="The tier that failed (durable).")
    pod: str | None = None
    message: str = ""
    time: str | None = Field(default=None, description="RFC 3339 time the agent heard of it.")


class CheckpointStatus(ManifestModel):
    """Checkpoint health of the job: failed saves never fail the job, so they show here."""

    failure_count: int = Field(default=0, description="Failed saves, all ranks together.")
    last_failure: CheckpointFailureRecord | None = None


class JobStatus(ManifestModel):
    """``status`` of the job."""

    conditions: list[Condition] = Field(default_factory=list)
    restart_count: int = 0
    restart_status: RestartStatus = Field(default_factory=RestartStatus)
    latest_faulty_pod_instance_list: FaultyPodInstanceList | None = None
    job_pods: list[ObjectReference] = Field(default_factory=list)
    master_addr: str | None = None
    master_port: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    resumes: list[Resume] = Field(default_factory=list)
    goodput: float | None = Field(default=None, description="Useful training time / wall time.")
    checkpoint: CheckpointStatus | None = None
    current_replicas: int | None = Field(
        default=None, description="Elastic jobs: the node count the workers run at now."
    )
    desired_replicas: int | None = Field(
        default=None,
        description="Elastic jobs: the node count the job scales toward (changes with a resize).",
    )

    def to_manifest(self) -> dict[str, Any]:
        """The wire form; every ``resumes`` item carries ``step`` (null: from scratch)."""
        manifest = super().to_manifest()
        if "resumes" in manifest:
            manifest["resumes"] = [{"step": None, **r} for r in manifest["resumes"]]
        return manifest
