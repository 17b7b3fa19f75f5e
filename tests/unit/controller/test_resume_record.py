"""The resume record after a resize: worker message -> agent -> ``status.resumes`` -> describe."""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import Harness, manifest
from trainguard.agent.protocol import RESUME_REASON_LIMIT
from trainguard.agent.protocol import Resume as AgentResume
from trainguard.cli.render import describe
from trainguard.controller.state import JobPhase

REASON = "memory tier holds world size 3 (step 110); job now runs 2"


def test_worker_message_keeps_sizes_and_reason_and_drops_junk() -> None:
    message = {"step": 100, "tier": "durable", "seconds": 0.5, "local_rank": 0}
    message.update({"world_size": 2, "saved_world_size": 3, "reason": REASON})
    resume = AgentResume.from_message(message)
    assert (resume.step, resume.tier, resume.world_size, resume.saved_world_size) == (
        100,
        "durable",
        2,
        3,
    )
    assert resume.reason == REASON
    junk = AgentResume.from_message({"step": None, "world_size": True, "reason": "x" * 5000})
    assert junk.world_size is None and junk.reason == "x" * RESUME_REASON_LIMIT


def test_status_and_describe_show_why_memory_was_skipped(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.agent(0).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).resume_at = AgentResume(
            step=100, tier="durable", world_size=2, saved_world_size=3, reason=REASON
        )
    h.step(3)
    (resume,) = h.status().resumes
    assert (resume.step, resume.tier, resume.world_size, resume.saved_world_size) == (
        100,
        "durable",
        2,
        3,
    )
    assert resume.reason == REASON
    wire = h.status().to_manifest()["resumes"][0]
    assert (wire["worldSize"], wire["savedWorldSize"], wire["reason"]) == (2, 3, REASON)
    text = describe(h.record(), [], [], now=h.clock.wall())
    assert "restart 1: step 100 from durable (saved by 3 ranks, now 2)" in text
    assert f"restart 1: {REASON}" in text
