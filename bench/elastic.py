"""Elastic jobs: node loss -> training again, shrinking (elastic) vs waiting for a replacement.

Both arms run the quickstart training script (DDP, gloo, one worker per node; memory
checkpoints every 5 steps, durable every 10) as a 3-node job on a private 3-node local cluster,
so no spare and no free node exists. Once rank 0 has logged step 15, the bench marks one node
``UnschedulablePendingReplacement`` in the store (as HyperPod's health agent labels a node it
gives up on) and measures the time from that write to the controller's ``TrainingResumed``
event (every rank completed its first step after the restart):

- ``elastic``: the job has ``elasticPolicy`` (min 1, max 3): it shrinks to 2 nodes and resumes
  from the newest durable checkpoint, resharded by DCP to the new world size.
- ``static`` (the baseline): the same job without ``elasticPolicy`` waits for the node. What
  "replacement" means here: the local cluster's simulated replacement (``cluster up
  --reboot-seconds``) — the node becomes ``Schedulable`` again, its memory wiped, after
  ``--replacement-seconds`` (default 60 s, 20 s with ``--quick``). That delay is a parameter
  of this bench, not a measurement of cloud behaviour: a real HyperPod node replacement takes
  minutes, so the real gap is larger than this one.

Arms alternate in each round (``--rounds``, seeded order). Results:
``bench/results/elastic.json``. Run: ``python -m bench elastic [--quick] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import QUICK_ENV, Row, write_results
from trainguard import constants as c
from trainguard.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart"
TRAINGUARD = Path(sys.executable).parent / "trainguard"
JOB = "elastic-bench"
NODES = 3
VICTIM = "node-2"
FAULT_AT_STEP = 15
RANK0_STEP = re.compile(r"\[rank 0\] Step: (\d+) ")


def manifest(work: Path, *, elastic: bool) -> Path:
    """The quickstart job as 3 nodes x 1 worker, elastic (min 1, max 3) or not."""
    shutil.copy(QUICKSTART / "train.py", work / "train.py")
    document: dict[str, Any] = yaml.safe_load((QUICKSTART / "job.yaml").read_text())
    document["metadata"]["name"] = JOB
    spec = document["spec"]
    spec["nprocPerNode"] = "1"
    group = spec["replicaSpecs"][0]
    group["replicas"] = NODES
    container = group["template"]["spec"]["containers"][0]
    container["command"] = [
        "hyperpodrun",
        "--nproc-per-node=1",
        f"--nnodes={NODES}",
        "train.py",
        "--steps=100000",
        "--step-time=0.1",
        "--memory-every=5",
        "--durable-every=10",
    ]
    if elastic:
        spec["elasticPolicy"] = {"minReplicas": 1, "maxReplicas": NODES}
    path = work / "job.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


class LocalCluster:
    """A private local cluster (``TRAINGUARD_HOME`` under ``work``) driven by the CLI."""

    def __init__(self, work: Path, *, replacement_s: float) -> None:
        self.work, self.home = work, work / "home"
        self.env = {**os.environ, "TRAINGUARD_HOME": str(self.home), "OMP_NUM_THREADS": "1"}
        self.cli("cluster", "up", "--nodes", str(NODES), "--reboot-seconds", str(replacement_s))

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(TRAINGUARD), *args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"trainguard {' '.join(args)}: {done.stderr[-2000:]}")
        return done.stdout

    def rank0_step(self) -> int:
        steps = [0]
        for path in (self.home / "pods").rglob("*"):
            if path.is_file() and JOB in path.parts:
                steps += [int(m[1]) for m in RANK0_STEP.finditer(path.read_text(errors="replace"))]
        return max(steps)

    def resumed_since(self, since: float) -> float | None:
        """When the first TrainingResumed event after ``since`` was recorded, if any."""
        store = SqliteStore(self.home / "state.db")
        try:
            events = store.list_events(kind="Job", namespace="default", name=JOB)
            found = [e.time for e in events if e.reason == c.REASON_TRAINING_RESUMED]
        finally:
            store.close()
        return next((t for t in found if t >= since), None)

    def lose_node(self) -> float:
        """Label the victim node for replacement (as the health agent does); when it was."""
        store = SqliteStore(self.home / "state.db")
        try:
            began = time.time()
            store.patch_node(VICTIM, labels={c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REPLACEMENT})
        finally:
            store.close()
        return began

    def down(self) -> None:
        subprocess.run(
            [str(TRAINGUARD), "cluster", "down"],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )


def wait_for(what: str, probe: Any, *, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def trial(work: Path, *, elastic: bool, replacement_s: float) -> float:
    """One arm once: seconds from the node loss to training resumed."""
    work.mkdir(parents=True)
    cluster = LocalCluster(work, replacement_s=replacement_s)
    try:
        cluster.cli("job", "create", "-f", str(manifest(work, elastic=elastic)))
        wait_for("training", lambda: cluster.rank0_step() >= FAULT_AT_STEP, timeout=180)
        lost_at = cluster.lose_node()
        resumed = wait_for(
            "training resumed", lambda: cluster.resumed_since(lost_at), timeout=replacement_s + 180
        )
        return float(resumed - lost_at)
    finally:
        cluster.down()


def main(argv: list[str]) -> int:
    quick = bool(os.environ.get(QUICK_ENV)) or "--quick" in argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=1 if quick else 3)
    parser.add_argument("--replacement-seconds", type=float, default=20.0 if quick else 60.0)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args(argv)
    samples: dict[str, list[float]] = {"elastic": [], "static": []}
    order = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-elastic-") as tmp:
        for round_ in range(args.rounds):
            arms = ["elastic", "static"]
            order.shuffle(arms)
            for arm in arms:
                took = trial(
                    Path(tmp) / f"{arm}-{round_}",
                    elastic=arm == "elastic",
                    replacement_s=args.replacement_seconds,
                )
                samples[arm].append(took)
                print(f"  round {round_ + 1} {arm}: node loss -> training {took:.2f} s", flush=True)
    replacement = f"replacement after {args.replacement_seconds:g} s"
    rows = [
        Row.of(
            f"node loss -> training (elastic vs {replacement})",
            samples["elastic"],
            samples["static"],
            "s",
        )
    ]
    write_results("elastic", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
