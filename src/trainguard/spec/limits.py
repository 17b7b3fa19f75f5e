"""Bounds on what a manifest may ask for, and the container checks Kubernetes makes.

A manifest that passes ``trainguard validate`` must not be able to take the controller down:
not while it is read (a 50 MB file, a YAML alias bomb that expands to a billion nodes, nesting
deep enough to exhaust Python's stack), not while it is placed (``replicas: 100000``), and not
when its pods start (an environment variable ``subprocess`` or ``execve`` refuses). Every limit
lives here with the reason for its value, so ``docs/security.md`` and the checks agree.

The container checks follow the Kubernetes API server: environment variable names are
non-empty printable ASCII without ``=`` (the relaxed rule of Kubernetes 1.32); strings are
valid UTF-8 without NUL bytes; sizes stay below what Linux's ``execve`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

MAX_MANIFEST_BYTES: Final = 1 << 20
"""1 MiB per manifest file: below etcd's 1.5 MiB object limit, so any object Kubernetes could
store fits; reading and validating 1 MiB takes about a second."""

MAX_YAML_NODES: Final = 200_000
"""YAML nodes (scalars, lists, mappings) a manifest may hold once aliases are expanded; a
billion-laughs bomb is refused while counting, before any object is built."""

MAX_YAML_DEPTH: Final = 64
"""Nesting levels a manifest may have (counting through aliases); a PodTemplateSpec with node
affinity needs about 15, and Python's recursion limit is far away."""

MAX_REPLICAS: Final = 5000
"""Pods one job may ask for (replicas plus spares, over all groups): Kubernetes' largest
supported cluster is 5,000 nodes, and a HyperPod pod takes a whole node."""

MAX_REPLICA_GROUPS: Final = 64
"""Replica groups (``replicaSpecs`` entries) one job may have. Real jobs have one or two; the
bound keeps the CRD's uniqueness rule (a CEL check over all pairs) cheap enough for the API
server's cost budget."""

MAX_ELASTIC_SIZES: Final = 64
"""Sizes ``elasticPolicy.replicaDiscreteValues`` may list: every resize is a restart, so a
real job allows a handful; the bound keeps the CRD's CEL checks over the list cheap."""

MAX_LOG_RULES: Final = 64
"""Log monitoring rules one job may have; the bound keeps the CRD's uniqueness rule cheap and
every rule runs on every log line of every rank."""

MAX_NAME_LENGTH: Final = 63
"""A job's name: a DNS-1123 name short enough to be a label value (``HPJob=<job>``)."""

GENERATED_SUFFIX_LENGTH: Final = 6
"""Random characters appended to ``metadata.generateName`` (six hex digits)."""

MAX_ARG_STRLEN: Final = 131_072
"""Linux's limit on one argv or environment string, NUL terminator included (32 pages)."""

MAX_EXEC_BYTES: Final = 1 << 20
"""Bytes the container's command, args and env may take in ``execve`` (strings, NULs and
pointers): half of the usual 2 MiB ``ARG_MAX``, leaving the rest for the inherited environment
and the variables trainguard adds."""

POINTER_BYTES: Final = 8


def exec_bytes(strings: Iterable[str]) -> int:
    """What ``strings`` cost in ``execve``'s argument space: bytes, NUL, one pointer each."""
    return sum(len(s.encode("utf-8", "surrogatepass")) + 1 + POINTER_BYTES for s in strings)


def check_exec_string(value: str) -> str:
    """A string that ``execve`` accepts as one argument; raises ValueError naming the problem."""
    if "\x00" in value:
        raise ValueError(f"must not contain a NUL byte (at offset {value.index(chr(0))})")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValueError(f"must be valid UTF-8 text ({exc.reason} at offset {exc.start})") from exc
    if size + 1 > MAX_ARG_STRLEN:
        raise ValueError(
            f"is {size} bytes; one argument or variable may have at most {MAX_ARG_STRLEN - 1}"
        )
    return value


def check_env_name(name: str) -> str:
    """An environment variable name as Kubernetes accepts it: printable ASCII, no ``=``."""
    if not name:
        raise ValueError("must not be empty")
    for offset, char in enumerate(name):
        if char == "=" or not " " <= char <= "~":
            raise ValueError(
                f"must be printable ASCII without '=', found {char!r} at offset {offset}"
            )
    return name
