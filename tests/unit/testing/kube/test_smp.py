"""Strategic merge patch as kubectl sends it for built-in kinds."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.testing.kube.patcherror import PatchError
from trainguard.testing.kube.smp import list_strategy, strategic_merge, supports


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_label_patch_merges_labels_and_null_deletes() -> None:
    node = {"metadata": {"name": "n1", "labels": {"a": "1", "b": "2"}}}
    patched = strategic_merge(
        node, {"metadata": {"labels": {"a": "x", "b": None, "c": "3"}}}, kind="Node"
    )
    assert patched["metadata"]["labels"] == {"a": "x", "c": "3"}
    assert node["metadata"]["labels"] == {"a": "1", "b": "2"}, "the original is not modified"


def test_containers_merge_by_name_and_env_by_name() -> None:
    live = pod(
        containers=[
            {
                "name": "a",
                "image": "i1",
                "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
            },
            {"name": "b", "image": "i2"},
        ]
    )
    patch = {
        "spec": {"containers": [{"name": "a", "image": "i3", "env": [{"name": "Y", "value": "9"}]}]}
    }
    containers = strategic_merge(live, patch, kind="Pod")["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b"]
    assert containers[0]["image"] == "i3"
    assert containers[0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "9"}]


def test_new_element_is_appended_and_delete_directive_removes_one() -> None:
    live = pod(containers=[{"name": "a"}, {"name": "b"}])
    patch = {
        "spec": {"containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "image": "x"}]}
    }
    assert strategic_merge(live, patch, kind="Pod")["spec"]["containers"] == [
        {"name": "b"},
        {"name": "c", "image": "x"},
    ]


def test_atomic_list_is_replaced() -> None:
    live = pod(tolerations=[{"key": "a"}, {"key": "b"}])
    patched = strategic_merge(live, {"spec": {"tolerations": [{"key": "c"}]}}, kind="Pod")
    assert patched["spec"]["tolerations"] == [{"key": "c"}]


def test_node_taints_are_atomic_as_kubernetes_declares() -> None:
    assert list_strategy("Node", "spec.taints") is None
    live = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    patched = strategic_merge(
        live, {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}, kind="Node"
    )
    assert patched["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]


def test_list_replace_directive() -> None:
    live = pod(containers=[{"name": "a"}, {"name": "b"}])
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "z"}]}}
    assert strategic_merge(live, patch, kind="Pod")["spec"]["containers"] == [{"name": "z"}]


def test_map_replace_and_delete_directives() -> None:
    live = {"metadata": {"labels": {"a": "1"}, "annotations": {"x": "1"}}}
    patch = {
        "metadata": {"labels": {"$patch": "replace", "b": "2"}, "annotations": {"$patch": "delete"}}
    }
    assert strategic_merge(live, patch, kind="ConfigMap")["metadata"] == {"labels": {"b": "2"}}


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}}
    added = strategic_merge(live, {"metadata": {"finalizers": ["b", "c"]}}, kind="Pod")
    assert added["metadata"]["finalizers"] == ["a", "b", "c"]
    removed = strategic_merge(
        added, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, kind="Pod"
    )
    assert removed["metadata"]["finalizers"] == ["b", "c"]


def test_owner_references_merge_by_uid() -> None:
    live = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    patch = {
        "metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a2"}]}
    }
    refs = strategic_merge(live, patch, kind="Secret")["metadata"]["ownerReferences"]
    assert refs == [{"uid": "1", "name": "a2"}, {"uid": "2", "name": "b"}]


def test_set_element_order_reorders_merged_list() -> None:
    live = pod(containers=[{"name": "a"}, {"name": "b"}])
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
            "containers": [{"name": "c"}],
        }
    }
    names = [c["name"] for c in strategic_merge(live, patch, kind="Pod")["spec"]["containers"]]
    assert names == ["b", "c", "a"]


def test_retain_keys_clears_other_fields_of_a_volume() -> None:
    live = pod(volumes=[{"name": "v", "emptyDir": {}}])
    patch = {
        "spec": {
            "volumes": [
                {"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}
            ]
        }
    }
    assert strategic_merge(live, patch, kind="Pod")["spec"]["volumes"] == [
        {"name": "v", "hostPath": {"path": "/x"}}
    ]


def test_conditions_merge_by_type_in_status() -> None:
    live = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Initialized", "status": "True"},
            ]
        }
    }
    patched = strategic_merge(
        live, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, kind="Node"
    )
    assert patched["status"]["conditions"] == [
        {"type": "Ready", "status": "False"},
        {"type": "Initialized", "status": "True"},
    ]


def test_service_ports_merge_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "name": "http"}]}}
    patched = strategic_merge(
        live, {"spec": {"ports": [{"port": 443, "name": "https"}]}}, kind="Service"
    )
    assert [p["port"] for p in patched["spec"]["ports"]] == [80, 443]


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"spec": {"containers": [{"image": "x"}]}}, "does not contain declared merge key: name"),
        ({"spec": {"$patch": "explode"}}, "Unknown patch type"),
        ({"spec": {"$bogus": 1}}, "unknown patch directive"),
        ({"spec": {"containers": ["a"]}}, "expected a map"),
    ],
)
def test_malformed_patches_are_400(patch: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PatchError) as caught:
        strategic_merge(pod(containers=[{"name": "a"}]), patch, kind="Pod")
    assert caught.value.code == 400
    assert fragment in caught.value.message


def test_custom_resources_are_not_supported() -> None:
    assert supports("Pod")
    assert not supports("HyperPodPyTorchJob")
