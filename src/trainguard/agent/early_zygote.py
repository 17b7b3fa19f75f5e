"""The agent's zygote, started before the agent parses its command line.

Parsing takes torchrun's own parser, which imports torch, and the agent's runtime then imports
``torch.distributed.elastic`` and uvicorn; the zygote imports torch too. Started after all that,
its import was the longest serial wait of a job's boot (issue 18). So `hyperpodrun` starts it
first, from a pre-parse of the few options that decide it, and the two imports run side by
side. `adopt` hands it to the agent only when the real configuration agrees (a zygote wanted,
the same environment); otherwise it is killed and the agent starts the zygote it would have
started anyway, so a wrong guess costs one killed process, never a wrongly started worker.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

from trainguard import constants as c
from trainguard.agent.config import AgentConfig
from trainguard.agent.rendezvous import static_env
from trainguard.agent.zygote_client import ZygoteKeeper, uses_zygote


def start_early(argv: Sequence[str], env: Mapping[str, str]) -> ZygoteKeeper | None:
    """A zygote for the workers ``argv`` (the agent's command line) will likely ask for, or
    None when the pre-parse says none will be used (cold start, hot spares, help)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--nproc-per-node", "--nproc_per_node", default="1")
    parser.add_argument("--cold-start", "--cold_start", action="store_true")
    parser.add_argument("--hot-spares", "--hot_spares", action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    known, _ = parser.parse_known_args(list(argv))
    cold = env.get(c.ENV_COLD_START, "") not in {"", "0"}
    if known.help or known.cold_start or known.hot_spares or cold:
        return None
    if not known.nproc_per_node.isdigit():
        return None
    keeper = ZygoteKeeper(env=zygote_env(nproc=int(known.nproc_per_node), env=env))
    keeper.ensure()
    return keeper


def adopt(early: ZygoteKeeper | None, config: AgentConfig) -> ZygoteKeeper | None:
    """The zygote the agent of ``config`` uses: ``early`` when it fits, else a new one (or
    None: ``--cold-start``, ``--hot-spares`` or workers that are no Python scripts)."""
    wanted = not (config.cold_start or config.hot_spares) and uses_zygote(
        config.entrypoint, config.args
    )
    env = zygote_env(nproc=config.nproc, env=os.environ)
    if early is not None and wanted and early.env == env:
        return early
    if early is not None:
        early.close()
    if not wanted:
        return None
    keeper = ZygoteKeeper(env=env)
    keeper.ensure()
    return keeper


def zygote_env(*, nproc: int, env: Mapping[str, str]) -> dict[str, str]:
    """The environment of the zygote (and of parked hot spares): the agent's without its API
    token (workers must not inherit it), plus the rendezvous-free worker variables."""
    inherited = {k: v for k, v in env.items() if k != c.ENV_AGENT_TOKEN}
    return inherited | static_env(nproc=nproc, inherited=inherited)
