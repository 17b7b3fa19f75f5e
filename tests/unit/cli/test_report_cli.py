"""``trainguard job report`` through the real entry point, on a store and pod files written here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.localcluster import wait_for
from trainguard.cli.local import open_cluster
from trainguard.cli.report import write_run_report
from trainguard.cli.report_render import PENDING
from trainguard.controller.state import JobPhase, JobState
from trainguard.controller.submit import submit
from trainguard.policy.goodput import Segment, StepMark
from trainguard.spec import HyperPodPyTorchJob
from trainguard.store import SqliteStore

REPO = Path(__file__).resolve().parents[3]
TRAINGUARD = str(Path(sys.executable).parent / "trainguard")
T0 = 1_800_000_000.0


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRAINGUARD_HOME": str(home)}
    return subprocess.run(
        [TRAINGUARD, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def finished_job(home: Path) -> None:
    """A completed 2-rank job with one restart, and its pods' timelines (one with garbage)."""
    store = SqliteStore(home / "state.db")
    document = yaml.safe_load((REPO / "examples" / "quickstart" / "job.yaml").read_text())
    record = submit(store, HyperPodPyTorchJob.model_validate(document), now=T0)
    state = JobState.model_validate(record.state)
    state.phase = JobPhase.COMPLETED
    state.segments = [
        Segment(restart=0, started=T0 + 5, first=StepMark(step=1, time=T0 + 10),
                last=StepMark(step=25, time=T0 + 22), ended=T0 + 23, fault="WorkerCrash"),
        Segment(restart=1, started=T0 + 24, resumed_from=20, first=StepMark(step=21, time=T0 + 30),
                last=StepMark(step=60, time=T0 + 50), ended=T0 + 52),
    ]  # fmt: skip
    record.state, record.finished_at = state, T0 + 52
    store.save_job(record)
    for pod, rank in (("quickstart-pods-0", 0), ("quickstart-pods-1", 1)):
        lines = [{"kind": "start", "ranks": [rank], "restart": 0, "time": T0 + 5, "pod": pod}]
        for restart, steps, began in ((0, range(1, 26), 10), (1, range(21, 61), 30)):
            for offset, step in enumerate(steps):
                at = T0 + began + offset * 0.5
                lines.append(
                    {"kind": "step", "rank": rank, "step": step, "restart": restart, "time": at}
                )
        lines.append({"kind": "save", "rank": rank, "step": 30, "seconds": 1.5, "time": T0 + 35})
        lines.append({"kind": "step", "rank": rank, "step": 1, "restart": 0, "time": T0 - 500})
        directory = home / "pods" / "default" / "quickstart" / pod
        directory.mkdir(parents=True)
        text = "".join(json.dumps(x) + "\n" for x in lines)
        if rank == 1:
            text += "not json\n" + "{" * 200_000 + "\n[1, 2]\n"
        (directory / "timeline.jsonl").write_text(text)
    store.close()


def test_report_json_png_and_html(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    finished_job(home)
    png, page = tmp_path / "job.png", tmp_path / "job.html"
    done = cli(
        home, "job", "report", "quickstart", "-o", "json", "--png", str(png), "--html", str(page)
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["phase"] == "Completed" and report["wallSeconds"] == 52
    assert report["redoneSteps"] == 5  # 21..25 ran twice
    seconds = report["accounting"]
    assert sum(seconds.values()) == pytest.approx(52, abs=0.01)
    assert seconds["checkpoint_stall"] == 1.5 and seconds["restart"] == 1.0
    assert 0 < report["goodput"] < 1
    assert sorted(report["ranks"]) == ["0", "1"]
    assert report["ranks"]["1"]["lastStep"] == 60  # the garbage lines were skipped
    assert report["ranks"]["0"]["firstStep"] == 1  # the stale record of an older run is not
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "data:image/png;base64," in page.read_text()
    text = cli(home, "job", "report", "quickstart")
    assert text.returncode == 0 and "Goodput:" in text.stdout and "redone" in text.stdout


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    finished_job(home)
    missing = cli(home, "job", "report", "quickstart", "--png", str(tmp_path / "nope" / "x.png"))
    assert missing.returncode == 2 and "--png" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = cli(home, "job", "report", "no-such-job")
    assert unknown.returncode == 1 and "no-such-job" in unknown.stderr
    yaml_out = cli(home, "job", "report", "quickstart", "-o", "yaml")
    assert yaml_out.returncode == 2


def test_run_report_is_drawn_after_a_cluster_down(tmp_path: Path) -> None:
    """``run``'s report is gathered at the job's end and drawn by a background process, so the
    job's record may be gone (``cluster down`` right after ``run``) before the picture is."""
    home = tmp_path / "home"
    home.mkdir()
    finished_job(home)
    cluster = open_cluster(home)
    record = cluster.store.get_job("default", "quickstart")
    png = write_run_report(cluster, record)
    cluster.store.remove_job("default", "quickstart")
    cluster.store.close()
    directory = home / "pods" / "default" / "quickstart"
    assert png == directory / "report.png"
    wait_for((directory / "report.html").exists, timeout=120)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "quickstart: goodput" in (directory / "report.html").read_text()
    assert not (directory / PENDING).exists()
    assert (directory / "report.log").read_text() == ""  # nothing went wrong
