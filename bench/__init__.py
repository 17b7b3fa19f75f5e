"""trainguard's benchmarks: every performance claim of the project, measured side by side.

Run ``python -m bench <name> [--quick]`` or ``python -m bench all [--quick]``. Each benchmark
module has ``main(argv) -> int`` and writes ``bench/results/<name>.json``: a list of rows
``{"metric", "ours", "baseline", "ratio", "unit"}`` with ratio = ours / baseline.
"""
