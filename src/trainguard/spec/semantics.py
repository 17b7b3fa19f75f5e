"""Rules that relate several fields of a job, checked once its structure is valid.

Pydantic reports type and range errors per field; the combinations below need the whole
object (a metric rule needs both a threshold and an operator and a capturing group; names must
be unique; elastic bounds must nest). Each check yields `SpecIssue` values with the path of the
field a person should edit, so a manifest with five mistakes gets five messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from trainguard.errors import SpecIssue
from trainguard.names import DNS_SUBDOMAIN_RE
from trainguard.spec.job import ElasticPolicy, HyperPodPyTorchJob, LogMonitoringRule, RunPolicy
from trainguard.spec.k8s import Container
from trainguard.spec.limits import (
    GENERATED_SUFFIX_LENGTH,
    MAX_EXEC_BYTES,
    MAX_NAME_LENGTH,
    MAX_REPLICAS,
    exec_bytes,
)
from trainguard.spec.patterns import compile_rule_pattern

RULES_PATH = "spec.runPolicy.logMonitoringConfiguration"
Check = Callable[[HyperPodPyTorchJob], Iterator[SpecIssue]]


def check_job(job: HyperPodPyTorchJob) -> list[SpecIssue]:
    """Every cross-field issue of ``job``, errors and warnings, in document order."""
    return [issue for check in CHECKS for issue in check(job)]


def _check_metadata(job: HyperPodPyTorchJob) -> Iterator[SpecIssue]:
    meta = job.metadata
    if not meta.name and not meta.generate_name:
        yield SpecIssue("metadata.name", "required (or metadata.generateName)")
    if meta.name and (len(meta.name) > MAX_NAME_LENGTH or not DNS_SUBDOMAIN_RE.match(meta.name)):
        yield SpecIssue(
            "metadata.name",
            f"must be at most {MAX_NAME_LENGTH} lowercase alphanumerics, '-' or '.', starting "
            "and ending alphanumeric",
        )
    if meta.generate_name is not None and not meta.name:
        yield from _check_generate_name(meta.generate_name)


def _check_generate_name(prefix: str) -> Iterator[SpecIssue]:
    """As Kubernetes: the prefix, a trailing '-' allowed, must be a valid name once suffixed."""
    longest = MAX_NAME_LENGTH - GENERATED_SUFFIX_LENGTH
    masked = prefix[:-1] + "a" if prefix.endswith("-") else prefix
    if len(prefix) > longest or not DNS_SUBDOMAIN_RE.match(masked):
        yield SpecIssue(
            "metadata.generateName",
            f"must be at most {longest} lowercase alphanumerics, '-' or '.', starting "
            f"alphanumeric (a random {GENERATED_SUFFIX_LENGTH}-character suffix follows), "
            f"got {prefix!r}",
        )


def _check_replica_specs(job: HyperPodPyTorchJob) -> Iterator[SpecIssue]:
    seen: set[str] = set()
    for index, replica in enumerate(job.spec.replica_specs):
        path = f"spec.replicaSpecs[{index}]"
        if replica.name in seen:
            yield SpecIssue(f"{path}.name", f"duplicate replica spec name {replica.name!r}")
        seen.add(replica.name)
        if replica.max_replicas is not None and replica.max_replicas < replica.replicas:
            yield SpecIssue(
                f"{path}.maxReplicas",
                f"must be at least replicas ({replica.replicas}), got {replica.max_replicas}",
            )
        yield from _check_containers(replica.template.spec.containers, f"{path}.template.spec")


def _check_pod_count(job: HyperPodPyTorchJob) -> Iterator[SpecIssue]:
    pods = job.spec.total_replicas + job.spec.total_spares
    if pods > MAX_REPLICAS:
        yield SpecIssue(
            "spec.replicaSpecs",
            f"asks for {pods} pods (replicas + spares of all groups); at most {MAX_REPLICAS}",
        )


def _check_containers(containers: list[Container], path: str) -> Iterator[SpecIssue]:
    names = [container.name for container in containers]
    for index, name in enumerate(names):
        if name in names[:index]:
            yield SpecIssue(
                f"{path}.containers[{index}].name", f"duplicate container name {name!r}"
            )
        size = exec_bytes(_exec_strings(containers[index]))
        if size > MAX_EXEC_BYTES:
            yield SpecIssue(
                f"{path}.containers[{index}]",
                f"command, args and env take {size} bytes of execve's argument space; "
                f"at most {MAX_EXEC_BYTES}",
            )


def _exec_strings(container: Container) -> list[str]:
    """What ``execve`` receives from the container: argv, then ``NAME=value`` strings."""
    env = [f"{var.name}={var.value or ''}" for var in container.env or []]
    return [*(container.command or []), *(container.args or []), *env]


def _check_run_policy(job: HyperPodPyTorchJob) -> Iterator[SpecIssue]:
    policy: RunPolicy = job.spec.run_policy
    restart = policy.restart_policy
    if (
        restart is not None
        and restart.num_restart_before_full_job_restart is not None
        and policy.job_max_retry_count is not None
        and restart.num_restart_before_full_job_restart > policy.job_max_retry_count
    ):
        yield SpecIssue(
            "spec.runPolicy.restartPolicy.numRestartBeforeFullJobRestart",
            f"exceeds jobMaxRetryCount ({policy.job_max_retry_count}): the job fails before "
            "a full job restart can happen",
            "warning",
        )


def _check_rules(job: HyperPodPyTorchJob) -> Iterator[SpecIssue]:
    seen: set[str] = set()
    for index, rule in enumerate(job.spec.run_policy.rules):
        path = f"{RULES_PATH}[{index}]"
        if rule.name in seen:
            yield SpecIssue(f"{path}.name", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        yield from check_rule(rule, path)


def check_rule(rule: LogMonitoringRule, path: str) -> Iterator[SpecIssue]:
    """Cross-field issues of one log rule (also used by the agent on rules sent in /start)."""
    if rule.metric_threshold is not None and rule.operator is None:
        yield SpecIssue(f"{path}.operator", "required when metricThreshold is set")
    if rule.operator is not None and rule.metric_threshold is None:
        yield SpecIssue(f"{path}.metricThreshold", "required when operator is set")
    if rule.is_metric_rule and compile_rule_pattern(rule.log_pattern).groups < 1:
        yield SpecIssue(
            f"{path}.logPattern",
            "a metric rule needs a capturing group for the value, e.g. 'Loss: ([0-9.eE+-]+)'",
        )
    if rule.metric_evaluation_data_points is not None and not rule.is_metric_rule:
        yield SpecIssue(
            f"{path}.metricEvaluationDataPoints",
            "has no effect without metricThreshold and operator",
            "warning",
        )
    has_timer = (
        rule.expected_start_cut_off_in_seconds is not None
        or rule.expected_recurring_frequency_in_seconds is not None
    )
    if not (has_timer or rule.is_metric_rule or rule.fault_on_match):
        yield SpecIssue(
            path,
            "rule can never fire: set expectedStartCutOffInSeconds, "
            "expectedRecurringFrequencyInSeconds, metricThreshold with operator, or faultOnMatch",
            "warning",
        )


def _check_elastic(job: HyperPodPyTorchJob) -> Iterator[SpecIssue]:
    elastic: ElasticPolicy | None = job.spec.elastic_policy
    if elastic is None:
        return
    path = "spec.elasticPolicy"
    if len(job.spec.replica_specs) != 1:
        yield SpecIssue(
            "spec.replicaSpecs",
            "an elastic job has exactly one replica spec (its pods are the data-parallel "
            f"replicas that scale), got {len(job.spec.replica_specs)}",
        )
    replicas = job.spec.total_replicas
    low, high = elastic.min_replicas, elastic.max_replicas
    if low is not None and high is not None and low > high:
        yield SpecIssue(f"{path}.minReplicas", f"must not exceed maxReplicas ({high}), got {low}")
    elif low is not None and low > replicas:
        yield SpecIssue(f"{path}.minReplicas", f"must not exceed replicas ({replicas}), got {low}")
    if high is not None and high < replicas:
        yield SpecIssue(
            f"{path}.maxReplicas", f"must be at least replicas ({replicas}), got {high}"
        )
    if elastic.replica_increment_step is not None and elastic.replica_discrete_values is not None:
        yield SpecIssue(
            f"{path}.replicaDiscreteValues",
            "cannot be combined with replicaIncrementStep: set one of them",
        )
    yield from _check_scaling_timeout(elastic)
    yield from _check_discrete_values(elastic)


def _check_scaling_timeout(elastic: ElasticPolicy) -> Iterator[SpecIssue]:
    """A resize counts its graceful stop against the scaling timeout: one shorter than the
    graceful stop abandons every resize whose workers take their full stop budget."""
    timeout = elastic.scaling_timeout_in_seconds
    graceful = elastic.graceful_shutdown_timeout_in_seconds
    if timeout and graceful is not None and timeout <= graceful:
        yield SpecIssue(
            "spec.elasticPolicy.scalingTimeoutInSeconds",
            f"{timeout} s is not longer than gracefulShutdownTimeoutInSeconds ({graceful} s): "
            "a resize whose workers use their whole graceful stop is abandoned",
            "warning",
        )


def _check_discrete_values(elastic: ElasticPolicy) -> Iterator[SpecIssue]:
    path = "spec.elasticPolicy.replicaDiscreteValues"
    values = elastic.replica_discrete_values
    if values is None:
        return
    low, high = elastic.min_replicas, elastic.max_replicas
    for index, value in enumerate(values):
        if value < 1 or (high is not None and value > high) or (low is not None and value < low):
            yield SpecIssue(
                f"{path}[{index}]",
                f"must lie within minReplicas..maxReplicas ({low or 1}..{high or 'unbounded'}),"
                f" got {value}",
            )
    if len(set(values)) != len(values):
        yield SpecIssue(path, f"must not repeat a size, got {values}")


CHECKS: tuple[Check, ...] = (
    _check_metadata,
    _check_replica_specs,
    _check_pod_count,
    _check_run_policy,
    _check_rules,
    _check_elastic,
)
