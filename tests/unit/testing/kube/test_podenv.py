"""How the fake kubelet builds a container's env, argv and working directory from a Pod."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from trainguard.testing.kube.podenv import (
    ContainerConfigError,
    PodContext,
    container_config,
    expand,
    rewrite_path,
)

SECRET = {"data": {"token": base64.b64encode(b"s3cret").decode()}}
CONFIG = {"data": {"mode": "fast"}}


def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    objects = {("Secret", "jobs", "agent"): SECRET, ("ConfigMap", "jobs", "settings"): CONFIG}
    return objects.get((kind, namespace, name))


def context(volume_dirs: dict[str, Path] | None = None) -> PodContext:
    pod = {
        "metadata": {
            "name": "job-worker-0-0",
            "namespace": "jobs",
            "uid": "u-1",
            "labels": {"HPJob": "job"},
            "annotations": {"note": "hi"},
        },
        "spec": {"serviceAccountName": "trainer"},
    }
    return PodContext(
        pod=pod,
        node_name="node-1",
        pod_ip="127.1.1.2",
        host_ip="127.0.1.2",
        lookup=lookup,
        volume_dirs=volume_dirs or {},
        image_env={"PATH": "/usr/bin"},
    )


def field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_env_from_every_source() -> None:
    container = {
        "name": "c",
        "command": ["python", "-c", "print('$(POD_IP)')"],
        "args": ["$(MODE)", "$$(MODE)", "$(UNKNOWN)"],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "PLAIN", "value": "x"},
            {"name": "DERIVED", "value": "$(PLAIN)-y"},
            field("POD_IP", "status.podIP"),
            field("HOST_IP", "status.hostIP"),
            field("NODE", "spec.nodeName"),
            field("NAME", "metadata.name"),
            field("NS", "metadata.namespace"),
            field("UID", "metadata.uid"),
            field("SA", "spec.serviceAccountName"),
            field("JOB", "metadata.labels['HPJob']"),
            field("NOTE", "metadata.annotations['note']"),
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "agent", "key": "token"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        ],
    }
    config = container_config(container, context())
    assert config.env == {
        "PATH": "/usr/bin",
        "CFG_mode": "fast",
        "PLAIN": "x",
        "DERIVED": "x-y",
        "POD_IP": "127.1.1.2",
        "HOST_IP": "127.0.1.2",
        "NODE": "node-1",
        "NAME": "job-worker-0-0",
        "NS": "jobs",
        "UID": "u-1",
        "SA": "trainer",
        "JOB": "job",
        "NOTE": "hi",
        "TOKEN": "s3cret",
        "MODE": "fast",
    }
    assert config.argv == ["python", "-c", "print('127.1.1.2')", "fast", "$(MODE)", "$(UNKNOWN)"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"secretKeyRef": {"name": "missing", "key": "k"}}, 'secret "missing" not found'),
        (
            {"secretKeyRef": {"name": "agent", "key": "nope"}},
            "couldn't find key nope in Secret jobs/agent",
        ),
        ({"configMapKeyRef": {"name": "missing", "key": "k"}}, 'configmap "missing" not found'),
        ({"fieldRef": {"fieldPath": "spec.bogus"}}, 'unsupported fieldRef fieldPath "spec.bogus"'),
    ],
)
def test_missing_references_are_create_container_config_errors(
    source: dict[str, Any], message: str
) -> None:
    container = {"name": "c", "env": [{"name": "X", "valueFrom": source}]}
    with pytest.raises(ContainerConfigError) as caught:
        container_config(container, context())
    assert str(caught.value) == message


def test_optional_references_may_be_missing() -> None:
    ref = {"name": "missing", "key": "k", "optional": True}
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": ref}}]}
    assert "X" not in container_config(container, context()).env


def test_paths_under_a_mount_are_rewritten_to_the_volume_directory(tmp_path: Path) -> None:
    memory = tmp_path / "volumes" / "trainguard-memory"
    container = {
        "name": "c",
        "command": ["/var/run/trainguard/memory/tool"],
        "workingDir": "/var/run/trainguard/memory/work",
        "volumeMounts": [{"name": "trainguard-memory", "mountPath": "/var/run/trainguard/memory"}],
        "env": [
            {"name": "TRAINGUARD_SHM_DIR", "value": "/var/run/trainguard/memory"},
            {"name": "OTHER", "value": "/var/run/trainguard/memoryless"},
        ],
    }
    config = container_config(container, context({"trainguard-memory": memory}))
    assert config.env["TRAINGUARD_SHM_DIR"] == str(memory)
    assert config.env["OTHER"] == "/var/run/trainguard/memoryless"
    assert config.working_dir == str(memory / "work")
    assert config.argv == [str(memory / "tool")]


def test_a_mount_of_an_undefined_volume_is_refused() -> None:
    container = {"name": "c", "volumeMounts": [{"name": "ghost", "mountPath": "/x"}]}
    with pytest.raises(ContainerConfigError, match='volume "ghost" is not defined'):
        container_config(container, context())


def test_expand_and_rewrite_edges() -> None:
    assert expand("$(A)$(B)$$", {"A": "1"}) == "1$(B)$"
    assert rewrite_path("/data", {"/data": Path("/tmp/v")}) == "/tmp/v"
    assert rewrite_path("/data2", {"/data": Path("/tmp/v")}) == "/data2"
