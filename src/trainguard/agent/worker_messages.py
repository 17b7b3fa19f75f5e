"""The agent's side of the worker socket: what workers tell their agent, and its answers.

A mixin of `trainguard.agent.runtime.ElasticAgent`, kept apart so the monitor loop's module
holds one idea. Handlers run on the socket server's thread: they only record (checkpoint
progress, the step each worker reached, save failures, resumes) in thread-safe holders and
never touch processes (reference §b.6 for the message types).
"""

from __future__ import annotations

from typing import Any

from trainguard import ipc
from trainguard.agent.checkpoint_progress import ProgressTracker
from trainguard.agent.config import AgentConfig
from trainguard.agent.protocol import CheckpointFailure, Resume
from trainguard.agent.rule_runner import RuleRunner
from trainguard.agent.sockets import SocketServer
from trainguard.agent.state import AgentCore
from trainguard.agent.timeline import Timeline
from trainguard.agent.training import TrainingTracker
from trainguard.agent.watch import WorkerWatch
from trainguard.clock import Clock

CHECKPOINT_HOLD = "checkpoint"
"""The rule-timer hold a checkpoint save takes (a silent save is not a hang)."""


class WorkerMessages:
    """Handlers of the worker socket's messages, mixed into the agent."""

    config: AgentConfig
    clock: Clock
    core: AgentCore
    progress: ProgressTracker
    sockets: SocketServer
    timeline: Timeline
    training: TrainingTracker
    _rules: RuleRunner | None
    _watch: WorkerWatch | None

    def _register_socket_handlers(self) -> None:
        register = self.sockets.register
        register(ipc.CKPT_INFO_UPDATE, self._on_ckpt_update)
        register(ipc.CKPT_INFO_GET, lambda _m: {"progress": dict(self.core.start_progress)})
        register(ipc.CKPT_SAVE_BEGIN, lambda m: self._on_save(m, begin=True))
        register(ipc.CKPT_SAVE_END, lambda m: self._on_save(m, begin=False))
        register(ipc.RESUME_REPORT, self._on_resume)
        register(ipc.CKPT_SAVE_FAILED, self._on_save_failed)
        register(ipc.TRAIN_STEP, self._on_train_step)

    def _on_train_step(self, message: dict[str, Any]) -> dict[str, Any]:
        # Not fed to the culprit watch: reports are throttled, so a healthy rank's newest
        # report can lag its real step; checkpoint steps are exact and the same on every rank.
        reply = self.training.on_message(message)
        if isinstance(local := message.get("local_rank"), int):
            self.timeline.step(local, int(message["step"]))
        return reply

    def _on_ckpt_update(self, message: dict[str, Any]) -> dict[str, Any]:
        held = message.get("held")
        self.progress.update(
            int(message["local_rank"]),
            step=int(message["step"]),
            tier=str(message.get("tier", "memory")),
            path=message.get("path"),
            held=[int(s) for s in held] if isinstance(held, list) else None,
        )
        if (watch := self._watch) is not None:
            watch.saw_step(int(message["local_rank"]), int(message["step"]))
        self.core.set_facts(progress=self.timeline.merge(self.progress.payload()))
        return {"ok": True}

    def _on_save(self, message: dict[str, Any], *, begin: bool) -> dict[str, Any]:
        rank = int(message["local_rank"])
        if not 0 <= rank < self.config.nproc:
            raise ValueError(f"local_rank {rank} is not in 0..{self.config.nproc - 1}")
        rules = self._rules
        if rules is not None:
            rules.hold(rank, CHECKPOINT_HOLD, self.clock.monotonic(), begin=begin)
        step = message.get("step")
        stall = self.timeline.save(rank, step=step, begin=begin)
        if stall is not None and step != ipc.RESTORE_STEP:
            self.core.add_save_stall(stall)
        return {"ok": True}

    def _on_save_failed(self, message: dict[str, Any]) -> dict[str, Any]:
        failure = CheckpointFailure.from_message(message, time=self.clock.wall())
        self.core.add_checkpoint_failure(failure)
        return {"ok": True}

    def _on_resume(self, message: dict[str, Any]) -> dict[str, Any]:
        resume = Resume.from_message(message)
        self.core.set_facts(resume=resume)
        rank = int(message["local_rank"])
        self.timeline.event("resume", rank, step=resume.step, tier=resume.tier)
        return {"ok": True}
