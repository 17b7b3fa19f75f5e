"""The per-pod elastic agent (``trainguard agent`` / ``hyperpodrun``) and its protocols.

Importing this package is cheap: the agent runtime (which imports torch) lives in submodules
that only the agent process loads. `protocol` (HTTP control API models and the state table) is
shared with the controller. The worker <-> agent socket framing lives below this package, in
`trainguard.ipc`, because training scripts (through `trainguard.checkpoint`, a sibling layer)
speak it too.
"""
