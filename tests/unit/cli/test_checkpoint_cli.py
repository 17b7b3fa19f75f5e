"""``trainguard checkpoint serve`` refuses peer settings it cannot use, before binding."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainguard.backends.local.cluster import LocalCluster, LocalClusterConfig
from trainguard.backends.local.mtcservers import NodeServer
from trainguard.cli import checkpoint as checkpoint_cli
from trainguard.cli.main import app
from trainguard.errors import BackendError
from trainguard.store import SqliteStore


@pytest.mark.parametrize("bad", ["foo:1", "127.0.0.1:9200", "ftp://host:1", "http://"])
def test_a_peer_that_is_not_an_http_url_is_a_usage_error(bad: str) -> None:
    result = CliRunner().invoke(app, ["checkpoint", "serve", "--port", "0", "--peers", bad])
    assert result.exit_code == 2
    assert "--peers/--advertise-url" in result.output and repr(bad) in result.output


@pytest.mark.parametrize(
    ("advertised", "message"),
    [
        ((), "--advertise-url: required with --peers-from-dns"),
        (("--advertise-url", "http://node-a:9200"), "must be http://<this server's IP>:9200"),
        (("--advertise-url", "http://10.0.0.1:9300"), "must be http://<this server's IP>:9200"),
    ],
)
def test_peers_from_dns_needs_the_url_discovery_makes_of_this_server(
    advertised: tuple[str, ...], message: str
) -> None:
    """The server finds its own place in the ring by that URL; another would make it its own
    peer, or leave a hole in the ring."""
    args = ["checkpoint", "serve", "--port", "9200", "--peers-from-dns", "mtc.ns.svc", *advertised]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_node_servers_nobody_asked_for_only_warn_when_they_fail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """By default a job runs without servers that did not start; ``--mtc`` makes it an error,
    ``--no-mtc`` starts none."""

    def broken(*args: object) -> list[NodeServer]:
        raise BackendError("MTC server of node-0 exited at start")

    monkeypatch.setattr(checkpoint_cli, "start_mtc_servers", broken)
    local = LocalCluster(SqliteStore(tmp_path / "state.db"), tmp_path, LocalClusterConfig())
    assert checkpoint_cli.start_node_servers(tmp_path, local, ["node-0"], flag=None) == []
    assert "continuing without MTC servers" in capsys.readouterr().err
    with pytest.raises(BackendError, match="exited at start"):
        checkpoint_cli.start_node_servers(tmp_path, local, ["node-0"], flag=True)
    assert checkpoint_cli.start_node_servers(tmp_path, local, ["node-0"], flag=False) == []
