"""The run loop the fake scheduler and node lifecycle controller share (`controlloop`)."""

from __future__ import annotations

import threading

import pytest

from trainguard.testing.kube.controlloop import run_loop
from trainguard.testing.kube.restclient import ApiError


def test_it_steps_when_woken_goes_on_after_an_api_error_and_stops() -> None:
    stop, wake = threading.Event(), threading.Event()
    steps: list[int] = []
    second = threading.Event()

    def step() -> None:
        steps.append(len(steps))
        if len(steps) == 1:
            raise ApiError(503, "the API server is restarting")
        second.set()

    loop = threading.Thread(
        target=run_loop,
        args=(step,),
        kwargs={"stop": stop, "wake": wake, "resync": 3600.0, "name": "test"},
    )
    loop.start()
    wake.set()
    while not second.is_set():  # each wake is one step; the first one failed
        wake.set()
        second.wait(0.01)
    stop.set()
    wake.set()
    loop.join(5)
    assert not loop.is_alive()
    assert steps[:2] == [0, 1]


def test_a_bug_in_a_step_ends_the_loop_loudly() -> None:
    def step() -> None:
        raise KeyError("spec")

    wake = threading.Event()
    wake.set()
    with pytest.raises(KeyError):
        run_loop(step, stop=threading.Event(), wake=wake, resync=3600.0, name="test")
