"""Containers whose command, args or env ``execve`` would refuse are refused at validation.

Each case first shows the original failure for real — the same strings handed to
``subprocess.run`` make it raise, as they made the controller's ``create_pod`` raise — and then
that `load_jobs` refuses the manifest with the field path of the bad value.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

from trainguard.errors import SpecError
from trainguard.spec import load_jobs, parse_job
from trainguard.spec.limits import MAX_ARG_STRLEN
from trainguard.spec.yamlio import dump

CONTAINER = "spec.replicaSpecs[0].template.spec.containers[0]"
BASE: dict[str, Any] = {
    "apiVersion": "sagemaker.amazonaws.com/v1",
    "kind": "HyperPodPyTorchJob",
    "metadata": {"name": "envs"},
    "spec": {
        "replicaSpecs": [
            {
                "name": "pods",
                "template": {"spec": {"containers": [{"name": "pytorch", "command": ["x"]}]}},
            }
        ]
    },
}
BIG = "v" * (200 * 1024)
# 24 values of 100 KB: each fits one execve string, together they pass the 2 MiB ARG_MAX
MANY = [{"name": f"V{i}", "value": "v" * (100 * 1024)} for i in range(24)]


def manifest(**container: Any) -> str:
    document = copy.deepcopy(BASE)
    document["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0].update(container)
    return dump(document)


def spawn(env: dict[str, str], args: list[str]) -> None:
    """Start a real process with these strings, as the local backend does."""
    subprocess.run([sys.executable, "-c", "pass", *args], env=env, check=True, timeout=60)


CASES = [
    ("NUL in env value", {"env": [{"name": "A", "value": "x\x00y"}]}, "env[0].value", "NUL"),
    ("= in env name", {"env": [{"name": "A=B", "value": "x"}]}, "env[0].name", "'='"),
    ("NUL in env name", {"env": [{"name": "A\x00", "value": "x"}]}, "env[0].name", "'\\x00'"),
    ("200 KB env value", {"env": [{"name": "A", "value": BIG}]}, "env[0].value", "at most"),
    ("NUL in args", {"args": ["--x=\x00"]}, "args[0]", "NUL"),
    ("NUL in command", {"command": ["py\x00thon"]}, "command[0]", "NUL"),
    ("200 KB argument", {"args": [BIG]}, "args[0]", "at most"),
    ("2.4 MB of env in all", {"env": MANY}, "", "execve's argument space"),
]
# as text, 2.4 MB is refused by the manifest size limit first; as a decoded document (an API
# caller of parse_job) it reaches the container check
DOCUMENT_ONLY = {"2.4 MB of env in all"}


def _raw(container: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    env = {var["name"]: var["value"] for var in container.get("env", [])}
    return env, [*container.get("command", []), *container.get("args", [])]


@pytest.mark.parametrize(("case", "container", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_values_execve_refuses_are_refused_with_their_path(
    case: str, container: dict[str, Any], field: str, words: str
) -> None:
    env, args = _raw(container)
    with pytest.raises((ValueError, OSError)):
        spawn(env, args)
    with pytest.raises(SpecError) as caught:
        if case in DOCUMENT_ONLY:
            parse_job(yaml.safe_load(manifest(**container)), source="job.yaml")
        else:
            load_jobs(manifest(**container), source="job.yaml")
    paths = {issue.path: issue.message for issue in caught.value.issues}
    expected = f"{CONTAINER}.{field}" if field else CONTAINER
    assert expected in paths, paths
    assert words in paths[expected]


def test_kubernetes_relaxed_env_names_and_large_values_below_the_limit_pass() -> None:
    near = "v" * (MAX_ARG_STRLEN - len("NAME=") - 1)
    env = [
        {"name": "my.var-1 with space", "value": "ok"},
        {"name": "NAME", "value": near},
        {"name": "UNI", "value": "grüße"},
    ]
    spawn({var["name"]: var["value"] for var in env}, [])
    (loaded,) = load_jobs(manifest(env=env), source="job.yaml")
    names = [
        var.name for var in loaded.job.spec.replica_specs[0].template.spec.containers[0].env or []
    ]
    assert names == ["my.var-1 with space", "NAME", "UNI"]


def test_one_byte_over_max_arg_strlen_is_refused() -> None:
    over = "v" * (MAX_ARG_STRLEN - len("NAME="))
    with pytest.raises(OSError):
        spawn({"NAME": over}, [])
    with pytest.raises(SpecError) as caught:
        load_jobs(manifest(env=[{"name": "NAME", "value": over}]), source="job.yaml")
    assert caught.value.issues[0].path == f"{CONTAINER}.env[0]"
    assert str(MAX_ARG_STRLEN - 1) in caught.value.issues[0].message


def test_lone_surrogate_is_not_utf8() -> None:
    text = manifest(args=["ok"]).replace("- ok", '- "\\ud800"')
    with pytest.raises(SpecError) as caught:
        load_jobs(text, source="job.yaml")
    assert caught.value.issues[0].path == f"{CONTAINER}.args[0]"
    assert "UTF-8" in caught.value.issues[0].message


def test_a_container_just_under_the_total_limit_starts_with_the_inherited_environment() -> None:
    env = [{"name": f"V{i}", "value": "v" * (100 * 1000)} for i in range(10)]
    (loaded,) = [parse_job(yaml.safe_load(manifest(env=env)), source="job.yaml")]
    assert len(loaded.job.spec.replica_specs[0].template.spec.containers[0].env or []) == 10
    spawn({**os.environ, **{var["name"]: var["value"] for var in env}}, [])
