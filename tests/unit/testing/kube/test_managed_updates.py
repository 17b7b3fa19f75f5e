"""managedFields for non-apply writes, through the API layer as the HTTP handlers call it."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.testing.kube import KubeApiServer
from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.patching import MERGE_PATCH, PatchRequest


@pytest.fixture
def api() -> KubeApi:
    return KubeApiServer().api  # constructed, not started: the fidelity seams are installed


def _managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields", [])}


def test_create_update_and_patch_record_their_managers(api: KubeApi) -> None:
    configmaps = api.registry.get("", "v1", "configmaps")
    body = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    created = api.create(configmaps, "default", body, manager="creator")
    assert _managers(created)["creator"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    replaced = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "3"}}
    updated = api.update(configmaps, "default", "c", replaced, manager="updater")
    assert _managers(updated)["updater"]["fieldsV1"] == {"f:data": {"f:b": {}}}
    assert _managers(updated)["creator"]["fieldsV1"] == {"f:data": {"f:a": {}}}
    request = PatchRequest(configmaps, "", None, False)
    patched = api.patch(
        configmaps,
        "default",
        "c",
        content_type=MERGE_PATCH,
        document={"data": {"a": "9"}},
        request=request,
        manager="patcher",
    )
    assert set(_managers(patched)) == {"updater", "patcher"}


def test_a_write_that_changes_nothing_keeps_the_resource_version(api: KubeApi) -> None:
    configmaps = api.registry.get("", "v1", "configmaps")
    created = api.create(configmaps, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    same = {"metadata": {"name": "c", "resourceVersion": created["metadata"]["resourceVersion"]}}
    again = api.update(configmaps, "default", "c", {**same, "data": {"a": "1"}}, manager="m")
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert "managedFields" not in again["metadata"]


def test_server_writes_without_a_manager_record_nothing(api: KubeApi) -> None:
    configmaps = api.registry.get("", "v1", "configmaps")
    created = api.create(configmaps, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert "managedFields" not in created["metadata"]
