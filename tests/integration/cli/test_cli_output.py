"""Issue 13 item 6, the defects that need no running job: formats, help, version, completion.

Every test runs the installed ``trainguard`` script as a user would. Before the fix ``-o yaml``
printed text on four commands, ``health check -o yaml`` was refused, rich ate ``[gpu]`` in a
hint, help texts showed reStructuredText, ``--version`` did not exist, completion was off and
the controller exported ``*_created`` series.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from importlib.util import find_spec
from typing import Any

import pytest
import yaml

from tests.integration.cli.cluster import TRAINGUARD, Local
from trainguard import __version__
from trainguard import constants as c
from trainguard.backends.local.mtcservers import running_servers

pytestmark = pytest.mark.slow

HELP_PATHS = [
    (),
    ("validate",),
    ("run",),
    ("crd",),
    ("controller",),
    ("health-agent",),
    ("cluster", "up"),
    ("cluster", "down"),
    ("job",),
    ("job", "create"),
    ("job", "apply"),
    ("job", "list"),
    ("job", "describe"),
    ("job", "delete"),
    ("job", "logs"),
    ("job", "pods"),
    ("fault", "inject"),
    ("node", "list"),
    ("node", "label"),
    ("health", "check"),
    ("health", "deep"),
]
RST = re.compile(r"``|:(class|func|meth|mod|attr):`|`[A-Za-z_.]+`")


def test_version_flag(local: Local) -> None:
    done = local.cli("--version")
    assert done.returncode == 0
    assert done.stdout.startswith(f"trainguard {__version__} ")


def test_shell_completion_is_available(local: Local) -> None:
    shown = local.cli("--show-completion", "bash")
    assert shown.returncode == 0, shown.stderr
    assert "_TRAINGUARD_COMPLETE" in shown.stdout
    top = local.cli("--help")
    assert "--install-completion" in top.stdout


@pytest.mark.parametrize("path", HELP_PATHS, ids=lambda p: " ".join(p) or "trainguard")
def test_help_texts_show_no_rest_markup(local: Local, path: tuple[str, ...]) -> None:
    done = local.cli(*path, "--help")
    assert done.returncode == 0, done.stderr
    assert not RST.search(done.stdout), done.stdout


def test_rich_does_not_eat_brackets_in_hints(local: Local) -> None:
    if find_spec("pynvml") is not None:
        pytest.skip("nvidia-ml-py is installed: the hint naming trainguard[gpu] is not printed")
    done = local.cli("health", "check", "--checks", "GpuCount,DiskSpace")
    assert "pip install 'trainguard[gpu]'" in done.stdout, done.stdout


def _yaml_and_json(local: Local, *command: str) -> tuple[Any, Any]:
    as_yaml = local.cli(*command, "-o", "yaml")
    as_json = local.cli(*command, "-o", "json")
    assert as_yaml.returncode == as_json.returncode, as_yaml.stderr
    parsed = yaml.safe_load(as_yaml.stdout)
    assert isinstance(parsed, dict), as_yaml.stdout
    return parsed, json.loads(as_json.stdout)


def _wait_completed(local: Local, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = local.cli("job", "describe", name, "-o", "json")
        conditions = json.loads(done.stdout)["status"].get("conditions", []) if done.stdout else []
        if conditions and conditions[-1]["type"] == "Completed":
            return
        time.sleep(0.5)
    raise AssertionError(f"job {name} did not complete within {timeout:g} s")


def test_yaml_output_is_honoured_by_every_command_that_accepts_it(local: Local) -> None:
    job = local.tiny_job()
    local.env.pop(c.ENV_MTC_SERVERS)  # the CLI's default, not the suite's
    assert local.cli("cluster", "up", "--nodes", "2").returncode == 0
    assert sorted(running_servers(local.home)) == ["node-0", "node-1"]  # MTC: on by default
    assert local.cli("job", "create", "-f", str(job)).returncode == 0
    _wait_completed(local, "tiny")  # a job that still changes could differ between the two reads
    for command in (("job", "list"), ("job", "describe", "tiny"), ("node", "list")):
        parsed, expected = _yaml_and_json(local, *command)
        assert parsed == expected
    parsed, expected = _yaml_and_json(local, "health", "check", "--checks", "DiskSpace,Zombies")
    checks = [(r["check"], r["status"], sorted(r)) for r in parsed["reports"]]
    assert checks == [(r["check"], r["status"], sorted(r)) for r in expected["reports"]]
    assert local.cli("cluster", "up", "--nodes", "2", "--no-mtc").returncode == 0
    assert running_servers(local.home) == {}


@pytest.mark.parametrize(
    "command",
    [("job", "list"), ("job", "describe", "x"), ("node", "list"), ("health", "check"),
     ("health", "deep", "--node", "node-0"), ("job", "pods", "x")],
)  # fmt: skip
def test_unsupported_output_is_refused_with_exit_2(local: Local, command: tuple[str, ...]) -> None:
    done = local.cli(*command, "-o", "xml")
    assert done.returncode == 2
    assert "--output: 'xml' is not supported here; use one of text" in done.stderr


def test_wide_and_jsonpath_on_job_list_and_describe(local: Local) -> None:
    local.cli("job", "create", "-f", str(local.tiny_job("one")))
    local.cli("job", "create", "-f", str(local.tiny_job("two", file="two.yaml")))
    names = local.cli("job", "list", "-o", "jsonpath={.items[*].metadata.name}")
    assert names.stdout.strip() == "one two"
    ranged = local.cli(
        "job", "list", "-o", 'jsonpath={range .items[*]}{.metadata.name}:{.kind}{"\\n"}{end}'
    )
    assert ranged.stdout.splitlines() == ["one:HyperPodPyTorchJob", "two:HyperPodPyTorchJob"]
    one = local.cli("job", "describe", "one", "-o", "jsonpath={.spec.replicaSpecs[0].name}")
    assert one.stdout.strip() == "pods"
    wide = local.cli("job", "list", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "NAME", "NAMESPACE", "STATUS", "PHASE", "RESTARTS", "AGE", "NODES", "MASTER", "COMPLETION"
    ]  # fmt: skip
    assert wide[1].split()[0] == "one" and wide[1].split()[-3:] == ["-", "-", "-"]
    bad = local.cli("job", "list", "-o", "jsonpath=")
    assert bad.returncode == 2 and "needs a template" in bad.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_controller_metrics_have_no_created_series(local: Local) -> None:
    port = _free_port()
    controller = subprocess.Popen(
        [TRAINGUARD, "controller", "--metrics-port", str(port)],
        env=local.env, cwd=local.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        body = ""
        deadline = time.monotonic() + 60
        while not body and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.3)
        assert "hyperpod_training_operator_jobs_created_total" in body
        samples = [ln.split("{")[0].split()[0] for ln in body.splitlines() if ln and ln[0] != "#"]
        assert samples and not [s for s in samples if s.endswith("_created")], samples
    finally:
        controller.terminate()
        controller.wait(timeout=30)


def test_run_prints_the_final_job_object_as_yaml(local: Local) -> None:
    done = local.cli("run", str(local.tiny_job()), "-o", "yaml")
    assert done.returncode == 0, done.stderr
    job = yaml.safe_load(done.stdout)
    assert job["kind"] == "HyperPodPyTorchJob"
    assert job["status"]["conditions"][-1]["type"] == "Completed"
