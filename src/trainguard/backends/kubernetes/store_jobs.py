"""A `JobRecord` as a ``HyperPodPyTorchJob`` object, and back (`KubernetesStore`'s job half).

Where each field lives, and why:

- the manifest is the object itself (``spec``, the user's labels and annotations), as the user
  applied it: ``kubectl get hpjob -o yaml`` shows what was submitted;
- `JobRecord.status` is ``.status`` with exactly `JobStatus`'s keys (HyperPod's fields and
  ours), so HyperPod tooling reads it unchanged; ``.status.observedGeneration`` says which
  ``spec`` generation the controller last acted on;
- the controller's bookkeeping — `JobState`, the restart history, the finish time, the
  manifest's source directory — lives under the one key ``.status.trainguard`` (the CRD keeps
  it with ``x-kubernetes-preserve-unknown-fields``), so it is written in the same status write
  as the rest and a new operator replica resumes exactly where the old one stopped — except
  ``JobState.token``: it lives in the job's Secret (`agenttoken`), and the status names that
  Secret (``agentTokenSecret``) once it exists;
- `JobRecord.version` is ``metadata.resourceVersion`` read as a number (the API server's
  optimistic-concurrency token; etcd's revisions are numbers); the string itself rides in
  `JobRecord.loaded` and is sent back as the precondition of the next status write;
- a job marked for deletion is one with ``metadata.deletionTimestamp`` (our finalizer keeps it);
- ``created_at`` is the creator's clock (annotation ``trainguard.io/created-at``) when the
  store created the object, else ``metadata.creationTimestamp``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes.agenttoken import secret_name
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.spec.status import JobStatus
from trainguard.store.jobstate import JobState
from trainguard.store.records import JobRecord, RestartRecord

OURS = "trainguard"
"""The preserved key under ``.status`` holding the controller's bookkeeping."""
TOKEN_SECRET = "agentTokenSecret"
"""Key of ``.status.trainguard`` naming the job's agent-token Secret once it exists."""
ANNOTATION_CREATED_AT = "trainguard.io/created-at"
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "managedFields", "finalizers",
                    "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences",
                    "selfLink")  # fmt: skip


@dataclass(frozen=True)
class Loaded:
    """What a job was read as: the precondition and the JSON compared by `commit_step`."""

    resource_version: str
    status: str
    ours: str


def new_object(job: JobRecord) -> dict[str, Any]:
    """The object `Store.create_job` creates: the manifest, our finalizer, the creation time."""
    obj = copy.deepcopy(job.manifest)
    obj.pop("status", None)
    obj["apiVersion"], obj["kind"] = c.API_VERSION, c.KIND
    meta = obj.setdefault("metadata", {})
    for key in ("creationTimestamp", *_SERVER_METADATA):
        meta.pop(key, None)
    meta.update(name=job.name, namespace=job.namespace, finalizers=[c.FINALIZER_TEARDOWN])
    meta.setdefault("annotations", {})[ANNOTATION_CREATED_AT] = repr(job.created_at)
    return obj


def status_json(job: JobRecord) -> tuple[str, str]:
    """The JSON of the HyperPod status and of our bookkeeping (what `commit_step` compares)."""
    return _dumps(job.status.to_manifest()), _dumps(bookkeeping(job))


def bookkeeping(job: JobRecord, restarts: list[RestartRecord] | None = None) -> dict[str, Any]:
    """``.status.trainguard`` of ``job`` (with ``restarts`` as its history when given)."""
    ours: dict[str, Any] = {
        "state": job.state.model_dump(mode="json", exclude={"token"}),
        "restarts": [restart_json(r) for r in (job.restarts if restarts is None else restarts)],
    }
    if job.finished_at is not None:
        ours["finishedAt"] = job.finished_at
    if job.source_dir is not None:
        ours["sourceDir"] = job.source_dir
    if job.state.token:
        ours[TOKEN_SECRET] = secret_name(job.name)
    return ours


def status_object(
    job: JobRecord, *, resource_version: str, generation: int | None,
    restarts: list[RestartRecord],
) -> dict[str, Any]:  # fmt: skip
    """The body of a status write: the status, guarded by ``resource_version``."""
    status = job.status.to_manifest()
    if generation is not None:
        status["observedGeneration"] = generation
    status[OURS] = bookkeeping(job, restarts)
    meta = {"name": job.name, "namespace": job.namespace, "resourceVersion": resource_version}
    return {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": meta, "status": status}


def restart_json(restart: RestartRecord) -> dict[str, Any]:
    """A restart as stored under ``.status.trainguard.restarts``."""
    return {
        "time": restart.time,
        "restartType": restart.restart_type,
        "reason": restart.reason,
        "faultyPods": list(restart.faulty_pods),
        "faultyRanks": list(restart.faulty_ranks),
        "faultyNodes": list(restart.faulty_nodes),
    }


def restart_record(namespace: str, job: str, data: dict[str, Any]) -> RestartRecord:
    """A stored restart as a record."""
    return RestartRecord(
        namespace, job, float(data["time"]), data["restartType"], data["reason"],
        tuple(data.get("faultyPods", ())), tuple(data.get("faultyRanks", ())),
        tuple(data.get("faultyNodes", ())),
    )  # fmt: skip


class JobReader:
    """Builds `JobRecord`s from objects, parsing each manifest generation once.

    A part the models refuse (a status edited by hand past validation) does not stop the
    other jobs being read: it is replaced by an empty model and named in `JobRecord.defects`.
    """

    def __init__(self) -> None:
        self._specs: dict[tuple[str, int], tuple[HyperPodPyTorchJob, dict[str, Any]]] = {}

    def record(self, obj: dict[str, Any], *, token: str = "") -> JobRecord:
        """The record of job object ``obj`` whose agent token is ``token``."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        status = dict(obj.get("status") or {})
        ours = status.pop(OURS, None) or {}
        status.pop("observedGeneration", None)
        defects: list[str] = []
        spec, manifest = self._spec(obj, defects)
        restarts = [restart_record(namespace, name, r) for r in ours.get("restarts") or []]
        record = JobRecord(
            namespace=namespace, name=name, uid=meta.get("uid", ""), job=spec, manifest=manifest,
            status=_parsed(defects, "status", JobStatus, status) or JobStatus(),
            state=_parsed(defects, "state", JobState, ours.get("state") or {}) or JobState(),
            created_at=created_at(meta), finished_at=ours.get("finishedAt"),
            deletion_requested=bool(meta.get("deletionTimestamp")),
            source_dir=ours.get("sourceDir"), version=version(meta), restarts=restarts,
            defects=tuple(defects),
        )  # fmt: skip
        record.state.token = token
        record.loaded = Loaded(meta.get("resourceVersion", ""), *status_json(record))
        return record

    def _spec(
        self, obj: dict[str, Any], defects: list[str]
    ) -> tuple[HyperPodPyTorchJob, dict[str, Any]]:
        meta = obj["metadata"]
        key = (meta.get("uid", ""), int(meta.get("generation") or 0))
        cached = self._specs.get(key)
        if cached is None:
            manifest = submitted_manifest(obj)
            try:
                cached = (HyperPodPyTorchJob.model_validate(manifest), manifest)
            except ValueError as exc:
                defects.append(f"stored manifest is invalid: {type(exc).__name__}: {exc}")
                return HyperPodPyTorchJob.model_construct(), manifest  # type: ignore[call-arg]
            self._specs = {k: v for k, v in self._specs.items() if k[0] != key[0]}
            self._specs[key] = cached
        return cached

    def forget(self, uid: str) -> None:
        """Drop the parsed manifests of a removed job."""
        self._specs = {k: v for k, v in self._specs.items() if k[0] != uid}


def names_token_secret(obj: dict[str, Any]) -> bool:
    """Whether the job's status says its agent-token Secret exists."""
    return bool(((obj.get("status") or {}).get(OURS) or {}).get(TOKEN_SECRET))


def adoption_patch(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch adding our finalizer to a job that lacks it (one applied with kubectl),
    guarded by its resourceVersion; None when it has it or is being deleted already (the API
    server refuses new finalizers then)."""
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if c.FINALIZER_TEARDOWN in finalizers or meta.get("deletionTimestamp") or not meta.get("uid"):
        return None
    return {
        "metadata": {
            "finalizers": [*finalizers, c.FINALIZER_TEARDOWN],
            "resourceVersion": meta["resourceVersion"],
        }
    }


def release_patch(meta: dict[str, Any]) -> dict[str, Any]:
    """The merge patch removing our finalizer from a job whose metadata is ``meta``, guarded
    by its resourceVersion (a finalizer another controller adds meanwhile is never lost)."""
    left = [f for f in meta.get("finalizers") or [] if f != c.FINALIZER_TEARDOWN]
    return {"metadata": {"finalizers": left or None, "resourceVersion": meta["resourceVersion"]}}


def submitted_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the user submitted it: no status, no server-set or store-set metadata."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in _SERVER_METADATA}
    annotations = {
        k: v for k, v in (meta.pop("annotations", None) or {}).items()
        if k not in (ANNOTATION_CREATED_AT, "kubectl.kubernetes.io/last-applied-configuration")
    }  # fmt: skip
    if annotations:
        meta["annotations"] = annotations
    manifest = {"apiVersion": obj.get("apiVersion", c.API_VERSION), "kind": obj.get("kind", c.KIND)}
    return {**manifest, "metadata": meta, "spec": copy.deepcopy(obj.get("spec") or {})}


def created_at(meta: dict[str, Any]) -> float:
    """The creator's clock when the store created the object, else the server's."""
    stamp = (meta.get("annotations") or {}).get(ANNOTATION_CREATED_AT)
    if stamp is not None:
        try:
            return float(stamp)
        except ValueError:
            pass
    return parse_time(meta.get("creationTimestamp"))


def parse_time(value: str | None) -> float:
    """An RFC 3339 time (``metav1.Time`` / ``MicroTime``) as epoch seconds (0 when absent)."""
    return 0.0 if not value else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def version(meta: dict[str, Any]) -> int:
    """``metadata.resourceVersion`` as a number (0 where a server's is not numeric)."""
    value = str(meta.get("resourceVersion") or "")
    return int(value) if value.isdigit() else 0


def _parsed(defects: list[str], part: str, model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate_json(_dumps(data))
    except ValueError as exc:
        defects.append(f"stored {part} is invalid: {type(exc).__name__}: {exc}")
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=True)
