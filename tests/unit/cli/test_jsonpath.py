"""kubectl's jsonpath subset used by ``-o jsonpath=...``."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.cli.jsonpath import render, select
from trainguard.errors import UsageError

JOBS: dict[str, Any] = {
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
            "status": {"restartCount": 2, "conditions": [{"type": "Created"}, {"type": "Running"}]},
        },
        {"metadata": {"name": "b"}, "status": {"restartCount": 0, "conditions": []}},
    ],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.kind}", "List"),
        ("{.items[0].metadata.name}", "a"),
        ("{.items[-1].metadata.name}", "b"),
        ("{.items[*].metadata.name}", "a b"),
        ("{$.items[1].status.restartCount}", "0"),
        ("{.items[0].status.conditions[-1].type}", "Running"),
        ("{.items[0].metadata.labels['app.kubernetes.io/name']}", "x"),
        ("{.items[0].status.conditions[0]}", '{"type": "Created"}'),
        ('{range .items[*]}{.metadata.name}={.status.restartCount}{"\\n"}{end}', "a=2\nb=0\n"),
        ("name: {.items[5].metadata.name}!", "name: !"),
        ("{.items[*].metadata.*}", 'a {"app.kubernetes.io/name": "x"} b'),
    ],
)
def test_templates(template: str, expected: str) -> None:
    assert render(template, JOBS) == expected


def test_select_returns_every_match() -> None:
    assert select(".items[*].status.restartCount", JOBS) == [2, 0]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.items[?(@.x)]}", "cannot parse"),
        ("{range .items[*]}{.a}", "{range} without {end}"),
        ("{.a}{end}", "{end} without {range}"),
        ("{.a", "unbalanced braces"),
        ('{"\\q"}', "bad string literal"),
    ],
)
def test_unsupported_or_malformed_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("{", r"\{").replace("}", r"\}")):
        render(template, JOBS)
