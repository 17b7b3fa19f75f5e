"""The Node status a fake kubelet posts: capacity, conditions, addresses, node info — pure.

Each fake node presents itself as the instance HyperPod's samples use (ml.p5.48xlarge: 192
vCPU, 2 TiB, 8 GPUs, 32 EFA interfaces), so manifests that request GPUs and EFA schedule as on
HyperPod. The pressure conditions are always False: nothing is measured on a fake node.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any

from trainguard.constants import HEALTH_SCHEDULABLE, LABEL_NODE_HEALTH

JSON = dict[str, Any]
KUBELET_VERSION = "v1.37.1-trainguard-fake"
DEFAULT_CAPACITY: Mapping[str, str] = {
    "cpu": "192",
    "memory": "2Ti",
    "ephemeral-storage": "1Ti",
    "nvidia.com/gpu": "8",
    "vpc.amazonaws.com/efa": "32",
    "pods": "110",
}
DEFAULT_LABELS: Mapping[str, str] = {
    "kubernetes.io/os": "linux",
    "node.kubernetes.io/instance-type": "ml.p5.48xlarge",
    LABEL_NODE_HEALTH: HEALTH_SCHEDULABLE,
}


def node_status(
    previous: JSON, *, capacity: Mapping[str, str], host_ip: str, name: str, now: str
) -> JSON:
    """The whole ``status`` with ``Ready=True`` and a fresh heartbeat."""
    old = {c.get("type"): c for c in previous.get("conditions") or []}
    was_ready = old.get("Ready", {}).get("status") == "True"
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
        "lastHeartbeatTime": now,
        "lastTransitionTime": old["Ready"].get("lastTransitionTime") if was_ready else now,
    }
    return {
        **previous,
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [*_pressure_conditions(old, now), ready],
        "addresses": [
            {"type": "InternalIP", "address": host_ip},
            {"type": "Hostname", "address": name},
        ],
        "nodeInfo": _node_info(),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
    }


PRESSURES = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def _pressure_conditions(old: Mapping[str, JSON], now: str) -> list[JSON]:
    """The kubelet's other node conditions, always False here (no resources are measured)."""
    conditions = []
    for kind, reason, message in PRESSURES:
        was_false = old.get(kind, {}).get("status") == "False"
        conditions.append(
            {
                "type": kind,
                "status": "False",
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": old[kind].get("lastTransitionTime") if was_false else now,
            }
        )
    return conditions


def _node_info() -> JSON:
    return {
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",  # deprecated, yet a real kubelet sends it (no omitempty)
        "operatingSystem": "linux",
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "amd64"),
        "osImage": f"trainguard fake node on {platform.system()} {platform.release()}",
        "kernelVersion": platform.release(),
        "containerRuntimeVersion": "process://trainguard",
        "machineID": "",
        "systemUUID": "",
        "bootID": str(os.getpid()),
    }
