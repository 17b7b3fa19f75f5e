"""MicroTime fields decoded and written back as the real API server does."""

from __future__ import annotations

import pytest

from trainguard.testing.kube.apierrors import ApiError
from trainguard.testing.kube.microtime import admit, normalize
from trainguard.testing.kube.resources import ResourceRegistry

REGISTRY = ResourceRegistry.with_builtins()
EVENTS = REGISTRY.get("", "v1", "events")
LEASES = REGISTRY.get("coordination.k8s.io", "v1", "leases")


def test_six_fractional_digits_in_utc_are_kept() -> None:
    assert normalize("2026-01-01T00:00:00.123456Z") == "2026-01-01T00:00:00.123456Z"


def test_an_offset_is_written_back_in_utc() -> None:
    assert normalize("2026-01-01T01:00:00.000001+01:00") == "2026-01-01T00:00:00.000001Z"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("2026-01-01T00:00:00Z", 'cannot parse "Z" as ".000000"'),
        ("2026-01-01T00:00:00.123Z", 'cannot parse ".123Z" as ".000000"'),
        ("2026-01-01T00:00:00.1234567Z", 'cannot parse "7Z" as "Z07:00"'),
        ("yesterday", "cannot parse as MicroTime"),
    ],
)
def test_other_layouts_are_refused_in_gos_words(value: str, complaint: str) -> None:
    with pytest.raises(ValueError) as refused:
        normalize(value)
    assert str(refused.value) == (
        f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": {complaint}'
    )


def test_admission_checks_event_and_lease_fields_only() -> None:
    lease = {"spec": {"renewTime": "2026-01-01T00:00:00.5+00:00"}}
    with pytest.raises(ApiError) as refused:
        admit(LEASES, lease, None)
    assert refused.value.code == 400
    assert 'Lease in version "v1" cannot be handled as a Lease' in refused.value.message
    event = {"eventTime": "2026-01-01T00:00:00.000000+00:00", "series": {"count": 2}}
    assert admit(EVENTS, event, None)["eventTime"] == "2026-01-01T00:00:00.000000Z"
    configmap = {"data": {"eventTime": "whenever"}}
    assert admit(REGISTRY.get("", "v1", "configmaps"), configmap, None) == configmap
