"""Checkpoint checksum throughput: CRC-32C (what the checkpoint tiers write now) vs zlib CRC-32
(what they wrote before, and still verify).

Both go through `trainguard.checkpoint.checksum.of_buffer`, the function the memory tier's
background thread and every restore call, over the same random buffer; arms alternate, medians.
Run: ``python -m bench checksum [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import time

from bench.common import Row, median, write_results
from trainguard.checkpoint import checksum


def seconds(data: bytes, algorithm: str) -> float:
    started = time.perf_counter()
    checksum.of_buffer(data, algorithm)
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench checksum")
    parser.add_argument("--quick", action="store_true", help="64 MB, 3 trials")
    args = parser.parse_args(argv)
    mb, trials = (64, 3) if args.quick else (256, 7)
    data = os.urandom(mb << 20)
    times: dict[str, list[float]] = {"crc32c": [], "crc32": []}
    for _ in range(trials):
        for algorithm, samples in times.items():
            samples.append(seconds(data, algorithm))
    ours, base = median(times["crc32c"]), median(times["crc32"])
    rows = [
        Row(f"checksum_{mb}mb_crc32c_vs_zlib_crc32", ours, base, "s"),
        Row("checksum_crc32c_throughput", mb / 1024 / ours, mb / 1024 / base, "GB/s"),
    ]
    write_results("checksum", rows)
    return 0
