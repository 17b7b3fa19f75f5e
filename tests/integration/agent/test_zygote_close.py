"""Closing a zygote kills it rather than waiting for its orderly exit, which with torch loaded
ran the interpreter's finalization for seconds of every agent's shutdown (issue 18)."""

from __future__ import annotations

import os
import signal

import psutil

from trainguard.agent.zygote_client import Zygote


def test_a_closed_zygote_is_killed_and_reaped() -> None:
    zygote = Zygote(env=dict(os.environ), preload=())
    zygote.wait_ready(timeout=60)
    pid = zygote.pid

    zygote.close()

    assert zygote.exit_code == -signal.SIGKILL
    assert not psutil.pid_exists(pid)


def test_a_zygote_still_importing_is_killed_on_close() -> None:
    zygote = Zygote(env=dict(os.environ), preload=("torch", "torch._dynamo"))

    zygote.close()

    assert zygote.exit_code == -signal.SIGKILL
