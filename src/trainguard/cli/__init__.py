"""The ``trainguard`` command: a composition root that wires the other packages together."""
