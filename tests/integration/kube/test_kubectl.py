"""The real kubectl against the fake API server: what issue 15 promises users can do.

One server for the module (`kubectlcluster.started_cluster`: 127.0.0.1, its kubeconfig, our CRD
and the quickstart job applied by kubectl). Validation stays on (no ``--validate=false``):
kubectl reads the server's ``/openapi/v3``, which says the server validates fields, and sends
``fieldValidation=Strict`` (what the fake then refuses: ``test_kubectl_validation.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from lightkube import Client, KubeConfig
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.events_v1 import Event

from tests.conftest import EXAMPLES
from tests.integration.kube.kubectlcluster import (
    HPJOB,
    JOB,
    Cluster,
    pod_manifest,
    started_cluster,
)
from trainguard.testing.kube.deletion import DeleteOptions, delete


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from started_cluster(tmp_path_factory)


def _stored_job(cluster: Cluster) -> dict[str, Any]:
    return cluster.server.objects.get(HPJOB, "default", JOB)


def test_reapply_of_a_changed_job_patches_it(cluster: Cluster) -> None:
    manifest = yaml.safe_load((EXAMPLES / "quickstart" / "job.yaml").read_text(encoding="utf-8"))
    manifest["spec"]["runPolicy"]["jobMaxRetryCount"] = 4
    output = cluster.out("apply", "-f", str(cluster.write("job.yaml", manifest)))
    assert f"hyperpodpytorchjob.sagemaker.amazonaws.com/{JOB} configured" in output
    stored = _stored_job(cluster)
    assert stored["spec"]["runPolicy"]["jobMaxRetryCount"] == 4
    assert stored["metadata"]["generation"] == 2
    applied = json.loads(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert applied["spec"]["runPolicy"]["jobMaxRetryCount"] == 4
    patches = [
        e
        for e in cluster.server.audit.entries()
        if e.verb == "patch" and e.resource == "hyperpodpytorchjobs"
    ]
    assert patches, "a re-apply is a PATCH (a merge patch for custom resources)"


def test_get_prints_the_crd_columns_by_name_and_short_name(cluster: Cluster) -> None:
    status = {
        "conditions": [
            {"type": "Created", "status": "True"},
            {"type": "Running", "status": "True"},
        ],
        "restartCount": 2,
    }
    cluster.run(
        "patch",
        "hyperpodpytorchjob",
        JOB,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    for name in ("hyperpodpytorchjob", "hpj", "hpjob"):
        lines = cluster.out("get", name).splitlines()
        assert lines[0].split() == ["NAME", "STATUS", "RESTARTS", "AGE"], name
        assert lines[1].split()[:3] == [JOB, "Running", "2"], name


def test_get_json_and_yaml_round_trip(cluster: Cluster) -> None:
    as_json = json.loads(cluster.out("get", "hyperpodpytorchjob", JOB, "-o", "json"))
    as_yaml = yaml.safe_load(cluster.out("get", "hyperpodpytorchjob", JOB, "-o", "yaml"))
    stored = _stored_job(cluster)
    managed = stored["metadata"].pop("managedFields")
    assert as_json == as_yaml == stored  # kubectl hides managedFields unless asked
    shown = cluster.out("get", "hpjob", JOB, "-o", "json", "--show-managed-fields")
    assert json.loads(shown)["metadata"]["managedFields"] == managed
    assert {e["manager"] for e in managed} == {"kubectl-client-side-apply"}
    listed = json.loads(cluster.out("get", "hpj", "-o", "json"))
    assert listed["kind"] == "List"
    assert [item["metadata"]["name"] for item in listed["items"]] == [JOB]


def _record_event_as_lightkube_does(cluster: Cluster, job: dict[str, Any]) -> None:
    """POST an ``events.k8s.io/v1`` Event with lightkube's typed resource, as the operator does."""
    config = KubeConfig.from_file(cluster.kubeconfig)
    client = Client(config=config, field_manager="trainguard-operator")
    event = Event(
        metadata=ObjectMeta(name=f"{JOB}.nodefault", namespace="default"),
        eventTime=datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC),
        regarding=ObjectReference(
            apiVersion="sagemaker.amazonaws.com/v1",
            kind="HyperPodPyTorchJob",
            name=JOB,
            namespace="default",
            uid=job["metadata"]["uid"],
        ),
        reason="NodeFault",
        note="Found unhealthy node n1",
        type="Warning",
        reportingController="trainguard-operator",
        reportingInstance="operator-0",
        action="Remediate",
    )
    try:
        created = client.create(event)
    finally:
        client.close()
    assert created.note == "Found unhealthy node n1"
    assert created.regarding is not None and created.regarding.name == JOB


def test_describe_shows_an_event_recorded_through_events_k8s_io(cluster: Cluster) -> None:
    _record_event_as_lightkube_does(cluster, _stored_job(cluster))
    described = cluster.out("describe", "hyperpodpytorchjob", JOB)
    assert f"Name:         {JOB}" in described
    assert "Events:" in described
    assert "Warning  NodeFault" in described
    assert "trainguard-operator" in described
    assert "Found unhealthy node n1" in described
    events = cluster.out("get", "events").splitlines()
    assert events[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("NodeFault" in line and f"hyperpodpytorchjob/{JOB}" in line for line in events[1:])
    stored = cluster.server.objects.get(("", "v1", "events"), "default", f"{JOB}.nodefault")
    assert stored["message"] == "Found unhealthy node n1"  # one storage, in the core/v1 form


def test_label_and_annotate_a_node(cluster: Cluster) -> None:
    key = "sagemaker.amazonaws.com/node-health-status"
    cluster.run("label", "node", "n1", f"{key}=UnschedulablePendingReboot", "--overwrite")
    cluster.run("annotate", "node", "n1", "trainguard.io/note=drained by test")
    node = cluster.server.objects.get(("", "v1", "nodes"), "", "n1")
    assert node["metadata"]["labels"][key] == "UnschedulablePendingReboot"
    assert node["metadata"]["annotations"]["trainguard.io/note"] == "drained by test"
    refused = cluster.run("label", "node", "n1", f"{key}=Schedulable", check=False)
    assert refused.returncode != 0
    assert "--overwrite is false" in refused.stderr
    lines = cluster.out("get", "nodes").splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert lines[1].split()[:3] == ["n1", "Ready", "<none>"]


def test_client_side_apply_of_a_pod_uses_strategic_merge(cluster: Cluster) -> None:
    path = cluster.write("pod.yaml", pod_manifest("applied", app="one"))
    cluster.run("apply", "-f", str(path))
    changed = pod_manifest("applied", app="two")
    changed["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"})
    result = cluster.run("apply", "-f", str(cluster.write("pod.yaml", changed)))
    assert "pod/applied configured" in result.stdout
    assert "warning" not in result.stderr.lower(), result.stderr
    pod = cluster.server.objects.get(("", "v1", "pods"), "default", "applied")
    assert pod["metadata"]["labels"] == {"app": "two"}
    assert pod["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    lines = cluster.out("get", "pods", "applied").splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["applied", "0/1", "Pending", "0"]


def test_delete_file_and_force_deletepod_manifest(cluster: Cluster) -> None:
    cluster.run("create", "-f", str(cluster.write("doomed.yaml", pod_manifest("doomed"))))
    forced = cluster.run("delete", "pod", "doomed", "--grace-period=0", "--force")
    assert 'pod "doomed" force deleted' in forced.stdout
    assert cluster.server.objects.find(("", "v1", "pods"), "default", "doomed") is None
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone"}, "data": {"a": "b"}}
    path = cluster.write("gone.yaml", cm)
    cluster.run("apply", "-f", str(path))
    assert 'configmap "gone" deleted' in cluster.out("delete", "-f", str(path))
    assert cluster.server.objects.find(("", "v1", "configmaps"), "default", "gone") is None


def test_logs_come_from_the_registered_source(cluster: Cluster) -> None:
    logfile = cluster.workdir / "worker.log"
    logfile.write_bytes(b"step 1 Loss: 2.0\nstep 2 Loss: 1.5\nstep 3 Loss: 1.0\n")
    cluster.run("create", "-f", str(cluster.write("logged.yaml", pod_manifest("logged"))))

    def source(
        namespace: str, pod: str, container: str, tail_lines: int | None, follow: bool
    ) -> Iterator[bytes]:
        if (namespace, pod, container) != ("default", "logged", "main"):
            return iter(())
        lines = logfile.read_bytes().splitlines(keepends=True)
        return iter(lines[-tail_lines:] if tail_lines else lines)

    cluster.server.register_log_source(source)
    try:
        assert cluster.out("logs", "logged") == logfile.read_text(encoding="utf-8")
        assert cluster.out("logs", "logged", "--tail=1") == "step 3 Loss: 1.0\n"
    finally:
        cluster.server.unregister_log_source(source)


def test_get_watch_prints_table_rows_as_changes_arrive(cluster: Cluster) -> None:
    configmaps = cluster.server.api.registry.get("", "v1", "configmaps")
    cluster.create("", "v1", "configmaps", {"metadata": {"name": "watched"}}, "default")

    def change_later() -> None:
        time.sleep(1.0)
        body = {"metadata": {"name": "watched"}, "data": {"a": "b"}}
        cluster.server.api.update(configmaps, "default", "watched", body)
        delete(cluster.server.api, configmaps, "default", "watched", DeleteOptions())

    changer = threading.Thread(target=change_later)
    changer.start()
    watched = cluster.run(
        "get",
        "configmaps",
        "--field-selector=metadata.name=watched",
        "--watch",
        "--output-watch-events",
        "--request-timeout=3s",
    )
    changer.join()
    rows = [line.split() for line in watched.stdout.splitlines()]
    assert rows[0] == ["EVENT", "NAME", "DATA", "AGE"]
    assert [row[:3] for row in rows[1:]] == [
        ["ADDED", "watched", "0"],
        ["MODIFIED", "watched", "1"],
        ["DELETED", "watched", "1"],
    ]


def test_edit_sends_a_strategic_merge_patch(cluster: Cluster) -> None:
    body = {"metadata": {"name": "edited", "labels": {"stage": "one"}}, "data": {"k": "v"}}
    cluster.create("", "v1", "configmaps", body, "default")
    editor = cluster.workdir / "editor.py"
    editor.write_text(
        "import pathlib, sys\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text().replace('stage: one', 'stage: two'))\n",
        encoding="utf-8",
    )
    command = [cluster.binary, "--kubeconfig", str(cluster.kubeconfig), "edit", "cm", "edited"]
    command[1:1] = ["--cache-dir", str(cluster.workdir / "kubectl-cache")]
    env = {**os.environ, "KUBE_EDITOR": f"{sys.executable} {editor}"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "configmap/edited edited" in done.stdout
    stored = cluster.server.objects.get(("", "v1", "configmaps"), "default", "edited")
    assert stored["metadata"]["labels"] == {"stage": "two"}
    assert [e["manager"] for e in stored["metadata"]["managedFields"]] == ["kubectl-edit"]
