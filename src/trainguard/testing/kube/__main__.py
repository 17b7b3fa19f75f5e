"""``python -m trainguard.testing.kube``: run a fake cluster in the foreground.

For people and for tests that need the cluster in another process: it writes the kubeconfig
when every node is Ready (atomically, mode 0600, so a reader never sees half a file), prints one
line saying where, and on SIGINT or SIGTERM stops every component and container process and
exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from trainguard.testing.kube.cluster import TestCluster


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m trainguard.testing.kube",
        description="Run a fake Kubernetes cluster (API server, scheduler, process kubelets).",
    )
    parser.add_argument("--nodes", type=int, default=3, help="fake nodes node-0.. (default 3)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig file to write")
    parser.add_argument("--workdir", type=Path, help="pod directories and logs (default: temp)")
    parser.add_argument(
        "--port", type=int, default=0, help="API server HTTPS port, the kubeconfig's (default: any)"
    )
    args = parser.parse_args(argv)
    if args.nodes < 0:
        parser.error(f"--nodes: {args.nodes} is negative")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is not a TCP port")
    return args


def publish_kubeconfig(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically with mode 0600."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(source.read_bytes())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cluster = TestCluster(nodes=args.nodes, workdir=args.workdir, port=args.port)
    try:
        cluster.start()
    except OSError as exc:
        print(f"error: the cluster could not start (--port {args.port}?): {exc}", file=sys.stderr)
        return 2
    try:
        publish_kubeconfig(cluster.kubeconfig, args.kubeconfig)
        print(
            f"trainguard test cluster: {args.nodes} node(s) at {cluster.server.https_url}; "
            f"kubeconfig written to {args.kubeconfig}",
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
