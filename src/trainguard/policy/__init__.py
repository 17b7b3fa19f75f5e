"""Pure decision functions: observed facts and a clock reading in, a decision value out.

No I/O and no clock reads live here (an import-linter contract checks it), so every policy is
tested with plain values: restart escalation (process-level, full job, fail), placement on
healthy nodes, the log-monitoring rule engine, and which rank of a stalled job is the culprit.
"""
