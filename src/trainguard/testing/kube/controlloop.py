"""The run loop of the fake cluster's control-plane components (scheduler, node lifecycle).

Each component is a `step` over its informers' caches, as a Kubernetes controller is a
reconcile over its listers; what differs is only when to step again. `run_loop` is that part,
written once: wait until woken (an informer saw a change) or until the resync period is over,
step, and on an API error log it and go on, as a controller requeues; anything else is a bug
and ends the thread loudly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from trainguard.testing.kube.restclient import ApiError

log = logging.getLogger(__name__)
STEP_ERRORS = (ApiError, httpx.HTTPError, ValueError)
"""What a step may fail with and still be retried: the API refused or was unreachable."""


def run_loop(
    step: Callable[[], object],
    *,
    stop: threading.Event,
    wake: threading.Event,
    resync: float,
    name: str,
) -> None:
    """Call ``step`` whenever ``wake`` is set, and at least every ``resync`` seconds, until
    ``stop`` is set (set ``wake`` too, to stop at once)."""
    while not stop.is_set():
        wake.wait(resync)
        wake.clear()
        if stop.is_set():
            return
        try:
            step()
        except STEP_ERRORS as exc:
            log.warning("%s step failed: %s", name, exc)
