"""The real kubectl against the fake: field validation and field ownership as a server checks them.

kubectl sends ``fieldValidation=Strict``: unknown fields of built-in kinds and of our custom
resource are refused (``--validate=warn`` and ``--validate=false`` drop them); server-side apply
records managers, conflicts with fields other managers (client-side kubectl included) own, and
refuses a configuration with undeclared fields. One server for the module
(`kubectlcluster.started_cluster`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.conftest import EXAMPLES
from tests.integration.kube.kubectlcluster import HPJOB, Cluster, pod_manifest, started_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from started_cluster(tmp_path_factory)


def test_unknown_fields_of_a_pod_are_refused_warned_or_dropped(cluster: Cluster) -> None:
    typo = pod_manifest("typo")
    typo["spec"]["containers"][0]["imagee"] = "python:3.11"
    path = str(cluster.write("typo.yaml", typo))
    pods = ("", "v1", "pods")
    refused = cluster.run("apply", "-f", path, check=False)
    assert refused.returncode != 0
    assert 'strict decoding error: unknown field "spec.containers[0].imagee"' in refused.stderr
    assert cluster.server.objects.find(pods, "default", "typo") is None
    warned = cluster.run("apply", "--validate=warn", "-f", path)
    assert 'unknown field "spec.containers[0].imagee"' in warned.stderr
    assert (
        "imagee" not in cluster.server.objects.get(pods, "default", "typo")["spec"]["containers"][0]
    )
    cluster.run("delete", "pod", "typo", "--grace-period=0", "--force")
    ignored = cluster.run("create", "--validate=false", "-f", path)
    assert "warning" not in ignored.stderr.lower(), ignored.stderr
    assert (
        "imagee" not in cluster.server.objects.get(pods, "default", "typo")["spec"]["containers"][0]
    )


def test_a_typo_in_a_job_is_refused_by_the_crd_schema(cluster: Cluster) -> None:
    manifest = yaml.safe_load((EXAMPLES / "quickstart" / "job.yaml").read_text(encoding="utf-8"))
    manifest["metadata"]["name"] = "typo-job"
    manifest["metadata"]["label"] = {"team": "ml"}
    manifest["spce"] = manifest["spec"]
    refused = cluster.run("apply", "-f", str(cluster.write("typo-job.yaml", manifest)), check=False)
    assert refused.returncode != 0
    assert (
        'strict decoding error: unknown field "metadata.label", unknown field "spce"'
        in refused.stderr
    )
    assert cluster.server.objects.find(HPJOB, "default", "typo-job") is None


def test_server_side_apply_records_managers_and_conflicts(cluster: Cluster) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa"},
        "data": {"owner": "alice"},
    }
    path = cluster.write("ssa.yaml", cm)
    assert "serverside-applied" in cluster.out(
        "apply", "--server-side", "--field-manager=alice", "-f", str(path)
    )
    stored = cluster.server.objects.get(("", "v1", "configmaps"), "default", "ssa")
    entries = {e["manager"]: e for e in stored["metadata"]["managedFields"]}
    assert entries["alice"]["operation"] == "Apply"
    assert entries["alice"]["fieldsV1"] == {"f:data": {"f:owner": {}}}
    cm["data"]["owner"] = "bob"
    path = cluster.write("ssa.yaml", cm)
    refused = cluster.run(
        "apply", "--server-side", "--field-manager=bob", "-f", str(path), check=False
    )
    assert refused.returncode != 0
    assert 'conflict with "alice"' in refused.stderr
    assert ".data.owner" in refused.stderr
    cluster.run(
        "apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", str(path)
    )
    taken = cluster.server.objects.get(("", "v1", "configmaps"), "default", "ssa")
    assert taken["data"] == {"owner": "bob"}


def test_server_side_apply_conflicts_with_fields_kubectl_set_client_side(
    cluster: Cluster,
) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "mixed"},
        "data": {"owner": "create"},
    }
    cluster.run("create", "-f", str(cluster.write("mixed.yaml", cm)))
    cluster.run("label", "configmap", "mixed", "team=infra")
    stored = cluster.server.objects.get(("", "v1", "configmaps"), "default", "mixed")
    entries = {e["manager"]: e for e in stored["metadata"]["managedFields"]}
    assert entries["kubectl-create"]["operation"] == "Update"
    assert entries["kubectl-create"]["fieldsV1"]["f:data"] == {"f:owner": {}}
    assert entries["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    cm["metadata"]["labels"] = {"team": "ml"}
    cm["data"]["owner"] = "ssa"
    path = str(cluster.write("mixed.yaml", cm))
    refused = cluster.run("apply", "--server-side", "--field-manager=ssa", "-f", path, check=False)
    assert refused.returncode != 0
    assert 'conflict with "kubectl-create": .data.owner' in refused.stderr
    assert 'conflict with "kubectl-label": .metadata.labels.team' in refused.stderr
    cluster.run("apply", "--server-side", "--field-manager=ssa", "--force-conflicts", "-f", path)
    taken = cluster.server.objects.get(("", "v1", "configmaps"), "default", "mixed")
    managers = {e["manager"] for e in taken["metadata"]["managedFields"]}
    assert managers == {"ssa"}


def test_server_side_apply_of_an_unknown_field_fails_as_structured_merge_diff_does(
    cluster: Cluster,
) -> None:
    typo = pod_manifest("ssa-typo")
    typo["spec"]["containers"][0]["imagee"] = "python:3.11"
    path = str(cluster.write("ssa-typo.yaml", typo))
    refused = cluster.run("apply", "--server-side", "-f", path, check=False)
    assert refused.returncode != 0
    assert (
        "failed to create typed patch object (default/ssa-typo; /v1, Kind=Pod): "
        '.spec.containers[name="main"].imagee: field not declared in schema'
    ) in refused.stderr
    assert cluster.server.objects.find(("", "v1", "pods"), "default", "ssa-typo") is None
