"""Pod volumes become directories: emptyDir, secret and configMap files, hostPath as is."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from trainguard.testing.kube.podenv import ContainerConfigError
from trainguard.testing.kube.volumes import prepare_volumes

OBJECTS = {
    ("Secret", "ns", "creds"): {"data": {"token": base64.b64encode(b"t").decode()}},
    ("ConfigMap", "ns", "cfg"): {"data": {"a.yaml": "x: 1", "b": "2"}},
}


def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return OBJECTS.get((kind, namespace, name))


def pod(*volumes: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns"}, "spec": {"volumes": list(volumes)}}


def test_every_supported_kind(tmp_path: Path) -> None:
    dirs = prepare_volumes(
        pod(
            {"name": "memory", "emptyDir": {"medium": "Memory"}},
            {"name": "creds", "secret": {"secretName": "creds"}},
            {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "b", "path": "sub/b"}]}},
            {"name": "host", "hostPath": {"path": "/etc"}},
        ),
        tmp_path,
        lookup,
    )
    assert dirs["memory"].is_dir() and dirs["memory"].parent == tmp_path / "volumes"
    assert (dirs["creds"] / "token").read_text() == "t"
    assert (dirs["cfg"] / "sub" / "b").read_text() == "2"
    assert not (dirs["cfg"] / "a.yaml").exists()
    assert dirs["host"] == Path("/etc")


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "v", "persistentVolumeClaim": {"claimName": "c"}}, r"spec.volumes\[0\] \(v\)"),
        ({"name": "v", "secret": {"secretName": "absent"}}, 'secret "absent" not found'),
        (
            {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}},
            "couldn't find key zz in ConfigMap ns/cfg",
        ),
    ],
)
def test_what_cannot_be_faked_is_refused(
    tmp_path: Path, volume: dict[str, Any], message: str
) -> None:
    with pytest.raises(ContainerConfigError, match=message):
        prepare_volumes(pod(volume), tmp_path, lookup)
