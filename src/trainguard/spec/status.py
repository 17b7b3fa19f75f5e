"""``status`` of a HyperPodPyTorchJob as HyperPod writes it (reference §f), plus our additions.

The controller fills these models and writes them once per step; ``kubectl get -o yaml`` users
and HyperPod tooling read the same keys (``restartCount``, ``restartStatus``,
``latestFaultyPodInstanceList``...). ``resumes`` and ``goodput`` are trainguard's own.
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

    restart_type: Literal["PLR", "JLR"] | None = None
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

    def to_manifest(self) -> dict[str, Any]:
        """The wire form; every ``resumes`` item carries ``step`` (null: from scratch)."""
        manifest = super().to_manifest()
        if "resumes" in manifest:
            manifest["resumes"] = [{"step": None, **r} for r in manifest["resumes"]]
        return manifest
