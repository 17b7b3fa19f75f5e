"""Label and field selectors parse and match as the API server's do."""

from __future__ import annotations

import pytest

from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.selectors import (
    labels_match,
    parse_label_selector,
    selector_matcher,
)

LABELS = {"app": "train", "tier": "gpu", "HPJob": "quickstart"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=train", True),
        ("app==train", True),
        ("app!=train", False),
        ("app!=other", True),
        ("missing!=x", True),
        ("tier in (gpu, cpu)", True),
        ("tier notin (gpu)", False),
        ("missing notin (gpu)", True),
        ("HPJob", True),
        ("!HPJob", False),
        ("!missing", True),
        ("app=train,tier in (cpu,tpu)", False),
        ("app=train,tier in (gpu,tpu),!missing", True),
        ("", True),
    ],
)
def test_label_selector(selector: str, expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is expected


def test_malformed_label_selector_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as caught:
        parse_label_selector("a in (x")
    assert caught.value.code == 400


def test_pod_field_selectors() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {}}
    assert selector_matcher(None, "spec.nodeName=n1", "pods")(pod)
    assert not selector_matcher(None, "spec.nodeName!=n1", "pods")(pod)
    assert selector_matcher(None, "status.phase!=Running,metadata.namespace==ns", "pods")(pod)
    assert selector_matcher(None, "spec.nodeName=", "pods")({"metadata": {"name": "q"}})


def test_event_field_selectors_on_involved_object() -> None:
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}}
    assert selector_matcher(None, "involvedObject.kind=Pod,involvedObject.name=p", "events")(event)


def test_unsupported_field_is_refused_naming_it() -> None:
    with pytest.raises(ApiError) as caught:
        selector_matcher(None, "spec.nodeName=n1", "configmaps")
    assert caught.value.code == 400
    assert "spec.nodeName" in caught.value.message
