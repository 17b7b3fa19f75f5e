"""The Kubernetes operator: the controller run over the Kubernetes API (``trainguard operator``).

A composition root like the CLI: it wires `trainguard.backends.kubernetes`'s store and backend to
the same `trainguard.controller.Controller` the local backend uses, feeds it from a work queue
filled by list+watch events, elects a leader on a ``coordination.k8s.io`` Lease, and serves
``/healthz``, ``/readyz`` and ``/metrics``.
"""
