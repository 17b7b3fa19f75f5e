"""Write rules: status split, generation, server-owned metadata, generateName, finalizers."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.deletion import DeleteOptions, delete


@pytest.fixture
def api() -> KubeApi:
    kube = KubeApi()
    kube.ensure_default_namespaces()
    return kube


def _pods(api: KubeApi) -> Any:
    return api.registry.get("", "v1", "pods")


def test_create_resets_pod_status_and_takes_namespace_from_url(api: KubeApi) -> None:
    pod = api.create(
        _pods(api), "default", {"metadata": {"generateName": "w-"}, "status": {"phase": "Running"}}
    )
    assert pod["status"] == {"phase": "Pending"}
    assert pod["metadata"]["name"].startswith("w-") and len(pod["metadata"]["name"]) == 7
    assert pod["metadata"]["namespace"] == "default"
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")


def test_create_in_missing_namespace_names_it(api: KubeApi) -> None:
    with pytest.raises(ApiError) as caught:
        api.create(_pods(api), "nowhere", {"metadata": {"name": "p"}})
    assert caught.value.code == 404
    assert 'namespaces "nowhere" not found' in caught.value.message


def test_missing_name_is_invalid_naming_the_field(api: KubeApi) -> None:
    with pytest.raises(ApiError) as caught:
        api.create(_pods(api), "default", {"metadata": {}})
    assert caught.value.code == 422
    assert caught.value.details["causes"][0]["field"] == "metadata.name"


def test_status_split_and_generation(api: KubeApi) -> None:
    pods = _pods(api)
    pod = api.create(pods, "default", {"metadata": {"name": "p"}, "spec": {"nodeName": ""}})
    pod["status"] = {"phase": "Running"}
    pod["metadata"]["labels"] = {"a": "b"}
    after_main = api.update(pods, "default", "p", pod)
    assert after_main["status"] == {"phase": "Pending"}  # main resource ignores status
    assert after_main["metadata"]["generation"] == 1  # labels are metadata: no bump
    after_main["status"] = {"phase": "Running"}
    after_main["spec"] = {"nodeName": "ignored"}
    after_status = api.update(pods, "default", "p", after_main, subresource="status")
    assert after_status["status"] == {"phase": "Running"}
    assert after_status["spec"] == {"nodeName": ""}  # /status ignores spec
    after_status["spec"] = {"nodeName": "n1"}
    assert api.update(pods, "default", "p", after_status)["metadata"]["generation"] == 2


def test_finalizers_hold_deletion_and_none_may_be_added(api: KubeApi) -> None:
    cms = api.registry.get("", "v1", "configmaps")
    api.create(cms, "default", {"metadata": {"name": "c", "finalizers": ["x/y"]}})
    obj, gone = delete(api, cms, "default", "c", DeleteOptions())
    assert not gone and "deletionTimestamp" in obj["metadata"]
    obj["metadata"]["finalizers"] = ["x/y", "x/z"]
    with pytest.raises(ApiError) as caught:
        api.update(cms, "default", "c", obj)
    assert caught.value.details["causes"][0]["field"] == "metadata.finalizers"
    obj["metadata"]["finalizers"] = []
    api.update(cms, "default", "c", obj)
    assert api.store.find(cms.key(), "default", "c") is None


def test_only_kinds_whose_strategies_keep_a_generation_get_one(api: KubeApi) -> None:
    configmaps = api.registry.get("", "v1", "configmaps")
    created = api.create(configmaps, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert "generation" not in created["metadata"]
    body = {"metadata": {"name": "c", "generation": 7}, "data": {"a": "2"}}
    assert "generation" not in api.update(configmaps, "default", "c", body)["metadata"]
    pods = api.registry.get("", "v1", "pods")
    pod = {"metadata": {"name": "g"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert api.create(pods, "default", pod)["metadata"]["generation"] == 1
