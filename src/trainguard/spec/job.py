"""Models of the HyperPodPyTorchJob custom resource (reference/hyperpod.md §a.2).

Field-level rules (types, ranges, enums, regexes that must compile) live on the fields, so
pydantic reports every violation at once with its path. Rules that relate several fields live in
`trainguard.spec.semantics`, which runs after the structure is known to be sound.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, field_validator

from trainguard import constants as c
from trainguard.names import DNS_SUBDOMAIN_RE
from trainguard.spec.base import ManifestModel
from trainguard.spec.hints import did_you_mean
from trainguard.spec.k8s import ObjectMeta, PodTemplateSpec
from trainguard.spec.limits import (
    MAX_ELASTIC_SIZES,
    MAX_LOG_RULES,
    MAX_REPLICA_GROUPS,
    MAX_REPLICAS,
)
from trainguard.spec.patterns import compile_rule_pattern

CleanPodPolicy = Literal["All", "OnlyComplete", "None"]
MetricOperator = Literal["gt", "gteq", "lt", "lteq", "eq"]
RULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NPROC_KEYWORDS = ("auto", "cpu", "gpu")

NprocPerNode = Annotated[
    str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "description": "Workers per pod: auto, cpu, gpu or a positive integer (8 or '8').",
        }
    ),
]
"""Written as ``8`` or ``"8"`` in manifests (HyperPod's samples quote it), kept as text."""


def compile_pattern(value: str) -> str:
    """Check that a log pattern compiles with RE2, the linear-time engine rules run on."""
    compile_rule_pattern(value)
    return value


class RestartPolicy(ManifestModel):
    """When process-level restarts escalate to full job restarts, and when the job gives up."""

    eval_period_seconds: int = Field(ge=1, description="Sliding window for restart limits.")
    num_restart_before_full_job_restart: int | None = Field(
        default=None, ge=0, description="Process-level restarts in the window before a JLR."
    )
    max_full_job_restarts: int | None = Field(
        default=None, ge=0, description="Full job restarts allowed before the job fails."
    )
    max_num_repeat_offenders_to_avoid: int | None = Field(
        default=None, ge=0, description="Faulty nodes to exclude on the next full restart."
    )
    scale_up_snooze_time_in_seconds: int | None = Field(
        default=None, ge=0, description="Elastic jobs grow no sooner than this after a restart."
    )


class LogMonitoringRule(ManifestModel):
    """A rule over worker log lines: start cut-off, recurring frequency or metric threshold."""

    name: str = Field(min_length=1, max_length=63)
    log_pattern: str
    stop_pattern: str | None = None
    expected_start_cut_off_in_seconds: int | None = Field(default=None, ge=1)
    expected_recurring_frequency_in_seconds: int | None = Field(default=None, ge=1)
    metric_threshold: float | None = None
    operator: MetricOperator | None = None
    metric_evaluation_data_points: int | None = Field(default=None, ge=1)
    fault_on_match: bool | None = None

    @field_validator("name")
    @classmethod
    def _name_usable_in_reasons(cls, value: str) -> str:
        if not RULE_NAME_RE.match(value):
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits, '_', '-' "
                "or '.' (it becomes part of fault reasons such as LogStateHanging_<name>)"
            )
        return value

    @field_validator("log_pattern", "stop_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return None if value is None else compile_pattern(value)

    @field_validator("metric_threshold", mode="before")
    @classmethod
    def _threshold_is_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        if isinstance(value, int | float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @property
    def is_metric_rule(self) -> bool:
        """A rule that compares a captured number with a threshold."""
        return self.metric_threshold is not None or self.operator is not None


class RunPolicy(ManifestModel):
    """Restart limits, pod cleanup, deadlines and log monitoring of the job."""

    clean_pod_policy: CleanPodPolicy = "All"
    job_max_retry_count: int | None = Field(default=None, ge=0)
    restart_policy: RestartPolicy | None = None
    log_monitoring_configuration: list[LogMonitoringRule] | None = Field(
        default=None, max_length=MAX_LOG_RULES
    )
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    startup_deadline_seconds: int | None = Field(default=None, ge=1)
    fault_deadline_seconds: int | None = Field(default=None, ge=1)
    ttl_seconds_after_finished: int | None = Field(default=None, ge=-1)
    suspend: bool | None = None
    workload_mode: str | None = None

    @property
    def rules(self) -> list[LogMonitoringRule]:
        """The log monitoring rules, empty when none are configured."""
        return self.log_monitoring_configuration or []


class ReplicaSpec(ManifestModel):
    """A group of identical pods (one per node)."""

    name: str = Field(min_length=1, max_length=63)
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    max_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    spares: int = Field(default=0, ge=0, le=MAX_REPLICAS)
    template: PodTemplateSpec

    @field_validator("name")
    @classmethod
    def _name_is_dns_subdomain(cls, value: str) -> str:
        if not DNS_SUBDOMAIN_RE.match(value):
            raise ValueError(
                "must be lowercase alphanumerics, '-' or '.', e.g. 'pods' or '16-nodes'"
            )
        return value


class ElasticPolicy(ManifestModel):
    """Bounds and steps for elastic scaling of the job (HyperPod training operator v1.2+).

    The job runs at the largest allowed size that fits between ``minReplicas`` and
    ``maxReplicas``, shrinks when a node is lost and none can replace it, and grows back when
    nodes return (`trainguard.policy.elastic`). The scale-up snooze is
    ``runPolicy.restartPolicy.scaleUpSnoozeTimeInSeconds``, as in HyperPod.
    """

    min_replicas: int | None = Field(
        default=None, ge=1, le=MAX_REPLICAS, description="Fewest nodes the job runs on (1)."
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLICAS,
        description="Most nodes the job grows to (replicaSpecs maxReplicas, else replicas).",
    )
    replica_increment_step: int | None = Field(
        default=None, ge=1, description="Sizes are minReplicas + k * step (not with discrete)."
    )
    replica_discrete_values: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ELASTIC_SIZES,
        description="The only sizes allowed, each within minReplicas..maxReplicas.",
    )
    scaling_timeout_in_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Seconds a resize may take to reach Running before it is abandoned "
        "(unset or 0: no limit).",
    )
    graceful_shutdown_timeout_in_seconds: int | None = Field(default=None, ge=0)
    faulty_scale_down_timeout_in_seconds: int | None = Field(default=None, ge=0)


class JobSpec(ManifestModel):
    """``spec`` of a HyperPodPyTorchJob."""

    nproc_per_node: NprocPerNode = "auto"
    replica_specs: list[ReplicaSpec] = Field(min_length=1, max_length=MAX_REPLICA_GROUPS)
    run_policy: RunPolicy = Field(default_factory=RunPolicy)
    elastic_policy: ElasticPolicy | None = None

    @field_validator("nproc_per_node", mode="before")
    @classmethod
    def _nproc_is_keyword_or_count(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("must be auto, cpu, gpu or a positive integer")
        text = str(value).strip()
        if text in NPROC_KEYWORDS or (text.isdigit() and int(text) >= 1):
            return text
        if "$" in text:
            raise ValueError(
                f"holds the unexpanded variable {text!r}: expand it first "
                "(envsubst, or trainguard's --envsubst)"
            )
        raise ValueError(f"must be auto, cpu, gpu or a positive integer, got {text!r}")

    @property
    def total_replicas(self) -> int:
        """Pods (= nodes) the job needs, over all replica groups."""
        return sum(r.replicas for r in self.replica_specs)

    @property
    def total_spares(self) -> int:
        """Hot-spare nodes the job asks to keep in reserve."""
        return sum(r.spares for r in self.replica_specs)


class HyperPodPyTorchJob(ManifestModel):
    """The custom resource ``sagemaker.amazonaws.com/v1`` ``HyperPodPyTorchJob``."""

    api_version: str = c.API_VERSION
    kind: str = c.KIND
    metadata: ObjectMeta
    spec: JobSpec
    status: dict[str, Any] | None = None

    @field_validator("api_version")
    @classmethod
    def _api_version_is_ours(cls, value: str) -> str:
        if value != c.API_VERSION:
            hint = did_you_mean(value, [c.API_VERSION])
            raise ValueError(f"must be {c.API_VERSION}, got {value!r}{hint}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind_is_ours(cls, value: str) -> str:
        if value not in c.KIND_ALIASES:
            raise ValueError(f"must be {c.KIND}, got {value!r}{did_you_mean(value, [c.KIND])}")
        return c.KIND

    @property
    def name(self) -> str:
        """The job's name (``metadata.name``); set by `ensure_name` for generateName jobs."""
        if not self.metadata.name:
            raise ValueError("job has no metadata.name")
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """The job's namespace, ``default`` when unset."""
        return self.metadata.namespace or "default"
