"""fieldValidation=Strict|Warn|Ignore against Kubernetes' schemas of the built-in kinds."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.fieldvalidation import FieldValidation, kind_schema
from trainguard.testing.kube.resources import ResourceRegistry, ResourceType

REGISTRY = ResourceRegistry.with_builtins()
PODS = REGISTRY.get("", "v1", "pods")

pytestmark = pytest.mark.skipif(
    kind_schema("", "v1", "Pod") is None, reason="kubernetes-validate ships the schemas"
)


def _pod(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"any.key/x": "v"}},
        "spec": {
            "containers": [
                {"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                | container
            ],
            "nodeSelector": {"whatever": "x"},
        },
    }


def test_a_known_pod_decodes_unchanged_in_every_mode() -> None:
    for mode in ("Strict", "Warn", "Ignore"):
        validation = FieldValidation.parse(mode)
        assert validation.decode(PODS, _pod()) == _pod()
        assert validation.warnings == []


def test_strict_refuses_every_unknown_field_by_path() -> None:
    body = _pod(imagee="typo") | {"extra": 1}
    with pytest.raises(ApiError) as refused:
        FieldValidation.parse("Strict").decode(PODS, body)
    assert refused.value.code == 400
    assert refused.value.message == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.containers[0].imagee", unknown field "extra"'
    )


def test_warn_drops_and_reports_and_is_the_default() -> None:
    validation = FieldValidation.parse(None)
    decoded = validation.decode(PODS, _pod(imagee="typo"))
    assert decoded == _pod()
    assert validation.warnings == ['unknown field "spec.containers[0].imagee"']
    assert validation.warning_headers() == ['299 - "unknown field \\"spec.containers[0].imagee\\""']


def test_ignore_drops_silently() -> None:
    validation = FieldValidation.parse("Ignore")
    assert validation.decode(PODS, _pod(imagee="typo")) == _pod()
    assert validation.warnings == []


def test_an_unsupported_directive_is_a_bad_request() -> None:
    with pytest.raises(ApiError, match="fieldValidation: Unsupported value"):
        FieldValidation.parse("strict")


def test_each_api_decodes_with_its_own_kind_schema() -> None:
    events_v1 = REGISTRY.get("events.k8s.io", "v1", "events")
    event = {"metadata": {"name": "e"}, "note": "n", "message": "core spelling"}
    with pytest.raises(ApiError, match='unknown field "message"'):
        FieldValidation.parse("Strict").decode(events_v1, event)
    service = {"spec": {"ports": [{"port": 80, "targetPort": "http", "nodeport": 1}]}}
    with pytest.raises(ApiError, match=r'unknown field "spec\.ports\[0\]\.nodeport"'):
        FieldValidation.parse("Strict").decode(REGISTRY.get("", "v1", "services"), service)


CUSTOM_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "empty": {"type": "object"},
            },
        }
    },
}
THINGS = ResourceType(
    "example.com", "v1", "things", "Thing", True, schema=CUSTOM_SCHEMA, custom=True
)


def test_custom_resources_are_checked_against_their_structural_schema() -> None:
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "labelz": {}},
        "spec": {
            "replicas": 1,
            "template": {"anything": {"goes": 1}},
            "labels": {"free": "form"},
            "items": [{"name": "a", "nmae": "b"}],
            "empty": {"x": 1},
            "replica": 2,
        },
    }
    with pytest.raises(ApiError) as refused:
        FieldValidation.parse("Strict").decode(THINGS, body)
    assert refused.value.message == (
        'Thing in version "v1" cannot be handled as a Thing: strict decoding error: '
        'unknown field "metadata.labelz", unknown field "spec.items[0].nmae", '
        'unknown field "spec.empty.x", unknown field "spec.replica"'
    )
    warned = FieldValidation.parse("Warn")
    assert warned.decode(THINGS, body) == body  # the CRD admission prunes them afterwards
    assert len(warned.warnings) == 4


def test_an_apply_configuration_with_an_unknown_field_fails_its_typed_conversion() -> None:
    config = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
    config["spec"] = _pod(imagee="typo")["spec"]
    for mode in ("Strict", "Ignore"):
        with pytest.raises(ApiError) as refused:
            FieldValidation.parse(mode).check_apply(PODS, config)
        assert (refused.value.code, refused.value.reason) == (500, "InternalError")
        assert refused.value.message == (
            "failed to create typed patch object (ns/p; /v1, Kind=Pod): "
            '.spec.containers[name="c"].imagee: field not declared in schema'
        )
    FieldValidation.parse("Strict").check_apply(PODS, config | {"spec": _pod()["spec"]})


def test_an_apply_configuration_of_a_custom_resource_is_checked_by_its_schema() -> None:
    config = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}}
    config["spec"] = {"items": [{"name": "a", "nmae": "b"}]}
    with pytest.raises(ApiError, match=r"\(/t; example.com/v1, Kind=Thing\): \.spec\.items\[0\]"):
        FieldValidation.parse("Strict").check_apply(THINGS, config)
