"""Every name shared across processes: API identity, label and annotation keys, environment
variables, condition types and event reasons.

They live in one module (as jobset's ``constants.go`` does) because each of them is a protocol
with somebody else — kubectl users, HyperPod's operator and agent, training scripts — and a
string spelled twice is a protocol broken once.
"""

from __future__ import annotations

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
ENV_RESUME_STEP: Final = "TRAINGUARD_RESUME_STEP"
ENV_JOB_RESTART_COUNT: Final = "JOB_RESTART_COUNT"
ENV_JOB_UID: Final = "TRAINGUARD_JOB_UID"
ENV_JOB_NAMESPACE: Final = "TRAINGUARD_JOB_NAMESPACE"
# durable checkpoint location of the job (a per-job directory on the shared file system)
ENV_CHECKPOINT_DIR: Final = "TRAINGUARD_CHECKPOINT_DIR"

# --- job conditions (DESIGN §2) ---------------------------------------------------------------
COND_CREATED: Final = "Created"
COND_PODS_RUNNING: Final = "PodsRunning"
COND_RUNNING: Final = "Running"
COND_FAULTED: Final = "Faulted"
COND_COMPLETED: Final = "Completed"
COND_FAILED: Final = "Failed"

# --- event reasons ----------------------------------------------------------------------------
REASON_NODE_FAULT: Final = "NodeFault"
REASON_WORKER_CRASH: Final = "WorkerCrash"
REASON_POD_LOST: Final = "PodLost"
REASON_RUNNING: Final = "Running"
REASON_LOG_HANGING_PREFIX: Final = "LogStateHanging_"
REASON_LOG_SLOW_PREFIX: Final = "LogStateSlow_"
REASON_LOG_FAULT_PREFIX: Final = "LogStateFault_"
AGENT_REASON_LOG_HANG_PREFIX: Final = "LogHang_"
AGENT_REASON_LOG_SLOW_PREFIX: Final = "LogSlow_"
AGENT_REASON_LOG_FAULT_PREFIX: Final = "LogFault_"

# --- restart types (status.latestFaultyPodInstanceList.restartType) ---------------------------
RESTART_PLR: Final = "PLR"
RESTART_JLR: Final = "JLR"

# --- elastic agent (trainguard agent / hyperpodrun) -------------------------------------------
AGENT_REASON_PRE_TRAIN_FAILED: Final = "PreTrainScriptFailed"
AGENT_REASON_POST_TRAIN_FAILED: Final = "PostTrainScriptFailed"
AGENT_REASON_COMPLETED: Final = "Completed"
AGENT_REASON_STOPPED: Final = "Stopped"
ENV_AGENT_EXTENSIONS: Final = "TRAINGUARD_AGENT_EXTENSIONS"
AGENT_EXTENSIONS_ENTRY_POINT: Final = "trainguard.agent_extensions"
ENV_SPARE_REFILL_DELAY: Final = "TRAINGUARD_SPARE_REFILL_DELAY"
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
