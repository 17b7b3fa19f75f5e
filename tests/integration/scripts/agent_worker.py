"""A torch-free worker for agent tests: prints ``Step: N`` lines and misbehaves on request.

Options: ``--steps`` (0 = forever), ``--step-time``; ``--hang-rank R --hang-after N`` (local rank
R stops printing after N steps and sleeps); ``--quiet-after N`` (every rank stops printing after N
steps and sleeps, as ranks waiting in a collective for a hung peer do); ``--ignore-term``
(SIGTERM ignored); ``--fork``
(starts a child in its process group and a grandchild in a new session, both sleeping);
``--exit-code C --exit-rank R --exit-after N``; ``--save-every N --save-time S`` (a silent
checkpoint save announced over the socket); ``--socket`` (reports a checkpoint and a resume
to the agent over its socket first); ``--print-env`` (prints the rendezvous variables);
``--fetch`` (asks the test extension's ``sample_fetch``); ``--print-modules`` (whether torch was
imported before the script ran); ``--hostile-every N`` (every N steps, the log lines of issue 12
that froze the agent's rules: ``a``*29 + ``!`` and one 150 kB tqdm ``\\r`` line, then prints
``SOCKET_RTT <s>``, the time the agent's socket took to answer); ``--forever-on-restart``
(``--steps`` counts only in the first start: a restarted worker runs until it is stopped).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from trainguard.ipc import AgentSocketClient

SLEEPER = "import time, sys; time.sleep(3600)"
REDOS_LINE = "a" * 29 + "!"
TQDM_REDRAW = "\r 45%|####5     | 450/1000 [00:10<00:12, 44.12it/s]"
TQDM_LINE = (TQDM_REDRAW * (150_000 // len(TQDM_REDRAW) + 1))[:150_000]


def parse() -> argparse.Namespace:
    """The options; ``--forever-on-restart`` already applied to ``steps``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--step-time", type=float, default=0.05)
    parser.add_argument("--hang-rank", type=int, default=-1)
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--quiet-after", type=int, default=0)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--fork", action="store_true")
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--exit-rank", type=int, default=-1)
    parser.add_argument("--exit-after", type=int, default=0)
    parser.add_argument("--socket", action="store_true")
    parser.add_argument("--print-env", action="store_true")
    parser.add_argument("--marker", default="")
    parser.add_argument("--save-every", type=int, default=0)
    parser.add_argument("--fetch", action="store_true")
    parser.add_argument("--print-modules", action="store_true")
    parser.add_argument("--save-time", type=float, default=0.0)
    parser.add_argument("--hostile-every", type=int, default=0)
    parser.add_argument("--forever-on-restart", action="store_true")
    args = parser.parse_args()
    if args.forever_on_restart and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        args.steps = 0
    return args


def main() -> int:
    args = parse()
    local = int(os.environ["LOCAL_RANK"])
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.fork:
        marker = [sys.executable, "-c", SLEEPER, args.marker]
        subprocess.Popen(marker)
        subprocess.Popen(marker, start_new_session=True)
    if args.print_env:
        keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK")
        keys += ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT", "JOB_RESTART_COUNT")
        keys += ("TRAINGUARD_RESUME_STEP", "TRAINGUARD_SHM_DIR", "TRAINGUARD_AGENT_TOKEN")
        print("ENV " + " ".join(f"{k}={os.environ.get(k, '')}" for k in keys), flush=True)
    if args.socket:
        with AgentSocketClient() as client:
            client.request("ckpt_info_update", step=10, tier="memory", path="/m/10", held=[5, 10])
            got = client.request("ckpt_info_get")
            client.request(
                "resume_report",
                step=got["progress"].get("trainguard", {}).get("progressCount", 0),
                tier="memory",
            )
            print(f"PROGRESS {got['progress']}", flush=True)
    if args.fetch:
        with AgentSocketClient() as client:
            print(f"FETCHED {client.request('sample_fetch', step=7)['path']}", flush=True)
    if args.print_modules:
        preloaded = {"torch", "torch._dynamo"} <= set(sys.modules)
        print(f"TORCH_PRELOADED {preloaded} PID {os.getpid()}", flush=True)
    step = 0
    while args.steps == 0 or step < args.steps:
        step += 1
        if local == args.hang_rank and step > args.hang_after:
            time.sleep(3600)
        if args.quiet_after and step > args.quiet_after:
            time.sleep(3600)
        print(f"Step: {step} Loss: {1.0 / step:.4f}", flush=True)
        if args.save_every and step % args.save_every == 0:
            with AgentSocketClient() as client:  # a long, silent checkpoint save
                client.request("ckpt_save_begin", step=step)
                time.sleep(args.save_time)
                client.request("ckpt_save_end", step=step)
        if args.hostile_every and step % args.hostile_every == 0:
            print_hostile_lines()
        if local == args.exit_rank and step >= args.exit_after:
            return args.exit_code
        time.sleep(args.step_time)
    return 0


def print_hostile_lines() -> None:
    print(REDOS_LINE, flush=True)
    print(TQDM_LINE, flush=True)
    started = time.monotonic()
    with AgentSocketClient() as client:
        client.request("ckpt_info_get")
    print(f"SOCKET_RTT {time.monotonic() - started:.3f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
