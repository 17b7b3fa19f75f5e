"""The local cluster: simulated nodes with HyperPod's labels, and their reboot lifecycle.

A node is a record in the store plus a node-local shared-memory directory
(``/dev/shm/trainguard-<cluster id>/<node>``) where memory-tier checkpoints of the pods on that
node live. A node labelled ``UnschedulablePendingReboot`` / ``...Replacement`` gets no new pods;
with ``nodeRecovery: Automatic`` it is "rebooted" after a delay: its memory is wiped (as a real
reboot would) and it becomes ``Schedulable`` again. With ``nodeRecovery: None`` it waits for a
person to relabel it, as on HyperPod.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from trainguard import constants as c
from trainguard.errors import UsageError
from trainguard.names import check_path_name, safe_join
from trainguard.permissions import create_private_file, private_dir
from trainguard.store.base import Store
from trainguard.store.records import EventRecord, NodeRecord

UNHEALTHY = (c.HEALTH_PENDING_REBOOT, c.HEALTH_PENDING_REPLACEMENT)
CONFIG_FILE = "cluster.json"
MAX_NODES = 128
"""Simulated nodes one local cluster may have: every pod is an agent process on this machine,
so the node count bounds how many a job can start here."""


class LocalClusterConfig(BaseModel):
    """Settings of the local cluster (``$TRAINGUARD_HOME/cluster.json``)."""

    name: str = Field(default="local", description="Cluster name (label cluster-name).")
    instance_type: str = Field(default="ml.local.cpu", description="Instance type label of nodes.")
    node_recovery: Literal["Automatic", "None"] = Field(
        default="Automatic", description="Reboot unhealthy nodes automatically, or leave them."
    )
    reboot_seconds: float = Field(default=5.0, ge=0, description="How long a reboot takes.")
    shm_root: str = Field(default="/dev/shm", description="Where node-local memory lives.")


def load_config(home: Path) -> LocalClusterConfig:
    """The cluster config under ``home`` (defaults when the file is absent)."""
    path = home / CONFIG_FILE
    if not path.exists():
        return LocalClusterConfig()
    return LocalClusterConfig.model_validate_json(path.read_text())


def save_config(home: Path, config: LocalClusterConfig) -> None:
    """Write the cluster config."""
    private_dir(home)
    path = create_private_file(home / CONFIG_FILE)
    path.write_text(config.model_dump_json(indent=2))


class LocalCluster:
    """Nodes of the local cluster, kept in the store.

    Args:
        store: the cluster's store.
        home: the cluster's state directory (its hash names the shared-memory root).
        config: cluster settings.
    """

    def __init__(self, store: Store, home: Path, config: LocalClusterConfig) -> None:
        self.store, self.home, self.config = store, home, config
        digest = hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:8]
        self.shm_root = Path(config.shm_root) / f"trainguard-{digest}"

    def ensure_nodes(self, count: int, *, now: float) -> list[NodeRecord]:
        """Create nodes ``node-0 .. node-<count-1>`` that do not exist yet; return all nodes.

        Raises:
            UsageError: ``count`` is above `MAX_NODES`.
        """
        if count > MAX_NODES:
            raise UsageError(f"--nodes {count}: a local cluster has at most {MAX_NODES} nodes")
        existing = {n.name for n in self.store.list_nodes()}
        for index in range(count):
            name = f"node-{index}"
            if name not in existing:
                self.store.save_node(NodeRecord(name, self.node_labels(name), {}, now))
        return self.store.list_nodes()

    def node_labels(self, name: str) -> dict[str, str]:
        """The labels a freshly booted node carries."""
        return {
            c.LABEL_HOSTNAME: name,
            c.LABEL_INSTANCE_TYPE: self.config.instance_type,
            c.LABEL_COMPUTE_TYPE: self.config.instance_type,
            c.LABEL_CLUSTER_NAME: self.config.name,
            c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE,
        }

    def node_memory(self, node: str) -> Path:
        """The node-local shared-memory directory of ``node``."""
        return safe_join(self.shm_root, node, what="node")

    def job_memory(self, node: str, namespace: str, job: str, uid: str) -> Path:
        """Where a job's memory-tier checkpoints live on ``node``."""
        _check_job(namespace, job)
        return safe_join(self.node_memory(node), f"{namespace}.{job}.{uid[:8]}", what="job")

    def job_checkpoints(self, namespace: str, job: str, uid: str) -> Path:
        """The job's durable checkpoint directory (the cluster's "shared file system")."""
        _check_job(namespace, job)
        return safe_join(self.home / "checkpoints", namespace, f"{job}-{uid[:8]}", what="job")

    def release_job(self, namespace: str, job: str, uid: str) -> None:
        """Delete the job's memory on every node, then node directories left empty.

        An empty ``node-N`` directory (and the cluster's root) is removed too, or every run
        would leave them behind in /dev/shm; a directory that still holds another job's
        memory stays (``rmdir`` only removes empty directories).
        """
        for node in self.store.list_nodes():
            shutil.rmtree(self.job_memory(node.name, namespace, job, uid), ignore_errors=True)
            _remove_if_empty(self.node_memory(node.name))
        _remove_if_empty(self.shm_root)

    def due_reboots(self, *, now: float) -> list[NodeRecord]:
        """Unhealthy nodes whose reboot is due; tracks since when each node is unhealthy."""
        due = []
        for node in self.store.list_nodes():
            health = node.labels.get(c.LABEL_NODE_HEALTH)
            since = node.info.get("unhealthy_since")
            if health not in UNHEALTHY:
                if since is not None:
                    self.store.patch_node(node.name, info={"unhealthy_since": None})
            elif since is None:
                self.store.patch_node(node.name, info={"unhealthy_since": now})
            elif (
                self.config.node_recovery == "Automatic"
                and now - since >= self.config.reboot_seconds
            ):
                due.append(node)
        return due

    def reboot(self, node: NodeRecord, *, now: float) -> None:
        """Wipe the node's memory and make it Schedulable again (its pods are gone already)."""
        health = node.labels.get(c.LABEL_NODE_HEALTH, "")
        shutil.rmtree(self.node_memory(node.name), ignore_errors=True)
        reason = "NodeReplaced" if health == c.HEALTH_PENDING_REPLACEMENT else "NodeRebooted"
        labels: dict[str, str | None] = {c.LABEL_NODE_HEALTH: c.HEALTH_SCHEDULABLE}
        labels |= {c.LABEL_FAULT_TYPES: None, c.LABEL_FAULT_REASONS: None}
        self.store.patch_node(node.name, labels=labels, info={"unhealthy_since": None})
        message = f"Node {node.name} was {health}; it is Schedulable again"
        self.store.add_events([EventRecord("Node", "", node.name, "Normal", reason, message, now)])

    def teardown(self) -> None:
        """Remove every node's memory (``cluster down``)."""
        shutil.rmtree(self.shm_root, ignore_errors=True)


def _check_job(namespace: str, job: str) -> None:
    check_path_name(namespace, what="namespace")
    check_path_name(job, what="job")


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        directory.rmdir()
