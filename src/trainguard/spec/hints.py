""" "Did you mean ..." hints for near misses in manifests.

Manifests are copied between HyperPod's docs, Kubeflow's and blog posts, so the mistakes that
cost a new user the most time are near misses: ``apiVersion: sagemaker.aws.com/v1``,
``kind: HyperpodPytorchJob``, or Kubeflow's ``pytorchReplicaSpecs`` on a HyperPodPyTorchJob
(which then reports ``spec.replicaSpecs: required``). A message that names the intended spelling
turns a search into a one-character fix. Matching uses `difflib`; the cut-off keeps unrelated
words from being suggested.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from trainguard.errors import SpecIssue
from trainguard.spec.base import unknown_keys

CUTOFF = 0.6
"""Least `difflib.SequenceMatcher` ratio (case-insensitive) for a suggestion."""
UNKNOWN_FIELD = "unknown field, kept as is"
"""Message of the warning for a key no model knows."""
REQUIRED = "required"
"""The message `trainguard.spec.messages` gives a missing field."""
FOREIGN_FIELDS = {
    "pytorchReplicaSpecs": "Kubeflow PyTorchJob's field",
}
"""Keys of other job kinds that users carry over, with what to write instead."""


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most probably misspells (case-insensitive), or None."""
    if not isinstance(word, str) or not word:
        return None
    options = {choice.lower(): choice for choice in choices if choice != word}
    found = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=CUTOFF)
    return options[found[0]] if found else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` for a near miss of one of ``choices``, else ``""``."""
    match = closest(word, choices)
    return f"; did you mean {match}?" if match else ""


def unknown_field_issues(value: Any) -> Iterator[SpecIssue]:
    """A warning per key no model knows, with the known field it probably misspells."""
    for path, owner, key in unknown_keys(value):
        known = [field.alias or name for name, field in type(owner).model_fields.items()]
        message = UNKNOWN_FIELD + did_you_mean(key, known) + _foreign(key)
        yield SpecIssue(path, message, "warning")


def hint_missing(issues: list[SpecIssue], document: Any) -> list[SpecIssue]:
    """``spec.replicaSpecs: required`` names a key of ``spec`` that probably meant it."""
    return [_hint_one(issue, document) for issue in issues]


def _hint_one(issue: SpecIssue, document: Any) -> SpecIssue:
    if issue.message != REQUIRED or "[" in issue.path:
        return issue
    *parents, field = issue.path.split(".")
    holder = document
    for key in parents:
        holder = holder.get(key) if isinstance(holder, dict) else None
    if not isinstance(holder, dict):
        return issue
    present = [k for k in holder if isinstance(k, str)]
    match = next((k for k in present if closest(field, [k]) == k), None)
    if match is None:
        return issue
    where = ".".join([*parents, match])
    message = f"{REQUIRED}; {where} is set: did you mean {field}?{_foreign(match)}"
    return SpecIssue(issue.path, message, issue.severity)


def _foreign(key: str) -> str:
    return f" ({key} is {FOREIGN_FIELDS[key]})" if key in FOREIGN_FIELDS else ""
