"""FieldsV1 encoding of managed fields."""

from __future__ import annotations

from trainguard.testing.kube import fieldsets


def keys(dotted: str) -> tuple[str, ...] | None:
    return {"spec.containers": ("name",), "metadata.finalizers": ()}.get(dotted)


OBJ = {
    "metadata": {"labels": {"app": "x"}, "finalizers": ["f1"]},
    "spec": {"containers": [{"name": "c", "image": "i"}], "args": ["a", "b"]},
}


def test_field_set_holds_leaves_and_list_elements() -> None:
    paths = fieldsets.field_set(OBJ, keys)
    assert paths == {
        ("f:metadata", "f:labels", "f:app"),
        ("f:metadata", "f:finalizers", 'v:"f1"'),
        ("f:spec", "f:containers", 'k:{"name":"c"}'),
        ("f:spec", "f:containers", 'k:{"name":"c"}', "f:name"),
        ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image"),
        ("f:spec", "f:args"),
    }


def test_fields_v1_round_trip_and_dot_marker() -> None:
    paths = fieldsets.field_set(OBJ, keys)
    trie = fieldsets.to_fields_v1(paths)
    assert trie["f:spec"]["f:containers"]['k:{"name":"c"}'] == {
        ".": {},
        "f:name": {},
        "f:image": {},
    }
    assert trie["f:spec"]["f:args"] == {}
    assert fieldsets.from_fields_v1(trie) == paths


def test_value_at_remove_and_describe() -> None:
    obj = {"spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d"}]}}
    path = ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image")
    assert fieldsets.value_at(obj, path) == (True, "i")
    assert fieldsets.describe(path) == '.spec.containers[name="c"].image'
    fieldsets.remove(obj, path[:-1])
    assert obj == {"spec": {"containers": [{"name": "d"}]}}
    assert fieldsets.value_at(obj, path) == (False, None)
