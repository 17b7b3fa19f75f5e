"""The per-pod elastic agent (``trainguard agent`` / ``hyperpodrun``) and its protocols.

Importing this package is cheap: the agent runtime (which imports torch) lives in submodules
that only the agent process loads. `protocol` (HTTP control API models and the state table) and
`ipc` (the worker <-> agent local socket) are shared with the controller and with training
scripts.
"""
