"""Shared fixtures: repository paths."""

from __future__ import annotations

from pathlib import Path

import pytest

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
def repo_root() -> Path:
    return ROOT
