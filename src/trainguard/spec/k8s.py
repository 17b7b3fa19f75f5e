"""The parts of Kubernetes' PodTemplateSpec that a training job's manifest uses.

The fields trainguard acts on (containers, command, args, env, resources, volumes,
nodeSelector, tolerations, affinity) are modelled and checked; every other PodSpec and
Container field of Kubernetes 1.33 is declared as a known field of any shape, so real
manifests (with probes, security contexts, topology spread...) validate without warnings, and
only keys Kubernetes itself would not know are reported as unknown.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from trainguard.spec.base import DNS_LABEL_RE, Labels, ManifestModel, Quantity
from trainguard.spec.limits import MAX_ARG_STRLEN, check_env_name, check_exec_string

ExecString = Annotated[str, AfterValidator(check_exec_string)]
"""A string that reaches ``execve`` (argument, env value): no NUL, valid UTF-8, not too long."""


class ObjectMeta(ManifestModel):
    """Metadata of the job or of a pod template."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: Labels | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    owner_references: list[Any] | None = None
    managed_fields: list[Any] | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace_is_dns_label(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 63 or not DNS_LABEL_RE.match(value)):
            raise ValueError("must be a DNS label: lowercase alphanumerics and '-', at most 63")
        return value


class EnvVar(ManifestModel):
    """One environment variable; ``value`` must be a string, as the API server insists."""

    name: Annotated[str, AfterValidator(check_env_name)]
    value: ExecString | None = None
    value_from: Any = None

    @model_validator(mode="after")
    def _fits_one_exec_string(self) -> EnvVar:
        size = len(f"{self.name}={self.value or ''}".encode())
        if size + 1 > MAX_ARG_STRLEN:
            raise ValueError(
                f"{self.name}=<value> is {size} bytes; one variable may have at most "
                f"{MAX_ARG_STRLEN - 1} (Linux MAX_ARG_STRLEN)"
            )
        return self


class ResourceRequirements(ManifestModel):
    """Requests and limits, e.g. ``nvidia.com/gpu: 8`` or ``memory: 32Gi``."""

    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None
    claims: list[Any] | None = None


class ContainerPort(ManifestModel):
    """A port the container exposes (HyperPod's agent listens on 8080)."""

    container_port: int = Field(ge=1, le=65535)
    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None
    host_port: int | None = Field(default=None, ge=1, le=65535)
    host_ip: str | None = Field(default=None, alias="hostIP")


class VolumeMount(ManifestModel):
    """Where a volume appears inside the container."""

    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: str | None = None
    recursive_read_only: str | None = None


class Container(ManifestModel):
    """A container of the pod; ``command`` + ``args`` are what the local backend runs."""

    name: str = Field(min_length=1)
    image: str | None = None
    command: list[ExecString] | None = None
    args: list[ExecString] | None = None
    env: list[EnvVar] | None = None
    resources: ResourceRequirements | None = None
    ports: list[ContainerPort] | None = None
    volume_mounts: list[VolumeMount] | None = None
    working_dir: ExecString | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    env_from: list[Any] | None = None
    lifecycle: Any = None
    liveness_probe: Any = None
    readiness_probe: Any = None
    startup_probe: Any = None
    resize_policy: list[Any] | None = None
    restart_policy: str | None = None
    security_context: Any = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    tty: bool | None = None
    volume_devices: list[Any] | None = None

    @field_validator("name")
    @classmethod
    def _name_is_dns_label(cls, value: str) -> str:
        if len(value) > 63 or not DNS_LABEL_RE.match(value):
            raise ValueError("must be a DNS label: lowercase alphanumerics and '-', at most 63")
        return value


class HostPathVolumeSource(ManifestModel):
    """A directory of the node mounted into the pod."""

    path: str
    type: str | None = None


class EmptyDirVolumeSource(ManifestModel):
    """Scratch space for the pod's lifetime; ``medium: Memory`` for /dev/shm."""

    medium: str | None = None
    size_limit: Quantity | None = None


class PersistentVolumeClaimVolumeSource(ManifestModel):
    """A claim on a persistent volume (FSx, EFS, ...)."""

    claim_name: str
    read_only: bool | None = None


class Volume(ManifestModel):
    """A volume of the pod: name + one source."""

    name: str = Field(min_length=1)
    host_path: HostPathVolumeSource | None = None
    empty_dir: EmptyDirVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    config_map: Any = None
    secret: Any = None
    csi: Any = None
    downward_api: Any = Field(default=None, alias="downwardAPI")
    ephemeral: Any = None
    projected: Any = None
    nfs: Any = None
    image: Any = None
    aws_elastic_block_store: Any = None
    azure_disk: Any = None
    azure_file: Any = None
    cephfs: Any = None
    cinder: Any = None
    fc: Any = None
    flex_volume: Any = None
    flocker: Any = None
    gce_persistent_disk: Any = None
    git_repo: Any = None
    glusterfs: Any = None
    iscsi: Any = None
    photon_persistent_disk: Any = None
    portworx_volume: Any = None
    quobyte: Any = None
    rbd: Any = None
    scale_io: Any = Field(default=None, alias="scaleIO")
    storageos: Any = None
    vsphere_volume: Any = None


class Toleration(ManifestModel):
    """Lets the pod land on a node with a matching taint."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class PodSpec(ManifestModel):
    """Kubernetes PodSpec: modelled where trainguard acts on it, known-but-opaque elsewhere."""

    containers: list[Container] = Field(min_length=1)
    init_containers: list[Container] | None = None
    node_selector: Labels | None = None
    tolerations: list[Toleration] | None = None
    affinity: Any = None
    volumes: list[Volume] | None = None
    host_network: bool | None = None
    scheduler_name: str | None = None
    priority_class_name: str | None = None
    service_account_name: str | None = None
    termination_grace_period_seconds: int | None = Field(default=None, ge=0)
    topology_spread_constraints: list[Any] | None = None
    active_deadline_seconds: int | None = None
    automount_service_account_token: bool | None = None
    dns_config: Any = None
    dns_policy: str | None = None
    enable_service_links: bool | None = None
    ephemeral_containers: list[Any] | None = None
    host_aliases: list[Any] | None = None
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_users: bool | None = None
    hostname: str | None = None
    hostname_override: str | None = None
    image_pull_secrets: list[Any] | None = None
    node_name: str | None = None
    os: Any = None
    overhead: dict[str, Quantity] | None = None
    preemption_policy: str | None = None
    priority: int | None = None
    readiness_gates: list[Any] | None = None
    resource_claims: list[Any] | None = None
    resources: ResourceRequirements | None = None
    restart_policy: str | None = None
    runtime_class_name: str | None = None
    scheduling_gates: list[Any] | None = None
    security_context: Any = None
    service_account: str | None = None
    set_hostname_as_fqdn: bool | None = Field(default=None, alias="setHostnameAsFQDN")
    share_process_namespace: bool | None = None
    subdomain: str | None = None


class PodTemplateSpec(ManifestModel):
    """The template every pod of a replica group is made from."""

    metadata: ObjectMeta | None = None
    spec: PodSpec
