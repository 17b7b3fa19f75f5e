"""The agent's monitor loop: carries out /start and /stop, watches workers, logs and rules.

`ElasticAgent.step` is one pass (tests call it); `run` repeats it until ``/shutdown`` or
SIGTERM, sleeping in between until a worker exits, a request arrives or the next housekeeping
(logs, rules, samples, facts) is due (`trainguard.agent.pacing`: a worker exit is still
reported within milliseconds, while the loop takes a small share of a core). The HTTP thread
only records requests in `AgentCore`; everything that touches processes happens here, on the
main thread, one thing at a time. Log rules are the exception: the loop only reads
new lines and hands them to a `RuleRunner`, whose thread evaluates them, so no log line can
stall the loop (`trainguard.agent.rule_runner` says how).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from torch.distributed.elastic.multiprocessing import Std

from trainguard import constants as c
from trainguard.agent.checkpoint_progress import ProgressTracker
from trainguard.agent.config import AgentConfig
from trainguard.agent.helper_processes import HelperProcesses
from trainguard.agent.logfiles import PrivateLogsSpecs
from trainguard.agent.logs import LogFollower, tail_lines
from trainguard.agent.pacing import MonitorPace
from trainguard.agent.protocol import AgentState, StartRequest, StopRequest, UpdateRequest
from trainguard.agent.rendezvous import Assignment, assignment_from, worker_envs
from trainguard.agent.rule_runner import RuleRunner
from trainguard.agent.scripts import run_script
from trainguard.agent.sockets import SocketServer
from trainguard.agent.state import AgentCore, PendingStart, PendingStop
from trainguard.agent.timeline import Timeline
from trainguard.agent.training import TrainingTracker
from trainguard.agent.watch import WorkerWatch
from trainguard.agent.worker_messages import WorkerMessages
from trainguard.agent.workers import LaunchSpec, WorkerExit, WorkerGroup
from trainguard.agent.zygote_client import ZygoteKeeper
from trainguard.clock import Clock, SystemClock
from trainguard.errors import NotFoundError, ScriptFailed
from trainguard.permissions import private_dir
from trainguard.policy.log_rules import RuleEngine, RuleState, Verdict, parse_rules
from trainguard.proctree import reap_orphans

log = logging.getLogger(__name__)
FINISHED_HOLD = "finished"
"""The rule-timer hold of a worker that exited with code 0."""
DEFAULT_REFILL_DELAY = 5.0
REAP_EVERY_S = 1.0
"""Adopted orphans are reaped once a second, not every step: listing the children of every
agent thread was a third of a monitor step's CPU (stopping workers reaps at once anyway)."""
_VERDICT_PREFIX = {
    RuleState.HANGING: c.AGENT_REASON_LOG_HANG_PREFIX,
    RuleState.SLOW: c.AGENT_REASON_LOG_SLOW_PREFIX,
    RuleState.FAULTED: c.AGENT_REASON_LOG_FAULT_PREFIX,
}


class ElasticAgent(WorkerMessages):
    """One pod's agent.

    Args:
        config: parsed command line.
        clock: time source.
        pod: pod name (``POD_NAME``; the host name otherwise).
        spares: a `SparePool` when ``--hot-spares`` is on.
        zygotes: the `ZygoteKeeper` that forks workers (None with ``--cold-start``).
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock | None = None,
        pod: str | None = None,
        spares: Any = None,
        zygotes: ZygoteKeeper | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.core = AgentCore(clock=self.clock, pod=pod or os.uname().nodename, pid=os.getpid())
        self.progress = ProgressTracker(config.nproc)
        self.timeline = Timeline.from_env(pod=self.core.pod, clock=self.clock)
        self.training = TrainingTracker(self.clock.wall)
        self.sockets = SocketServer()
        refill_delay = float(os.environ.get(c.ENV_SPARE_REFILL_DELAY, DEFAULT_REFILL_DELAY))
        self.helpers = HelperProcesses(spares, zygotes, refill_delay)
        self._private_shm = config.shm_dir is None
        self.shm_dir = Path(config.shm_dir or tempfile.mkdtemp(prefix="trainguard-", dir=_shm()))
        private_dir(self.shm_dir)  # checkpoints and replicas of this pod's ranks
        self._logs = PrivateLogsSpecs(log_dir=config.log_dir, redirects=Std.ALL, tee=Std.ALL)
        self._group: WorkerGroup | None = None
        self._assignment: Assignment | None = None
        self._rules: RuleRunner | None = None
        self._watch: WorkerWatch | None = None
        self._followers: dict[int, list[LogFollower]] = {}
        self._signalled = False
        self._reaped_at = float("-inf")
        self.pace = MonitorPace(clock=self.clock, fallback_interval=config.monitor_interval)
        self.core.wakeup = self.pace.wake
        self._register_socket_handlers()

    # --- used by the HTTP server --------------------------------------------------------------

    def check_rules(self, request: UpdateRequest) -> None:
        """Validate the log rules of a request (`SpecError` names every bad field)."""
        parse_rules(request.log_monitoring_configuration, source="log_monitoring_configuration")

    def logs(self, *, rank: int, tail: int, stream: str) -> list[str]:
        """The last ``tail`` lines of the worker with global rank ``rank``.

        Raises:
            NotFoundError: this agent does not run that rank (or has not started yet).
        """
        group, assignment = self._group, self._assignment
        local = assignment.local_rank_of(rank) if assignment else None
        if group is None or local is None:
            raise NotFoundError(f"rank {rank} does not run on this agent")
        path = group.log_file(local, stream)
        return tail_lines(path, tail) if path else []

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        """Repeat `step` until shutdown, then stop the workers and clean up."""
        self._install_signals()
        try:
            while self.step(housekeeping=self.pace.housekeeping_due()):
                self.pace.wait()
        finally:
            self.close()

    def step(self, *, housekeeping: bool = True) -> bool:
        """One pass of the monitor loop (requests, exits; with ``housekeeping`` also logs,
        rules, samples and facts); False once the agent must exit."""
        if self._signalled and self.core.state is not AgentState.SHUTDOWN:
            with contextlib.suppress(Exception):
                self.core.request_shutdown(StopRequest())
        pending = self.core.take_pending()
        if isinstance(pending, PendingStart):
            self._launch(pending.request)
        elif isinstance(pending, PendingStop):
            self._stop(pending.request)
            if pending.then is AgentState.SHUTDOWN:
                return False
            self.core.move(AgentState.READY, reason=None)
        if self.core.state is AgentState.SHUTDOWN:
            self._stop(StopRequest())
            return False
        self._watch_workers()
        if housekeeping:
            self._housekeeping()
        return True

    def _housekeeping(self) -> None:
        if self._watch is not None and self._watch.sample():
            self.core.set_facts(workers=self._watch.facts())
        self._watch_logs()
        starting = self.core.state is AgentState.RUNNING and self._group is not None
        self.helpers.refill(starting=starting, now=self.clock.monotonic())
        self.core.set_facts(
            progress=self.timeline.merge(self.progress.payload()),
            training=self.training.payload(),
        )
        self._reap_orphans()

    def close(self) -> None:
        """Stop workers, socket server and spares; remove a private shm dir."""
        self._stop(StopRequest())
        self.sockets.close()
        self.timeline.close()
        self.pace.close()
        self.helpers.close()
        if self._private_shm:
            shutil.rmtree(self.shm_dir, ignore_errors=True)

    # --- start --------------------------------------------------------------------------------

    def _launch(self, request: StartRequest) -> None:
        self._stop(StopRequest())
        self.training.reset()
        assignment = assignment_from(request, nproc=self.config.nproc)
        self._assignment = assignment
        envs = worker_envs(
            assignment,
            role=self.config.role,
            run_id=self._run_id(),
            max_restarts=self.config.max_restarts,
            extra=self._extra_env(),
            inherited=os.environ,
        )
        try:
            if self.config.pre_train is not None:
                run_script(self.config.pre_train, env=os.environ | envs[0])
            spec = LaunchSpec(
                name=self.config.role,
                entrypoint=self.config.entrypoint,
                args=self.config.args,
                envs=envs,
                log_prefixes={
                    r: f"[rank{assignment.global_rank(r)}]:" for r in range(assignment.nproc)
                },
            )
            self._group = self.helpers.start_group(spec, assignment.nproc, self._logs)
        except ScriptFailed as exc:
            self.core.fault(reason=c.AGENT_REASON_PRE_TRAIN_FAILED, message=str(exc), failures=[])
            return
        except OSError as exc:
            self.core.fault(
                reason=c.REASON_WORKER_CRASH, message=f"cannot start workers: {exc}", failures=[]
            )
            return
        finally:
            self._install_signals()
        self.helpers.started(self.clock.monotonic())
        pids = self._group.pids()
        ranks = [assignment.global_rank(r) for r in range(len(pids))]
        self._watch = WorkerWatch(pids, ranks, clock=self.clock)
        self.pace.watch(pids)
        self.core.set_facts(worker_pids=pids, workers=[])
        self.timeline.started(restart=request.fault_count, ranks=ranks)
        self._start_rules(request)

    def _extra_env(self) -> dict[str, str]:
        extra = {c.ENV_AGENT_SOCKET: str(self.sockets.path), c.ENV_SHM_DIR: str(self.shm_dir)}
        extra[c.ENV_POD_NAME] = self.core.pod
        job = self.core.extension.job if self.core.extension else None
        if job:
            extra[c.ENV_JOB_NAME] = job
        return extra

    def _run_id(self) -> str:
        job = self.core.extension.job if self.core.extension else None
        return job or self.config.run_id

    def _start_rules(self, request: StartRequest) -> None:
        rules = parse_rules(request.log_monitoring_configuration, source="POST /start")
        assert self._group is not None
        group = self._group
        self._followers = {
            rank: [LogFollower(p) for s in ("stdout", "stderr") if (p := group.log_file(rank, s))]
            for rank in range(group.nprocs)
        }
        if rules:
            self._rules = RuleRunner(
                RuleEngine(rules, range(group.nprocs), now=self.clock.monotonic())
            )

    # --- stop ---------------------------------------------------------------------------------

    def _stop(self, request: StopRequest) -> None:
        group, self._group = self._group, None
        rules, self._rules = self._rules, None
        self._watch = None
        self.pace.unwatch()
        if rules is not None:
            rules.close()
        if group is None:
            return
        sig = signal.SIGUSR1 if request.is_graceful else self.config.shutdown_signal
        timeout = self.config.shutdown_timeout if request.timeout is None else request.timeout
        group.stop(sig=sig, timeout=timeout, keep=sorted(self.helpers.pids()))
        self.timeline.stopped()
        self.core.set_facts(worker_pids=[], workers=[])

    # --- watching -----------------------------------------------------------------------------

    def _watch_workers(self) -> None:
        group = self._group
        if group is None or group.closed:
            return
        exits = group.poll()
        self._hold_finished_streams(group.take_successes())
        if exits:
            self._report_exits(exits)
        elif group.all_succeeded() and self.core.state is AgentState.RUNNING:
            group.close()
            self._finish()

    def _hold_finished_streams(self, local_ranks: list[int]) -> None:
        """A worker that exited 0 has finished: its log stream is judged no more, so the ranks
        still busy at the end (a final save) do not make it look hung (a rule's silence timer
        counts only while its stream can still print)."""
        if self._rules is None or not local_ranks:
            return
        now = self.clock.monotonic()
        for rank in local_ranks:
            self._rules.hold(rank, FINISHED_HOLD, now, begin=True)

    def _report_exits(self, exits: list[WorkerExit]) -> None:
        assert self._assignment is not None
        failures = [
            e.failure(self._assignment.global_rank(e.local_rank), self.clock.wall()) for e in exits
        ]
        first = exits[0]
        message = "; ".join(
            f"Local Rank {e.local_rank} exited with code {e.exitcode} due to: {e.message}"
            for e in exits
        )
        self.core.fault(reason=c.REASON_WORKER_CRASH, message=message, failures=failures)
        log.error("worker local rank %d (pid %d) failed: %s", first.local_rank, first.pid, message)

    def _finish(self) -> None:
        if self.config.post_train is not None:
            try:
                run_script(self.config.post_train, env=dict(os.environ))
            except ScriptFailed as exc:
                self.core.fault(
                    reason=c.AGENT_REASON_POST_TRAIN_FAILED, message=str(exc), failures=[]
                )
                return
        self.core.move(AgentState.COMPLETED, reason=None)

    def _watch_logs(self) -> None:
        """Note who wrote lines; feed them to the rules, which freeze once the workers stop."""
        rules, watch = self._rules, self._watch
        if watch is None or self.core.state is not AgentState.RUNNING:
            return
        now = self.clock.monotonic()
        lines = [
            (rank, line) for rank, fs in self._followers.items() for f in fs for line in f.read()
        ]
        watch.saw_lines(rank for rank, _ in lines)
        self.timeline.lines(lines)
        if rules is None:
            return
        rules.submit(lines, now)
        report = rules.report()
        states = {name: state.value for name, state in report.states.items()}
        self.core.set_facts(
            rules=states, rule_lines_dropped=report.dropped, rule_lines_evaluated=report.evaluated
        )
        if report.verdict is not None and self.core.state is AgentState.RUNNING:
            self._report_verdict(report.verdict)

    def _report_verdict(self, verdict: Verdict) -> None:
        reason = _VERDICT_PREFIX[verdict.state] + verdict.rule
        global_rank = self._assignment.global_rank(verdict.stream) if self._assignment else 0
        message = f"rank {global_rank}: {verdict.detail}"
        if verdict.line is not None:
            message += f"; last matched line: {verdict.line}"
        self.core.fault(reason=reason, message=message, failures=[])

    # --- helpers ------------------------------------------------------------------------------

    def _reap_orphans(self) -> None:
        now = self.clock.monotonic()
        if now - self._reaped_at >= REAP_EVERY_S:
            self._reaped_at = now
            reap_orphans(keep=self._owned_pids())

    def _owned_pids(self) -> set[int]:
        owned = self.helpers.pids()
        if self._group is not None:
            owned |= set(self._group.pids())
        return owned

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        log.warning("agent got %s: shutting down", signal.Signals(signum).name)
        self._signalled = True
        self.pace.wake()


def _shm() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") else None
