"""Pods kept by ``cleanPodPolicy: None`` fill the nodes: ``run`` says so, live, and tells how
to free them instead of hanging silently in ``Created``.

Real processes throughout: a first job keeps its two agent processes after it completes, a
third node is marked unhealthy, and a second job that needs two nodes cannot be placed.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
from pathlib import Path

import psutil
import pytest
import yaml

from tests.localcluster import TRAINGUARD, Cluster, wait_for
from trainguard import constants as c

pytestmark = pytest.mark.slow

SCRIPT = 'print("Step: 1 Loss: 0.5", flush=True)\n'


def job(cluster: Cluster, name: str, *, clean: str) -> Path:
    """A two-pod job whose one worker per pod prints a line and exits."""
    (cluster.work / "hello.py").write_text(SCRIPT)
    document = yaml.safe_load(
        textwrap.dedent(f"""
        apiVersion: sagemaker.amazonaws.com/v1
        kind: HyperPodPyTorchJob
        metadata: {{name: {name}}}
        spec:
          nprocPerNode: "1"
          replicaSpecs:
            - name: pods
              replicas: 2
              template:
                spec:
                  containers:
                    - name: main
                      image: none
                      command: [hyperpodrun, --nproc-per-node=1, --nnodes=2, hello.py]
          runPolicy: {{cleanPodPolicy: "{clean}"}}
        """)
    )
    path = cluster.work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_kept_pods_are_named_at_the_end_and_blamed_when_they_block(cluster: Cluster) -> None:
    (cluster.home / "cluster.json").write_text('{"node_recovery": "None"}')
    first = cluster.cli("run", str(job(cluster, "keeper", clean="None")), "--nodes", "3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 pod(s) of job keeper left running (cleanPodPolicy None):" in first.stderr
    assert "remove them with `trainguard job delete keeper`" in first.stderr
    assert "`trainguard cluster down`" in first.stderr
    pids = [int(line.rsplit(" ", 1)[1]) for line in first.stderr.splitlines() if ", pid " in line]
    assert len(pids) == 2 and all(psutil.pid_exists(pid) for pid in pids), first.stderr

    labelled = cluster.cli("node", "label", "node-2", f"{c.LABEL_NODE_HEALTH}=Unschedulable")
    assert labelled.returncode == 0, labelled.stderr
    stderr = cluster.work / "second.stderr"
    with stderr.open("w") as sink:
        second = subprocess.Popen(
            [*TRAINGUARD, "run", str(job(cluster, "second", clean="All"))],
            env=cluster.env,
            cwd=cluster.work,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            stdin=subprocess.DEVNULL,
        )
        try:
            expected = (
                "0/3 nodes free: 2 held by pods of job keeper kept by cleanPodPolicy None, "
                "1 unhealthy (free the kept pods' nodes with `trainguard job delete keeper`)"
            )
            wait_for(lambda: expected in stderr.read_text() or second.poll() is not None, 120)
            assert second.poll() is None, stderr.read_text()
            second.send_signal(signal.SIGINT)
            assert second.wait(timeout=60) == 130
        finally:
            if second.poll() is None:
                second.kill()
    assert expected in stderr.read_text()
    assert "\x1b[" not in stderr.read_text() + first.stderr, "escape codes off a terminal"
    deleted = cluster.cli("job", "delete", "keeper")
    assert deleted.returncode == 0, deleted.stderr
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in pids), 60)
