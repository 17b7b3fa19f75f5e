"""PATCH dispatch by content type, with the errors the API server answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trainguard.testing.kube.patch import PatchRequest, apply_patch, merge_patch
from trainguard.testing.kube.patcherror import PatchError

LIVE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"a": "1"}},
    "spec": {"containers": [{"name": "c", "image": "i"}]},
}


def request(
    content_type: str, body: Any, kind: str = "Pod", **extra: Any
) -> tuple[bytes, PatchRequest]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, PatchRequest(content_type=content_type, kind=kind, **extra)


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    body = {"metadata": {"labels": {"a": None, "b": "2"}}, "spec": {"containers": [{"name": "d"}]}}
    patched = apply_patch(LIVE, *request("application/merge-patch+json; charset=utf-8", body))
    assert patched["metadata"]["labels"] == {"b": "2"}
    assert patched["spec"]["containers"] == [{"name": "d"}]


def test_merge_patch_rfc7386_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}


def test_json_patch_applies_and_failed_test_is_422() -> None:
    ops = [{"op": "replace", "path": "/metadata/labels/a", "value": "2"}]
    assert apply_patch(LIVE, *request("application/json-patch+json", ops))["metadata"][
        "labels"
    ] == {"a": "2"}
    failing = [{"op": "test", "path": "/metadata/labels/a", "value": "nope"}]
    with pytest.raises(PatchError) as caught:
        apply_patch(LIVE, *request("application/json-patch+json", failing))
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")


def test_json_patch_on_a_missing_path_is_422() -> None:
    ops = [{"op": "remove", "path": "/spec/nothing"}]
    with pytest.raises(PatchError) as caught:
        apply_patch(LIVE, *request("application/json-patch+json", ops))
    assert caught.value.code == 422


def test_strategic_merge_for_builtins_and_415_for_custom_resources() -> None:
    body = {"spec": {"containers": [{"name": "c", "image": "new"}]}}
    patched = apply_patch(LIVE, *request("application/strategic-merge-patch+json", body))
    assert patched["spec"]["containers"] == [{"name": "c", "image": "new"}]
    with pytest.raises(PatchError) as caught:
        apply_patch(
            LIVE,
            *request("application/strategic-merge-patch+json", body, kind="HyperPodPyTorchJob"),
        )
    assert (caught.value.code, caught.value.reason) == (415, "UnsupportedMediaType")
    assert caught.value.status()["code"] == 415


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/merge-patch+json", b"{not json"),
        ("application/merge-patch+json", b"[1]"),
        ("application/json-patch+json", b"{}"),
    ],
)
def test_malformed_bodies_are_400(content_type: str, body: bytes) -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(LIVE, *request(content_type, body))
    assert caught.value.code == 400


def test_unknown_content_type_is_415() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(LIVE, *request("text/plain", b"x"))
    assert caught.value.code == 415


def test_apply_patch_needs_a_field_manager_and_accepts_yaml() -> None:
    body = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    z: '9'\n"
    with pytest.raises(PatchError) as caught:
        apply_patch(LIVE, *request("application/apply-patch+yaml", body))
    assert caught.value.code == 400
    assert "fieldManager" in caught.value.message
    patched = apply_patch(LIVE, *request("application/apply-patch+yaml", body, field_manager="me"))
    assert patched["metadata"]["labels"] == {"a": "1", "z": "9"}


def test_patching_a_missing_object_is_404_except_apply() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(None, *request("application/merge-patch+json", {}))
    assert caught.value.code == 404
    created = apply_patch(None, *request("application/apply-patch+yaml", LIVE, field_manager="me"))
    assert created["metadata"]["name"] == "p"


def test_a_custom_resource_named_like_a_builtin_still_refuses_strategic_merge() -> None:
    body = {"spec": {}}
    with pytest.raises(PatchError) as caught:
        apply_patch(LIVE, *request("application/strategic-merge-patch+json", body, custom=True))
    assert caught.value.code == 415
