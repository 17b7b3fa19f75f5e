"""``envsubst`` for manifests: ``$VAR`` and ``${VAR}`` replaced from a given mapping.

HyperPod's samples are templates (``nprocPerNode: "$GPU_PER_NODE"``) that users pipe through
``envsubst``. We do the same, with one difference: a variable that is not set is an error naming
it, not a silent empty string that later fails as a confusing type error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from trainguard.errors import SpecError, SpecIssue

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute(text: str, env: Mapping[str, str], *, source: str) -> str:
    """Replace every ``$VAR``/``${VAR}`` in ``text``; raise `SpecError` naming unset ones."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in env:
            missing.append(name)
            return match.group(0)
        return env[name]

    result = _VAR.sub(replace, text)
    if missing:
        names = ", ".join(sorted(set(missing)))
        raise SpecError(source, [SpecIssue("", f"environment variables not set: {names}")])
    return result
