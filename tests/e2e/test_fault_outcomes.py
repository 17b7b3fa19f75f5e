"""A requested fault is a test that either ran or is reported as not run, never silently skipped.

Through the real ``trainguard`` command: a fault due after the job ended makes ``run`` exit 3
with the reason, ``fault inject`` refuses a finished or unknown job with exit 2, and
``at-step=N`` kills a worker once the job reached step N, so the restart resumes from memory at
step N or later, and a worker that already finished is refused with that reason.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.localcluster import TRAINGUARD, Cluster, wait_for

pytestmark = pytest.mark.slow


def test_fault_due_after_the_end_fails_run_and_a_finished_job_refuses_faults(
    cluster: Cluster,
) -> None:
    manifest = cluster.manifest(steps=20, args=("--step-time=0.05",))
    done = cluster.cli("run", str(manifest), "--fault", "kill-worker:rank=1,after=600")
    assert done.returncode == 3, done.stderr[-3000:]
    assert re.search(
        r"error: fault kill-worker:rank=1,after=600: not injected: the job ended \(Completed\)"
        r"( at step \d+)? before the fault was due",
        done.stderr,
    ), done.stderr[-3000:]
    assert "Completed" in done.stdout

    finished = cluster.cli("fault", "inject", "quickstart", "kill-worker:rank=1")
    assert finished.returncode == 2
    assert "job quickstart has ended (Completed): no fault can be injected" in finished.stderr
    assert "queued" not in finished.stdout
    unknown = cluster.cli("fault", "inject", "nosuchjob", "kill-worker")
    assert unknown.returncode == 2
    assert "job nosuchjob not found in namespace default" in unknown.stderr

    listed = json.loads(cluster.cli("fault", "list", "quickstart", "-o", "json").stdout)
    assert [(f["spec"], f["outcome"]) for f in listed] == [
        ("kill-worker:rank=1,after=600", "not injected")
    ]


def test_at_step_kills_the_worker_at_that_step_and_the_job_resumes_from_memory(
    cluster: Cluster,
) -> None:
    run = cluster.run(cluster.manifest(), "kill-worker:rank=1,at-step=50")
    assert run.code == 0, run.stderr[-3000:]
    assert run.final_condition() == "Completed"
    injected = run.messages("FaultInjected")
    assert len(injected) == 1, run.reasons()
    landed = re.search(r"at step (\d+): sent SIGKILL to worker rank 1", injected[0])
    assert landed and int(landed[1]) >= 50, injected
    resumes = [r for r in run.status["resumes"] if r["restart"] > 0]
    assert resumes and resumes[0]["tier"] == "memory", run.status["resumes"]
    assert resumes[0]["step"] >= 50, resumes
    assert re.search(r"fault kill-worker:rank=1,after=0,at-step=50: injected at ", run.stderr)


EARLY = """\
import os, pathlib, time
rank = int(os.environ["RANK"])
for step in range(1, 4):
    print(f"Step: {step} Loss: 1.0", flush=True)
    time.sleep(0.5)
if rank == 1:
    pathlib.Path("rank1.done").touch()
else:
    time.sleep(120)  # rank 0 trains on; the job stays Running
"""
EARLY_JOB = """\
apiVersion: sagemaker.amazonaws.com/v1
kind: HyperPodPyTorchJob
metadata: {name: early}
spec:
  nprocPerNode: "1"
  replicaSpecs:
    - name: pods
      replicas: 2
      template:
        spec:
          containers:
            - name: pytorch
              command: ["hyperpodrun", "--nproc-per-node=1", "--nnodes=2", "early.py"]
  runPolicy:
    jobMaxRetryCount: 1
    logMonitoringConfiguration:
      - {name: JobStart, logPattern: ".*Loss:.*", expectedStartCutOffInSeconds: 120}
"""


def test_kill_worker_of_a_pod_that_finished_names_that_not_a_foreign_process(
    cluster: Cluster,
) -> None:
    """``fault inject`` from a second CLI while ``run`` runs: rank 1 finished, rank 0 trains.
    Before, the controller signalled the finished worker's stale pid and reported "process N
    does not belong to pod early-pods-1"."""
    (cluster.work / "early.py").write_text(EARLY)
    (cluster.work / "job.yaml").write_text(EARLY_JOB)
    run = subprocess.Popen(
        [*TRAINGUARD, "run", "job.yaml"],
        env=cluster.env,
        cwd=cluster.work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for((cluster.work / "rank1.done").exists, 240)
        injected = cluster.cli("fault", "inject", "early", "kill-worker:rank=1", "--timeout", "60")
    finally:
        cluster.cli("job", "delete", "early")
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
    assert injected.returncode == 3, injected.stderr
    assert "does not belong" not in injected.stderr
    assert re.search(r"has already finished|is not running", injected.stderr), injected.stderr
