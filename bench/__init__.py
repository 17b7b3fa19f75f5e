"""Side-by-side benchmarks; run one with ``python -m bench <name> [args]``."""
