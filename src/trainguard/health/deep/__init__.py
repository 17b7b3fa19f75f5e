"""Deep health checks: ``InstanceStress`` (compute burn checked for silent data corruption, memory
patterns) and ``InstanceConnectivity`` (all-reduce bandwidth and latency across nodes), and the
runner that marks nodes ``Unschedulable`` / ``deep-health-check-status=InProgress`` while they
run. They import torch lazily: the node health agent and ``health check`` never need it.
"""
