"""The agent's command line: torchrun's flags, hyperpodrun's, env overrides, refusals."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from trainguard.agent.config import parse_config
from trainguard.errors import UsageError

TOKEN_ENV = {"TRAINGUARD_AGENT_TOKEN": "t"}


def test_hyperpod_manifest_command_parses() -> None:
    argv = ["--tee=3", "--log_dir=/tmp/hyperpod", "--nproc_per_node=4", "--nnodes=2"]
    argv += ["/fsdp/train.py", "--lr", "0.1"]
    config = parse_config(argv, TOKEN_ENV)
    assert (config.nproc, config.nnodes, config.log_dir) == (4, 2, "/tmp/hyperpod")
    assert config.entrypoint == sys.executable
    assert config.args == ("-u", "/fsdp/train.py", "--lr", "0.1")
    assert config.shutdown_signal is signal.SIGKILL and config.shutdown_timeout == 30.0
    assert (config.server_host, config.server_port) == ("0.0.0.0", 8080)
    assert config.server_shutdown_timeout == 300.0 and config.token == "t"
    assert config.monitor_interval <= 0.05
    assert "torch._dynamo" in config.spare_preload and not config.hot_spares


def test_agent_flags_module_and_no_python() -> None:
    argv = ["--shutdown-signal", "SIGTERM", "--shutdown-timeout", "5", "--server-port", "9"]
    argv += ["--pre-train-script", "pre.sh", "--pre-train-args", "a 'b c'", "--hot-spares"]
    argv += ["--spare-preload", "torch, numpy,", "-m", "pkg.train", "x"]
    config = parse_config(argv, TOKEN_ENV)
    assert config.spare_preload == ("torch", "numpy")
    assert config.shutdown_signal is signal.SIGTERM and config.shutdown_timeout == 5.0
    assert config.pre_train == ("pre.sh", "a 'b c'") and config.hot_spares
    assert config.args == ("-u", "-m", "pkg.train", "x")
    binary = parse_config(["--no-python", "/bin/echo", "hi"], TOKEN_ENV)
    assert (binary.entrypoint, binary.args) == ("/bin/echo", ("hi",))


def test_environment_beats_flags() -> None:
    env = TOKEN_ENV | {
        "TRAINGUARD_AGENT_PORT": "4567",
        "TRAINGUARD_AGENT_HOST": "127.0.0.1",
        "TRAINGUARD_LOG_DIR": "/logs",
        "TRAINGUARD_SHM_DIR": "/dev/shm/x",
        "TRAINGUARD_JOB_NAME": "job",
    }
    config = parse_config(["--server-port", "1", "--log-dir", "/other", "t.py"], env)
    assert (config.server_port, config.server_host, config.log_dir) == (4567, "127.0.0.1", "/logs")
    assert config.shm_dir == "/dev/shm/x" and config.run_id == "job"


def test_token_file_and_insecure(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    token.chmod(0o600)
    assert parse_config(["--token-file", str(token), "t.py"], {}).token == "from-file"
    assert parse_config(["--token-file", str(token), "t.py"], TOKEN_ENV).token == "t"
    assert parse_config(["--insecure-no-auth", "t.py"], {}).token is None
    with pytest.raises(UsageError, match="no API token"):
        parse_config(["t.py"], {})
    with pytest.raises(UsageError, match="--token-file"):
        parse_config(["--token-file", str(tmp_path / "missing"), "t.py"], {})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_token_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(mode)
    with pytest.raises(UsageError, match=rf"--token-file .*token has mode {mode:04o}.*chmod 600"):
        parse_config(["--token-file", str(token), "t.py"], {})
    token.chmod(0o400)
    assert parse_config(["--token-file", str(token), "t.py"], {}).token == "secret"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--inprocess-restart", "t.py"], "--inprocess-restart is not supported"),
        (["--nnodes", "1:4", "t.py"], "elastic node counts"),
        (["--nnodes", "x", "t.py"], "--nnodes must be an integer"),
        (["--shutdown-signal", "SIGNOPE", "t.py"], "unknown signal"),
        (["--shutdown-timeout", "-1", "t.py"], "must not be negative"),
        (["--nproc-per-node", "many", "t.py"], "--nproc-per-node"),
    ],
)
def test_refusals_name_the_flag(argv: list[str], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_config(argv, TOKEN_ENV)


def test_bad_port_env() -> None:
    with pytest.raises(UsageError, match="TRAINGUARD_AGENT_PORT"):
        parse_config(["t.py"], TOKEN_ENV | {"TRAINGUARD_AGENT_PORT": "http"})


def test_max_restarts_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config(["--max-restarts", "3", "t.py"], TOKEN_ENV)
    assert config.max_restarts == 3
    assert "ignored" in caplog.text


def test_the_zygote_is_the_default_and_cold_start_a_flag_or_variable() -> None:
    assert not parse_config(["t.py"], TOKEN_ENV).cold_start
    assert parse_config(["--cold-start", "t.py"], TOKEN_ENV).cold_start
    assert parse_config(["--cold_start", "t.py"], TOKEN_ENV).cold_start
    assert parse_config(["t.py"], TOKEN_ENV | {"TRAINGUARD_COLD_START": "1"}).cold_start
    assert not parse_config(["t.py"], TOKEN_ENV | {"TRAINGUARD_COLD_START": "0"}).cold_start
