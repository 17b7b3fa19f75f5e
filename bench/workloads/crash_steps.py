"""Bench workload: gloo DDP steps; rank ``--crash-rank`` calls ``os._exit(1)`` after
``--crash-after`` steps on every attempt below ``--crashes``; the last attempt runs ``--steps``
steps and exits 0. Appends ``{event, attempt, rank, t}`` JSON lines (``start``, ``first_step``,
``crash``) to ``--out`` so the bench can time restarts from the workers' own clocks.
``--fresh-port BASE`` rendezvouses gloo on ``BASE + attempt`` (the baseline under
``torchrun --max-restarts``, whose reused store breaks restarted gloo workers). The attempt
is ``TORCHELASTIC_RESTART_COUNT`` (``BENCH_ATTEMPT`` when a supervisor relaunches torchrun).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

STARTED = time.time()


def record(path: str, event: str, attempt: int, rank: int, at: float | None = None) -> None:
    when = time.time() if at is None else at
    line = json.dumps({"event": event, "attempt": attempt, "rank": rank, "t": when})
    with open(path, "a") as handle:
        handle.write(line + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-time", type=float, default=0.05)
    parser.add_argument("--crash-after", type=int, default=40)
    parser.add_argument("--crash-rank", type=int, default=1)
    parser.add_argument("--crashes", type=int, default=10)
    parser.add_argument(
        "--fresh-port", type=int, default=0, help="gloo rendezvous on BASE + attempt (torchrun)"
    )
    args = parser.parse_args()
    import torch  # noqa: PLC0415 (imported after STARTED, as part of what a restart pays)
    import torch.distributed as dist  # noqa: PLC0415
    from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415

    rank = int(os.environ["RANK"])
    attempt = int(
        os.environ.get("BENCH_ATTEMPT") or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    )
    record(args.out, "start", attempt, rank, STARTED)
    record(args.out, "imported", attempt, rank)
    if args.fresh_port:  # torchrun's reused store gives restarted gloo workers stale addresses
        os.environ["TORCHELASTIC_USE_AGENT_STORE"] = "False"
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{args.fresh_port + attempt}",
            rank=rank,
            world_size=int(os.environ["WORLD_SIZE"]),
        )
    else:
        dist.init_process_group("gloo")
    model = DistributedDataParallel(torch.nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    last = args.crash_after if attempt < args.crashes else args.steps
    for step in range(1, last + 1):
        x = torch.randn(32, 16)
        loss = (model(x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 1:
            record(args.out, "first_step", attempt, rank)
        if attempt < args.crashes and step == args.crash_after and rank == args.crash_rank:
            record(args.out, "crash", attempt, rank)
            os._exit(1)
        time.sleep(args.step_time)
    if attempt >= args.crashes:
        dist.barrier()
        dist.destroy_process_group()
        return 0
    time.sleep(3600)  # the surviving ranks wait to be stopped, as in a collective
    return 0


if __name__ == "__main__":
    sys.exit(main())
