"""``InstanceConnectivity``: an all-reduce across the selected nodes, its bus bandwidth and
latency judged against thresholds.

This is what nccl-tests' ``all_reduce_perf`` measures and what HyperPod's connectivity check
fails on ("expected minimum threshold 80, NCCL test output Bw: 30"). Bus bandwidth follows
nccl-tests: ``algbw = bytes / time`` and ``busbw = algbw * 2 (n - 1) / n`` for n ranks — the
share of data each link carries in a ring all-reduce — so numbers compare across world sizes
and with nccl-tests' output. Time per size is the slowest rank's mean over the timed
iterations (a collective is as fast as its slowest member). Every all-reduce's result is also
checked (each rank contributes ``rank + 1``), so a link that corrupts data fails too.

Ranks are processes started here with the ``spawn`` method: one per node on CPU (gloo), one per
GPU per node on GPUs (NCCL). Locally a "node" is such a process on 127.0.0.1; rendezvous is a
`torch.distributed.TCPStore` the parent serves on a free port, so no port is guessed. A rank
that crashes, is killed or hangs is named in the report (by its node), and the run ends at
``timeout_s`` whatever the ranks do.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from trainguard.health.deep.config import ConnectivityConfig
from trainguard.health.report import HealthReport, NodeAction, healthy, unhealthy

CHECK_CONNECTIVITY = "InstanceConnectivity"
FAULT_CONNECTIVITY = "DeepHealthCheckFailure"
MIB = 1024 * 1024


def resolve_backend(config: ConnectivityConfig) -> str:
    """``nccl`` or ``gloo``."""
    if config.backend != "auto":
        return config.backend
    return "nccl" if torch.cuda.is_available() else "gloo"


def bus_bandwidth(nbytes: float, seconds: float, world: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s, as nccl-tests computes them for all-reduce."""
    algbw = nbytes / seconds / 1e9
    return algbw, algbw * 2 * (world - 1) / world


def _rank_main(rank: int, world: int, port: int, config: dict[str, Any], results: Any) -> None:
    """One rank: join, verify, time, report (runs in a spawned process)."""
    cfg = ConnectivityConfig.model_validate(config)
    backend = resolve_backend(cfg)
    timeout = timedelta(seconds=cfg.timeout_s)
    store = dist.TCPStore(  # type: ignore[attr-defined]
        cfg.host, port, world, is_master=False, timeout=timeout
    )
    device = "cpu"
    if backend == "nccl":
        device = f"cuda:{rank % torch.cuda.device_count()}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    try:
        results.put((rank, _measure(cfg, device, rank, world)))
    finally:
        dist.destroy_process_group()


def _measure(cfg: ConnectivityConfig, device: str, rank: int, world: int) -> dict[str, Any]:
    expected = world * (world + 1) / 2
    tiny = torch.ones(1, device=device)
    for _ in range(cfg.warmup):
        dist.all_reduce(tiny)
    latency = _timed(functools.partial(dist.all_reduce, tiny), cfg.latency_iterations, device)
    sizes = []
    wrong = 0
    for size_mb in cfg.sizes_mb:
        tensor = torch.empty(int(size_mb * MIB) // 4, dtype=torch.float32, device=device)
        tensor.fill_(rank + 1)
        dist.all_reduce(tensor)
        wrong += int((tensor != expected).sum())
        for _ in range(cfg.warmup):
            dist.all_reduce(tensor)
        seconds = _timed(functools.partial(dist.all_reduce, tensor), cfg.iterations, device)
        sizes.append({"bytes": tensor.numel() * 4, "seconds": seconds})
    return {"device": device, "latencySeconds": latency, "sizes": sizes, "wrongElements": wrong}


def _timed(op: Callable[[], object], iterations: int, device: str) -> float:
    dist.barrier()
    start = time.perf_counter()
    for _ in range(iterations):
        op()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / iterations


class InstanceConnectivity:
    """The connectivity check across ``nodes`` (one rank per node, or per GPU with NCCL).

    Args:
        nodes: the nodes under test, in rank order.
        config: sizes, iterations and thresholds.
        on_spawn: called with the rank processes' pids once they started (tests use it to
            kill one).
    """

    name = CHECK_CONNECTIVITY

    def __init__(
        self,
        nodes: Sequence[str],
        config: ConnectivityConfig | None = None,
        *,
        on_spawn: Callable[[list[int]], None] | None = None,
    ) -> None:
        if not nodes:
            raise ValueError("InstanceConnectivity needs at least one node")
        self.nodes = list(nodes)
        self.config = config or ConnectivityConfig()
        self._on_spawn = on_spawn

    def ranks_per_node(self) -> int:
        """GPUs per node with NCCL, else 1."""
        if resolve_backend(self.config) == "nccl":
            return max(1, torch.cuda.device_count())
        return 1

    def check(self, now: float) -> HealthReport:
        """Run the all-reduce test once and judge it."""
        per_node = self.ranks_per_node()
        world = per_node * len(self.nodes)
        results, exits = self._run(world)
        missing = sorted(set(range(world)) - set(results))
        evidence: dict[str, Any] = {
            "backend": resolve_backend(self.config),
            "nodes": self.nodes,
            "worldSize": world,
        }
        if missing:
            bad = sorted({self.nodes[r // per_node] for r in missing})
            evidence.update(failedRanks=missing, failedNodes=bad, exitCodes=exits)
            return self._fail(
                now,
                "ConnectivityRankFailed",
                f"rank(s) {missing} on {bad} did not finish the all-reduce",
                evidence,
            )
        return self._judge(now, results, world, evidence)

    def _judge(
        self, now: float, results: dict[int, dict[str, Any]], world: int, evidence: dict[str, Any]
    ) -> HealthReport:
        cfg = self.config
        latency_ms = max(r["latencySeconds"] for r in results.values()) * 1e3
        rows = []
        for index, size in enumerate(results[0]["sizes"]):
            seconds = max(r["sizes"][index]["seconds"] for r in results.values())
            algbw, busbw = bus_bandwidth(size["bytes"], seconds, world)
            rows.append(
                {
                    "bytes": size["bytes"],
                    "timeUs": round(seconds * 1e6, 1),
                    "algbwGBps": round(algbw, 3),
                    "busbwGBps": round(busbw, 3),
                }
            )
        wrong = sum(r["wrongElements"] for r in results.values())
        evidence.update(latencyMs=round(latency_ms, 3), sizes=rows, wrongElements=wrong)
        busbw = rows[-1]["busbwGBps"]
        problems = []
        if wrong:
            problems.append(("AllReduceWrongResult", f"{wrong} elements summed wrong"))
        if world > 1 and busbw < cfg.min_busbw_gbps:
            problems.append(("BusBandwidthLow", f"busbw {busbw} GB/s < {cfg.min_busbw_gbps}"))
        if latency_ms > cfg.max_latency_ms:
            problems.append(("LatencyHigh", f"latency {latency_ms:.3f} ms > {cfg.max_latency_ms}"))
        if problems:
            return self._fail(now, problems[0][0], "; ".join(t for _, t in problems), evidence)
        summary = f"busbw {busbw} GB/s, latency {latency_ms:.3f} ms over {world} rank(s)"
        return healthy(self.name, now, summary, **evidence)

    def _fail(
        self, now: float, reason: str, message: str, evidence: dict[str, Any]
    ) -> HealthReport:
        return unhealthy(
            self.name,
            now,
            reason=reason,
            message=message,
            fault_type=FAULT_CONNECTIVITY,
            action=NodeAction.REPLACE,
            **evidence,
        )

    def _run(self, world: int) -> tuple[dict[int, dict[str, Any]], dict[int, int | None]]:
        """Start ``world`` ranks, collect their results until done or ``timeout_s``."""
        cfg = self.config
        ctx = mp.get_context("spawn")
        results_q = ctx.Queue()
        store = dist.TCPStore(  # type: ignore[attr-defined]
            cfg.host,
            0,
            world + 1,
            is_master=True,
            timeout=timedelta(seconds=cfg.timeout_s),
            wait_for_workers=False,
        )
        procs = [
            ctx.Process(
                target=_rank_main,
                args=(rank, world, store.port, cfg.model_dump(), results_q),
                daemon=True,
            )
            for rank in range(world)
        ]
        for proc in procs:
            proc.start()
        if self._on_spawn is not None:
            self._on_spawn([p.pid for p in procs if p.pid is not None])
        results: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + cfg.timeout_s
        try:
            while len(results) < world and time.monotonic() < deadline:
                try:
                    rank, result = results_q.get(timeout=0.2)
                    results[rank] = result
                except queue.Empty:
                    # a dead rank means the collective can never complete: stop waiting
                    if any(p.exitcode not in (None, 0) for p in procs) or not any(
                        p.is_alive() for p in procs
                    ):
                        break
        finally:
            exits = _stop(procs, grace_s=5.0 if len(results) == world else 0.5)
            results_q.close()
            del store
        return results, exits


def _stop(procs: Sequence[Any], *, grace_s: float) -> dict[int, int | None]:
    """Wait ``grace_s`` for ranks to exit, kill the rest; return each rank's exit code."""
    for proc in procs:
        proc.join(timeout=grace_s)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
    return {rank: proc.exitcode for rank, proc in enumerate(procs)}
