"""Server-side apply: merge, ownership in managedFields, conflicts and force."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from trainguard.testing.kube import fieldsets
from trainguard.testing.kube.apply import ApplyOptions, record_update, server_side_apply
from trainguard.testing.kube.patcherror import PatchError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def config(**labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "labels": dict(labels)},
        "data": {"k": "v"},
    }


def apply_as(
    manager: str, live: dict[str, Any] | None, cfg: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    return server_side_apply(
        live, cfg, ApplyOptions(manager=manager, kind=cfg["kind"], now=NOW, **kw)
    )


def entry(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    return next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager)


def test_apply_creates_with_managed_fields_in_fields_v1_format() -> None:
    created = apply_as("alice", None, config(app="x"))
    assert created["data"] == {"k": "v"}
    assert created["metadata"]["name"] == "cm"
    mine = entry(created, "alice")
    assert mine["operation"] == "Apply"
    assert mine["fieldsType"] == "FieldsV1"
    assert mine["time"] == "2026-01-02T03:04:05Z"
    assert mine["fieldsV1"] == {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}


def test_reapply_without_a_field_removes_it_when_nobody_else_owns_it() -> None:
    first = apply_as("alice", None, config(app="x", tier="a"))
    second = apply_as("alice", first, config(app="x"))
    assert second["metadata"]["labels"] == {"app": "x"}


def test_field_owned_by_another_manager_survives_its_removal() -> None:
    first = apply_as("alice", None, config(app="x", shared="s"))
    both = apply_as("bob", first, config(shared="s"))
    after = apply_as("alice", both, config(app="x"))
    assert after["metadata"]["labels"] == {"app": "x", "shared": "s"}


def test_conflict_names_field_and_manager_and_force_takes_over() -> None:
    first = apply_as("alice", None, config(app="x"))
    with pytest.raises(PatchError) as caught:
        apply_as("bob", first, config(app="y"))
    error = caught.value
    assert (error.code, error.reason) == (409, "Conflict")
    assert error.causes == [
        {
            "type": "FieldManagerConflict",
            "message": 'conflict with "alice"',
            "field": ".metadata.labels.app",
        }
    ]
    assert 'conflict with "alice"' in error.message
    forced = apply_as("bob", first, config(app="y"), force=True)
    assert forced["metadata"]["labels"]["app"] == "y"
    alice = fieldsets.from_fields_v1(entry(forced, "alice")["fieldsV1"])
    assert ("f:metadata", "f:labels", "f:app") not in alice


def test_same_value_from_two_managers_is_shared_not_a_conflict() -> None:
    first = apply_as("alice", None, config(app="x"))
    shared = apply_as("bob", first, config(app="x"))
    assert {e["manager"] for e in shared["metadata"]["managedFields"]} == {"alice", "bob"}


def test_keyed_lists_merge_by_name_for_builtins() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "1"}]},
    }
    live = apply_as("alice", None, pod)
    other = copy.deepcopy(pod)
    other["spec"]["containers"] = [{"name": "b", "image": "2"}]
    merged = apply_as("bob", live, other)
    assert [c["name"] for c in merged["spec"]["containers"]] == ["a", "b"]
    bob = entry(merged, "bob")["fieldsV1"]
    assert bob["f:spec"]["f:containers"]['k:{"name":"b"}'] == {".": {}, "f:name": {}, "f:image": {}}


def test_custom_resource_lists_are_atomic_unless_the_crd_keys_them() -> None:
    job = {
        "apiVersion": "x/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"items": [{"n": 1}]},
    }
    live = apply_as("alice", None, job)
    changed = copy.deepcopy(job)
    changed["spec"]["items"] = [{"n": 2}]
    assert apply_as("alice", live, changed)["spec"]["items"] == [{"n": 2}]
    keyed = apply_as(
        "bob", live, changed, crd_list_keys=lambda p: ("n",) if p == "spec.items" else None
    )
    assert keyed["spec"]["items"] == [{"n": 1}, {"n": 2}]


def test_status_is_not_applied_through_the_main_resource() -> None:
    cfg = config()
    cfg["status"] = {"phase": "x"}
    assert "status" not in apply_as("alice", None, cfg)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda c: c.pop("apiVersion"), "apiVersion"),
        (lambda c: c["metadata"].pop("name"), "metadata.name"),
        (lambda c: c.update(kind="Secret"), "kind"),
    ],
)
def test_invalid_apply_configurations_are_400(mutate: Any, fragment: str) -> None:
    cfg = config()
    mutate(cfg)
    with pytest.raises(PatchError) as caught:
        server_side_apply(None, cfg, ApplyOptions(manager="m", kind="ConfigMap"))
    assert caught.value.code == 400
    assert fragment in caught.value.message


def test_update_takes_ownership_of_changed_fields_and_then_conflicts_with_apply() -> None:
    live = apply_as("alice", None, config(app="x"))
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["app"] = "edited"
    updated = record_update(live, edited, manager="kubectl-edit", kind="ConfigMap", now=NOW)
    kubectl = entry(updated, "kubectl-edit")
    assert kubectl["operation"] == "Update"
    assert kubectl["fieldsV1"] == {"f:metadata": {"f:labels": {"f:app": {}}}}
    with pytest.raises(PatchError):
        apply_as("alice", updated, config(app="x"))
