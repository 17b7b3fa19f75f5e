"""The RBAC rules docs/kubernetes.md gives the operator, checked against what it really used.

The fake API server's audit records every request's verb, group, resource and subresource with
the client's User-Agent; trainguard's own clients are lightkube's (``python-httpx2/...``),
kubectl and the fake's kubelets are not. After each Kubernetes scenario the permissions
trainguard used must all be granted by the ClusterRole in the document, so the document cannot
fall behind the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"
TRAINGUARD_AGENT = "python-httpx2/"
"""User-Agent prefix of lightkube, which ``trainguard operator`` and ``fault --kubeconfig`` use."""
Permission = tuple[str, str, str]


def documented_rules(doc: Path = DOC) -> set[Permission]:
    """``(group, resource, verb)`` granted by the ClusterRole in ``doc``'s YAML blocks."""
    for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), flags=re.S):
        for document in yaml.safe_load_all(block):
            if isinstance(document, dict) and document.get("kind") == "ClusterRole":
                return {
                    (group, resource, verb)
                    for rule in document["rules"]
                    for group in rule["apiGroups"]
                    for resource in rule["resources"]
                    for verb in rule["verbs"]
                }
    raise AssertionError(f"{doc}: no ClusterRole in a ```yaml block")


def missing_permissions(used: set[Permission], doc: Path = DOC) -> list[Permission]:
    """What trainguard used that the documented ClusterRole does not grant."""
    return sorted(used - documented_rules(doc))
