"""Every name shared across processes: API identity, label and annotation keys, environment
variables, condition types and event reasons.

They live in one module (as jobset's ``constants.go`` does) because each of them is a protocol
with somebody else — kubectl users, HyperPod's operator and agent, training scripts — and a
string spelled twice is a protocol broken once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# --- API identity (reference/hyperpod.md §a.1) -------------------------------------------------
GROUP: Final = "sagemaker.amazonaws.com"
VERSION: Final = "v1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "HyperPodPyTorchJob"
KIND_ALIASES: Final = frozenset({"HyperPodPyTorchJob", "HyperPodPytorchJob"})
PLURAL: Final = "hyperpodpytorchjobs"
SINGULAR: Final = "hyperpodpytorchjob"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
SHORT_NAMES: Final = ("hpj", "hpjob")
CONTROLLER_COMPONENT: Final = "hyperpod-pytorch-job-controller"

KUBEFLOW_API_VERSION: Final = "kubeflow.org/v1"
KUBEFLOW_KIND: Final = "PyTorchJob"

# --- labels and annotations on jobs and pods --------------------------------------------------
LABEL_JOB: Final = "HPJob"
LABEL_RESTART_ATTEMPT: Final = "trainguard.io/restart-attempt"
LABEL_REPLICA_SPEC: Final = "trainguard.io/replica-spec"
LABEL_NODE_RANK: Final = "trainguard.io/node-rank"
LABEL_SPARE: Final = "trainguard.io/spare"
ANNOTATION_INFO: Final = "trainguard.io/info"
"""Backend bookkeeping of a Pod or Node (`PodRecord.info`, `NodeRecord.info`) as JSON."""
FINALIZER_TEARDOWN: Final = "trainguard.io/teardown"
"""Keeps a deleted job until the controller has shut its agents down (`Store.remove_job`)."""
CONTROLLER_LEASE: Final = "trainguard-controller"
"""The coordination.k8s.io/v1 Lease the operators elect their leader on."""
KUEUE_GROUP: Final = "kueue.x-k8s.io"
KUEUE_VERSION: Final = "v1beta1"
KUEUE_API_VERSION: Final = f"{KUEUE_GROUP}/{KUEUE_VERSION}"
LABEL_KUEUE_JOB_UID: Final = "kueue.x-k8s.io/job-uid"
"""On a job's Workload: the job's uid (Kueue's own jobframework sets the same)."""
LABEL_KUEUE_QUEUE: Final = "kueue.x-k8s.io/queue-name"
LABEL_KUEUE_PRIORITY: Final = "kueue.x-k8s.io/priority-class"
ANNOTATION_KUEUE_PREFERRED_TOPOLOGY: Final = "kueue.x-k8s.io/podset-preferred-topology"
ANNOTATION_KUEUE_REQUIRED_TOPOLOGY: Final = "kueue.x-k8s.io/podset-required-topology"
KUEUE_TOPOLOGY_VALUES: Final = frozenset(
    {
        "topology.k8s.aws/ultraserver-id",
        "topology.k8s.aws/network-node-layer-1",
        "topology.k8s.aws/network-node-layer-2",
        "topology.k8s.aws/network-node-layer-3",
    }
)
ANNOTATION_CONVERTED_FROM: Final = "trainguard.io/converted-from"

POD_INFO_DISRUPTION: Final = "disruptionTarget"
"""Key of `PodRecord.info`: why Kubernetes is evicting the pod (its ``DisruptionTarget``
condition's reason), set by the Kubernetes store; the controller treats it as a node fault."""

# --- node labels and annotations (reference §f) -----------------------------------------------
LABEL_NODE_HEALTH: Final = "sagemaker.amazonaws.com/node-health-status"
LABEL_DEEP_HEALTH: Final = "sagemaker.amazonaws.com/deep-health-check-status"
LABEL_FAULT_TYPES: Final = "sagemaker.amazonaws.com/fault-types"
LABEL_FAULT_REASONS: Final = "sagemaker.amazonaws.com/fault-reasons"
ANNOTATION_FAULT_DETAILS: Final = "sagemaker.amazonaws.com/fault-details"
LABEL_COMPUTE_TYPE: Final = "sagemaker.amazonaws.com/compute-type"
LABEL_CLUSTER_NAME: Final = "sagemaker.amazonaws.com/cluster-name"
LABEL_INSTANCE_TYPE: Final = "node.kubernetes.io/instance-type"
LABEL_INSTANCE_TYPE_BETA: Final = "beta.kubernetes.io/instance-type"
LABEL_HOSTNAME: Final = "kubernetes.io/hostname"

HEALTH_SCHEDULABLE: Final = "Schedulable"
HEALTH_UNSCHEDULABLE: Final = "Unschedulable"
HEALTH_PENDING_REBOOT: Final = "UnschedulablePendingReboot"
HEALTH_PENDING_REPLACEMENT: Final = "UnschedulablePendingReplacement"
HEALTH_STATUSES: Final = (
    HEALTH_SCHEDULABLE,
    HEALTH_UNSCHEDULABLE,
    HEALTH_PENDING_REBOOT,
    HEALTH_PENDING_REPLACEMENT,
)
DEEP_HEALTH_IN_PROGRESS: Final = "InProgress"
DEEP_HEALTH_PASSED: Final = "Passed"
DEEP_HEALTH_FAILED: Final = "Failed"

# --- environment variables --------------------------------------------------------------------
ENV_HOME: Final = "TRAINGUARD_HOME"
ENV_AGENT_TOKEN: Final = "TRAINGUARD_AGENT_TOKEN"
ENV_AGENT_PORT: Final = "TRAINGUARD_AGENT_PORT"
MTC_SERVER_PORT: Final = 9200  # HyperPod MTC in-memory checkpoint API (`checkpoint.mtc.server`)
ENV_AGENT_HOST: Final = "TRAINGUARD_AGENT_HOST"
ENV_LOG_DIR: Final = "TRAINGUARD_LOG_DIR"
ENV_AGENT_CALLBACK_URL: Final = "TRAINGUARD_CALLBACK_URL"
ENV_AGENT_SOCKET: Final = "HYPERPOD_ELASTICAGENT_SOCKET_SERVER_PATH"
ENV_NODE_NAME: Final = "NODE_NAME"
ENV_POD_NAME: Final = "POD_NAME"
ENV_JOB_NAME: Final = "TRAINGUARD_JOB_NAME"
ENV_NNODES: Final = "NNODES"
ENV_NPROC_PER_NODE: Final = "NPROC_PER_NODE"
ENV_SHM_DIR: Final = "TRAINGUARD_SHM_DIR"
# the node's MTC server (HyperPod in-memory checkpoint API), set by the local backend
ENV_MTC_URL: Final = "TRAINGUARD_MTC_URL"
ENV_MTC_SERVERS: Final = "TRAINGUARD_MTC_SERVERS"
"""``--mtc`` (1) or ``--no-mtc`` (0) for ``run`` and ``cluster up`` when neither flag is given."""
ENV_RESUME_STEP: Final = "TRAINGUARD_RESUME_STEP"
ENV_JOB_RESTART_COUNT: Final = "JOB_RESTART_COUNT"
ENV_JOB_UID: Final = "TRAINGUARD_JOB_UID"
ENV_JOB_NAMESPACE: Final = "TRAINGUARD_JOB_NAMESPACE"
# durable checkpoint location of the job (a per-job directory on the shared file system)
ENV_CHECKPOINT_DIR: Final = "TRAINGUARD_CHECKPOINT_DIR"
# mode of durable checkpoint files (octal, e.g. "0640"; default 0600, directories get x per r)
ENV_CHECKPOINT_FILE_MODE: Final = "TRAINGUARD_CHECKPOINT_FILE_MODE"
# where an agent writes its per-rank step/save timeline (JSONL; unset: not written)
ENV_TIMELINE_FILE: Final = "TRAINGUARD_TIMELINE_FILE"

# --- job conditions (DESIGN §2) ---------------------------------------------------------------
COND_CREATED: Final = "Created"
COND_PODS_RUNNING: Final = "PodsRunning"
COND_RUNNING: Final = "Running"
COND_FAULTED: Final = "Faulted"
COND_COMPLETED: Final = "Completed"
COND_FAILED: Final = "Failed"
COND_SUSPENDED: Final = "Suspended"
"""True while the job has no pods because of ``runPolicy.suspend`` or its queue (Kueue)."""

# --- event reasons ----------------------------------------------------------------------------
REASON_NODE_FAULT: Final = "NodeFault"
REASON_WORKER_CRASH: Final = "WorkerCrash"
REASON_POD_LOST: Final = "PodLost"
REASON_RUNNING: Final = "Running"
REASON_TRAINING_RESUMED: Final = "TrainingResumed"
"""After a restart: the first training step is done (when, from which step and tier)."""
REASON_RECONCILE_ERROR: Final = "ReconcileError"
"""An unexpected exception while reconciling one job: that job fails, the controller goes on."""
REASON_VALIDATION_FAILED: Final = "ValidationFailed"
"""A job applied through the API failed the checks of ``trainguard validate`` (`admission`)."""
# a worker's checkpoint save failed (durable tier full, unreachable...): Warning, job goes on
REASON_CHECKPOINT_FAILED: Final = "CheckpointFailed"
# a requested fault (run --fault, fault inject) was carried out / could not be (Warning)
REASON_SUSPENDED: Final = "Suspended"
"""The job's pods were stopped (or never made): suspended, queued or evicted; no restart."""
REASON_RESUMED: Final = "Resumed"
"""A suspended job was admitted again: its pods come back and resume from a checkpoint."""
REASON_SCALE_DOWN: Final = "ScaleDown"
"""An elastic job shrank: a node was lost and no spare or free node could take its rank."""
REASON_SCALE_UP: Final = "ScaleUp"
"""An elastic job grew: more nodes became Schedulable (after the scale-up snooze)."""
REASON_SCALING_TIMED_OUT: Final = "ScalingTimedOut"
"""An elastic job's resize did not reach Running within ``scalingTimeoutInSeconds`` (Warning):
a grow falls back to a smaller size, a shrink becomes an ordinary fault."""
REASON_FAULT_INJECTED: Final = "FaultInjected"
REASON_FAULT_NOT_INJECTED: Final = "FaultNotInjected"
REASON_LOG_HANGING_PREFIX: Final = "LogStateHanging_"
REASON_LOG_SLOW_PREFIX: Final = "LogStateSlow_"
REASON_LOG_FAULT_PREFIX: Final = "LogStateFault_"
AGENT_REASON_LOG_HANG_PREFIX: Final = "LogHang_"
AGENT_REASON_LOG_SLOW_PREFIX: Final = "LogSlow_"
AGENT_REASON_LOG_FAULT_PREFIX: Final = "LogFault_"

# --- restart types (status.latestFaultyPodInstanceList.restartType) ---------------------------
RESTART_PLR: Final = "PLR"
RESTART_JLR: Final = "JLR"
RESTART_SCALE: Final = "Scale"
"""An elastic resize: a restart at a new size; not counted against the restart limits."""


class RestartType(StrEnum):
    """A restart's type, as the ``restart_type`` label of the restart metric."""

    PLR = RESTART_PLR
    JLR = RESTART_JLR
    SCALE = RESTART_SCALE


# --- elastic agent (trainguard agent / hyperpodrun) -------------------------------------------
AGENT_REASON_PRE_TRAIN_FAILED: Final = "PreTrainScriptFailed"
AGENT_REASON_POST_TRAIN_FAILED: Final = "PostTrainScriptFailed"
AGENT_SIGNAL_PATH: Final = "/trainguard/signal"
"""The agent route that signals one of its own processes (fault injection without exec)."""
ENV_AGENT_EXTENSIONS: Final = "TRAINGUARD_AGENT_EXTENSIONS"
AGENT_EXTENSIONS_ENTRY_POINT: Final = "trainguard.agent_extensions"
ENV_SPARE_REFILL_DELAY: Final = "TRAINGUARD_SPARE_REFILL_DELAY"
ENV_COLD_START: Final = "TRAINGUARD_COLD_START"
"""Set to 1: the agent starts every worker as a new interpreter (``--cold-start``), no zygote."""
# what workers see (torchrun's names; HyperPod's agent sets the same)
ENV_RANK: Final = "RANK"
ENV_LOCAL_RANK: Final = "LOCAL_RANK"
ENV_WORLD_SIZE: Final = "WORLD_SIZE"
ENV_LOCAL_WORLD_SIZE: Final = "LOCAL_WORLD_SIZE"
ENV_GROUP_RANK: Final = "GROUP_RANK"
ENV_GROUP_WORLD_SIZE: Final = "GROUP_WORLD_SIZE"
ENV_ROLE_RANK: Final = "ROLE_RANK"
ENV_ROLE_NAME: Final = "ROLE_NAME"
ENV_ROLE_WORLD_SIZE: Final = "ROLE_WORLD_SIZE"
ENV_MASTER_ADDR: Final = "MASTER_ADDR"
ENV_MASTER_PORT: Final = "MASTER_PORT"
ENV_RESTART_COUNT: Final = "TORCHELASTIC_RESTART_COUNT"
ENV_MAX_RESTARTS: Final = "TORCHELASTIC_MAX_RESTARTS"
ENV_RUN_ID: Final = "TORCHELASTIC_RUN_ID"
ENV_USE_AGENT_STORE: Final = "TORCHELASTIC_USE_AGENT_STORE"
ENV_NCCL_ASYNC_ERROR_HANDLING: Final = "TORCH_NCCL_ASYNC_ERROR_HANDLING"
ENV_OMP_NUM_THREADS: Final = "OMP_NUM_THREADS"
# --- node health agent and deep health checks (issue 7) ---------------------------------------
ANNOTATION_HEALTH_AGENT_STATUS: Final = "trainguard.io/health-agent-status"
REASON_HEALTH_CHECK_FAILED: Final = "HealthCheckFailed"
REASON_HEALTH_CHECK_NOTICE: Final = "HealthCheckNotice"
REASON_HEALTH_CHECK_RECOVERED: Final = "HealthCheckRecovered"
REASON_HEALTH_CHECK_ERROR: Final = "HealthCheckError"
REASON_NODE_HEALTH_CHANGED: Final = "NodeHealthChanged"
REASON_DEEP_HEALTH_STARTED: Final = "DeepHealthCheckStarted"
REASON_DEEP_HEALTH_PASSED: Final = "DeepHealthCheckPassed"
REASON_DEEP_HEALTH_FAILED: Final = "DeepHealthCheckFailed"
DEEP_CHECK_STRESS: Final = "InstanceStress"
DEEP_CHECK_CONNECTIVITY: Final = "InstanceConnectivity"
ANNOTATION_DEEP_HEALTH_PREVIOUS: Final = "trainguard.io/deep-health-previous"
