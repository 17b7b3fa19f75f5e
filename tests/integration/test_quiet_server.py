"""`QuietServer` serves like uvicorn's server and stops at once when asked, however long its
tick (real sockets on 127.0.0.1)."""

from __future__ import annotations

import threading

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from trainguard import httpguard
from trainguard.httpguard import QuietServer, server_config


def test_serves_and_a_request_to_exit_ends_even_a_long_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(httpguard, "TICK_S", 600.0)  # only the wake-up can end the wait
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    config = server_config(app, host="127.0.0.1", port=0, max_connections=8, log_level="error")
    server = QuietServer(config)
    assert isinstance(server, uvicorn.Server)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        thread.join(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    answer = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=10)
    assert answer.json() == {"pong": "yes"} and "date" in answer.headers
    server.request_exit()
    thread.join(60)
    assert not thread.is_alive()
