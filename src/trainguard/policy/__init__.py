"""Pure decision functions: observed facts and a clock reading in, a decision value out.

No I/O and no clock reads live here (an import-linter contract checks it), so every policy is
tested with plain values: restart escalation (process-level, full job, fail), placement on
healthy nodes, and the log-monitoring rule engine.
"""
