"""`early_zygote`: the zygote started before the agent parses its command line is used only
when the parsed configuration agrees, and is killed otherwise."""

from __future__ import annotations

import os
import signal

import pytest

from trainguard import constants as c
from trainguard.agent.config import parse_config
from trainguard.agent.early_zygote import adopt, start_early, zygote_env

ENV = {c.ENV_AGENT_TOKEN: "secret", "PATH": os.environ.get("PATH", "")}


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--cold-start", "train.py"], ENV),
        (["--hot_spares", "train.py"], ENV),
        (["--help"], ENV),
        (["--nproc-per-node=gpu", "train.py"], ENV),
        (["train.py"], {**ENV, c.ENV_COLD_START: "1"}),
    ],
)
def test_no_early_zygote_when_none_will_be_used(argv: list[str], env: dict[str, str]) -> None:
    assert start_early(argv, env) is None


def test_the_zygote_environment_drops_the_api_token() -> None:
    env = zygote_env(nproc=2, env=ENV)

    assert c.ENV_AGENT_TOKEN not in env
    assert env[c.ENV_OMP_NUM_THREADS] == "1"


def test_a_fitting_early_zygote_is_adopted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(c.ENV_AGENT_TOKEN, raising=False)
    monkeypatch.setenv(c.ENV_COLD_START, "0")  # the default path (tests/conftest.py)
    argv = ["--nproc-per-node=2", "--insecure-no-auth", "train.py"]
    early = start_early(argv, os.environ)
    assert early is not None
    try:
        assert adopt(early, parse_config(argv, os.environ)) is early
    finally:
        early.close()


def test_an_early_zygote_the_configuration_refuses_is_killed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(c.ENV_AGENT_TOKEN, raising=False)
    monkeypatch.setenv(c.ENV_COLD_START, "0")  # the default path (tests/conftest.py)
    early = start_early(["--nproc-per-node=2", "train.py"], os.environ)
    assert early is not None
    zygote = early.current()
    assert zygote is not None

    config = parse_config(["--cold-start", "--insecure-no-auth", "train.py"], os.environ)

    assert adopt(early, config) is None
    assert zygote.exit_code == -signal.SIGKILL
