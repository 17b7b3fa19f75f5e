"""Read job manifests: YAML text in, validated `HyperPodPyTorchJob` objects (or every error) out.

This is the one door through which manifests enter trainguard — the CLI, the controller's
create path and the tests all call `load_jobs` — so a manifest that passes ``trainguard
validate`` is exactly one the controller accepts. It does no I/O: callers read the file and pass
its text and name, which keeps the rules testable on strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trainguard import constants as c
from trainguard.errors import SpecError, SpecIssue
from trainguard.spec import kubeflow
from trainguard.spec.envsubst import substitute
from trainguard.spec.hints import closest, did_you_mean, hint_missing, unknown_field_issues
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.messages import issues_from_validation
from trainguard.spec.semantics import check_job
from trainguard.spec.yamlio import load_documents

PathMap = Callable[[str], str]
KINDS = (c.KIND, c.KUBEFLOW_KIND)
APIS = (c.API_VERSION, c.KUBEFLOW_API_VERSION)


@dataclass(frozen=True)
class LoadedJob:
    """A validated job with the warnings found on the way and where it came from."""

    job: HyperPodPyTorchJob
    source: str
    warnings: tuple[SpecIssue, ...] = ()
    converted_from: str | None = None
    document: int = field(default=0)

    def summary(self) -> str:
        """One line: name, shape, restart budget and rules."""
        spec = self.job.spec
        policy = spec.run_policy
        name = self.job.metadata.name or f"{self.job.metadata.generate_name}*"
        parts = [
            f"{len(spec.replica_specs)} replica spec"
            + ("s" if len(spec.replica_specs) > 1 else ""),
            f"{spec.total_replicas} pod(s) x {spec.nproc_per_node} proc(s)",
            f"{spec.total_spares} spare(s)",
            f"{len(policy.rules)} log rule(s)",
            f"cleanPodPolicy {policy.clean_pod_policy}",
        ]
        if policy.job_max_retry_count is not None:
            parts.append(f"max {policy.job_max_retry_count} retries")
        origin = f" (from {self.converted_from})" if self.converted_from else ""
        return f'valid {c.KIND} "{name}"{origin}: ' + ", ".join(parts)


def load_jobs(text: str, *, source: str, env: Mapping[str, str] | None = None) -> list[LoadedJob]:
    """Every job document in ``text``; raises `SpecError` with all errors of all documents.

    Args:
        text: YAML, one or more documents.
        source: the file name used in messages.
        env: when given, ``$VAR``/``${VAR}`` are substituted from it first (like envsubst).

    Raises:
        SpecError: the text is not YAML, holds no job, or any job document is invalid.
    """
    if env is not None:
        text = substitute(text, env, source=source)
    documents = load_documents(text, source=source)
    multi = len(documents) > 1
    jobs: list[LoadedJob] = []
    issues: list[SpecIssue] = []
    skipped: list[SpecIssue] = []
    for index, document in documents:
        prefix = f"document {index + 1}: " if multi else ""
        if multi and not _is_job_document(document):
            kind = document.get("kind") if isinstance(document, dict) else None
            hint = did_you_mean(kind, KINDS)
            skipped.append(SpecIssue(prefix.rstrip(": "), f"kind {kind} skipped{hint}", "warning"))
            continue
        try:
            loaded = parse_job(document, source=source)
        except SpecError as exc:
            issues.extend(_prefixed(i, prefix) for i in exc.issues)
            continue
        warnings = tuple(_prefixed(w, prefix) for w in loaded.warnings)
        jobs.append(LoadedJob(loaded.job, source, warnings, loaded.converted_from, document=index))
    if jobs and skipped:
        first = jobs[0]
        jobs[0] = LoadedJob(
            first.job, source, first.warnings + tuple(skipped), first.converted_from, first.document
        )
    if not jobs and not issues:
        issues.append(SpecIssue("", f"no {c.KIND} or {c.KUBEFLOW_KIND} document found"))
    if issues:
        raise SpecError(source, issues)
    return jobs


def parse_job(document: Any, *, source: str) -> LoadedJob:
    """Validate one decoded YAML document as a HyperPodPyTorchJob or a Kubeflow PyTorchJob."""
    if not isinstance(document, dict):
        raise SpecError(
            source, [SpecIssue("", "document must be a mapping (apiVersion, kind, ...)")]
        )
    if (
        document.get("kind") == c.KUBEFLOW_KIND
        or document.get("apiVersion") == c.KUBEFLOW_API_VERSION
    ):
        return _parse_kubeflow(document, source)
    if document.get("kind") in c.KIND_ALIASES or document.get("apiVersion") == c.API_VERSION:
        return _parse_hyperpod(document, source)
    raise SpecError(source, [_unknown_kind(document)])


def _unknown_kind(document: dict[str, Any]) -> SpecIssue:
    kind, api = document.get("kind"), document.get("apiVersion")
    guesses = [
        f"{field} {match}"
        for field, match in (("kind", closest(kind, KINDS)), ("apiVersion", closest(api, APIS)))
        if match
    ]
    hint = f"; did you mean {', '.join(guesses)}?" if guesses else ""
    return SpecIssue(
        "kind",
        f"must be {c.KIND} ({c.API_VERSION}) or {c.KUBEFLOW_KIND} "
        f"({c.KUBEFLOW_API_VERSION}), got {kind!r} ({api!r}){hint}",
    )


def _parse_hyperpod(
    document: dict[str, Any], source: str, path_map: PathMap | None = None
) -> LoadedJob:
    try:
        job = HyperPodPyTorchJob.model_validate(document)
    except ValidationError as exc:
        issues = issues_from_validation(exc, path_map=path_map)
        raise SpecError(source, hint_missing(issues, document)) from exc
    found = [_mapped(i, path_map) for i in check_job(job)]
    errors = [i for i in found if i.severity == "error"]
    if errors:
        raise SpecError(source, errors)
    unknown = list(unknown_field_issues(job))
    warnings = [i for i in found if i.severity == "warning"]
    return LoadedJob(job, source, tuple(unknown if path_map is None else []) + tuple(warnings))


def _parse_kubeflow(document: dict[str, Any], source: str) -> LoadedJob:
    try:
        original = kubeflow.KubeflowPyTorchJob.model_validate(document)
    except ValidationError as exc:
        raise SpecError(source, hint_missing(issues_from_validation(exc), document)) from exc
    converted, notes = kubeflow.convert(original)
    loaded = _parse_hyperpod(converted, source, path_map=_kubeflow_paths(original))
    unknown = list(unknown_field_issues(original))
    return LoadedJob(
        loaded.job,
        source,
        tuple(unknown) + tuple(notes) + loaded.warnings,
        converted_from=f"{c.KUBEFLOW_API_VERSION} {c.KUBEFLOW_KIND}",
    )


def _kubeflow_paths(job: kubeflow.KubeflowPyTorchJob) -> PathMap:
    pattern = re.compile(r"^spec\.replicaSpecs\[(\d+)\]")
    return lambda path: pattern.sub(lambda m: kubeflow.role_path(int(m.group(1)), job), path)


def _is_job_document(document: Any) -> bool:
    """False only for a mapping that names another kind; parse_job explains anything else."""
    if not isinstance(document, dict) or "kind" not in document:
        return True
    kind, api = document.get("kind"), document.get("apiVersion")
    known_api = api in (c.API_VERSION, c.KUBEFLOW_API_VERSION)
    return kind in c.KIND_ALIASES or kind == c.KUBEFLOW_KIND or known_api


def _mapped(issue: SpecIssue, path_map: PathMap | None) -> SpecIssue:
    return (
        issue
        if path_map is None
        else SpecIssue(path_map(issue.path), issue.message, issue.severity)
    )


def _prefixed(issue: SpecIssue, prefix: str) -> SpecIssue:
    if not prefix:
        return issue
    return SpecIssue(f"{prefix}{issue.path}".rstrip(": "), issue.message, issue.severity)
