"""Job manifests: pydantic models of HyperPodPyTorchJob, validation, Kubeflow conversion, CRD.

Pure: no I/O and no clock. Callers read files and pass text to `load_jobs`.
"""

from trainguard.spec.crd import crd
from trainguard.spec.job import (
    ElasticPolicy,
    HyperPodPyTorchJob,
    JobSpec,
    LogMonitoringRule,
    ReplicaSpec,
    RestartPolicy,
    RunPolicy,
)
from trainguard.spec.load import LoadedJob, load_jobs, parse_job
from trainguard.spec.status import Condition, JobStatus, Resume
from trainguard.spec.yamlio import dump as dump_yaml

__all__ = [
    "Condition",
    "ElasticPolicy",
    "HyperPodPyTorchJob",
    "JobSpec",
    "JobStatus",
    "LoadedJob",
    "LogMonitoringRule",
    "ReplicaSpec",
    "RestartPolicy",
    "Resume",
    "RunPolicy",
    "crd",
    "dump_yaml",
    "load_jobs",
    "parse_job",
]
