"""Shared fixtures: repository paths; agents start workers cold unless a test opts in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Most tests run toy workers that never import torch: an agent's zygote importing torch for
# them would only cost CI cores. Tests of the default path pass TRAINGUARD_COLD_START=0.
os.environ.setdefault("TRAINGUARD_COLD_START", "1")
# `trainguard run` / `cluster up` start an MTC server per node by default: 0.8 CPU-seconds and
# 75 MiB each (about 2.5 CPU-seconds a run of three nodes), paid by every run of the suite.
# Component tests run without them (as --no-mtc); tests/e2e and tests/scenarios drop this
# variable (`default_mtc_servers`), so the default path, servers on, is what they test.
os.environ.setdefault("TRAINGUARD_MTC_SERVERS", "0")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SAMPLES = ROOT / "tests" / "data" / "hyperpod-samples"

SAMPLE_ENV = {
    "GPU_PER_NODE": "8",
    "NUM_NODES": "2",
    "EFA_PER_NODE": "32",
    "INSTANCE_TYPE": "ml.p5.48xlarge",
    "IMAGE_URI": "123456789012.dkr.ecr.us-west-2.amazonaws.com/fsdp:pytorch2.6",
}


@pytest.fixture
def default_mtc_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's own default for the node MTC servers (on), not the suite's (off)."""
    monkeypatch.delenv("TRAINGUARD_MTC_SERVERS", raising=False)


@pytest.fixture
def repo_root() -> Path:
    return ROOT
