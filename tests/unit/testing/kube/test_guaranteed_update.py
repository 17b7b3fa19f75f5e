"""A write that races another one: the fake server retries it as the real one's GuaranteedUpdate
does, unless the client named a resourceVersion (then 409, which the client must handle).

The race is made deterministic: the store's first ``update`` lets another writer (the kubelet
writing a pod's status, say) land first, between the API layer's read and its write.
"""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.testing.kube import KubeApiServer
from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.patching import MERGE_PATCH, PatchRequest


@pytest.fixture
def api() -> KubeApi:
    return KubeApiServer().api


def _race_once(api: KubeApi, monkeypatch: pytest.MonkeyPatch, *, data: dict[str, str]) -> None:
    """The next store update finds that another writer changed ``data`` just before it."""
    real = api.store.update
    raced = []

    def update(key: Any, obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if not raced:
            raced.append(True)
            meta = obj["metadata"]
            current = api.store.find(key, meta.get("namespace", ""), meta["name"])
            assert current is not None
            real(key, {**current, "data": {**current.get("data", {}), **data}})
        return real(key, obj, **kwargs)

    monkeypatch.setattr(api.store, "update", update)


def _configmap(api: KubeApi) -> tuple[Any, dict[str, Any]]:
    configmaps = api.registry.get("", "v1", "configmaps")
    created = api.create(configmaps, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    return configmaps, created


def _merge(api: KubeApi, rtype: Any, document: dict[str, Any]) -> dict[str, Any]:
    return api.patch(
        rtype, "default", "c", content_type=MERGE_PATCH, document=document,
        request=PatchRequest(rtype, "", None, False),
    )  # fmt: skip


def test_a_patch_without_a_resource_version_is_applied_again_on_top_of_the_racing_write(
    api: KubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    configmaps, _ = _configmap(api)
    _race_once(api, monkeypatch, data={"other": "x"})
    patched = _merge(api, configmaps, {"data": {"a": "2"}})
    assert patched["data"] == {"a": "2", "other": "x"}, "neither write is lost"


def test_a_patch_naming_the_resource_version_it_read_gets_the_409(
    api: KubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    configmaps, created = _configmap(api)
    _race_once(api, monkeypatch, data={"other": "x"})
    version = created["metadata"]["resourceVersion"]
    with pytest.raises(ApiError) as raised:
        _merge(api, configmaps, {"metadata": {"resourceVersion": version}, "data": {"a": "2"}})
    assert raised.value.code == 409
    stored = api.store.find(configmaps.key(), "default", "c")
    assert stored is not None and stored["data"] == {"a": "1", "other": "x"}


def test_an_unconditional_replace_is_retried_and_a_conditional_one_is_not(
    api: KubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    configmaps, _ = _configmap(api)
    _race_once(api, monkeypatch, data={"other": "x"})
    replaced = api.update(
        configmaps, "default", "c", {"metadata": {"name": "c"}, "data": {"a": "3"}}
    )
    assert replaced["data"] == {"a": "3"}, "a replace without a version wins, as on a real server"
    version = replaced["metadata"]["resourceVersion"]
    _race_once(api, monkeypatch, data={"other": "y"})
    body = {"metadata": {"name": "c", "resourceVersion": version}, "data": {"a": "4"}}
    with pytest.raises(ApiError) as raised:
        api.update(configmaps, "default", "c", body)
    assert raised.value.code == 409
