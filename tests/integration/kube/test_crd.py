"""Our CRD on the fake: registration, discovery, validation naming the field, status split."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import EXAMPLES
from trainguard.spec.crd import crd

JOBS = "/apis/sagemaker.amazonaws.com/v1/namespaces/default/hyperpodpytorchjobs"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def job_manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / "quickstart" / "job.yaml").read_text())
    return loaded


@pytest.fixture
def with_crd(client: httpx.Client) -> None:
    created = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd())
    assert created.status_code == 201, created.text


@pytest.mark.usefixtures("with_crd")
def test_crd_serves_its_resource(client: httpx.Client) -> None:
    name = "hyperpodpytorchjobs.sagemaker.amazonaws.com"
    stored = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
    assert {c["type"] for c in stored["status"]["conditions"]} == {"Established", "NamesAccepted"}
    resources = client.get("/apis/sagemaker.amazonaws.com/v1").json()["resources"]
    assert {r["name"] for r in resources} == {"hyperpodpytorchjobs", "hyperpodpytorchjobs/status"}
    assert client.get(JOBS).json()["kind"] == "HyperPodPyTorchJobList"


@pytest.mark.usefixtures("with_crd")
def test_quickstart_job_is_accepted_and_status_is_split(
    client: httpx.Client, job_manifest: dict[str, Any]
) -> None:
    job_manifest["unknownTopLevel"] = "pruned"  # the schema root keeps no unknown fields
    created = client.post(JOBS, json=job_manifest)
    assert created.status_code == 201, created.text
    job = created.json()
    assert "unknownTopLevel" not in job
    assert job["metadata"]["generation"] == 1
    both = {"status": {"restartCount": 1}, "spec": {"nprocPerNode": "9"}}
    status = client.patch(f"{JOBS}/quickstart/status", json=both, headers=MERGE)
    assert status.status_code == 200, status.text
    assert status.json()["status"]["restartCount"] == 1
    assert status.json()["spec"]["nprocPerNode"] == "2"
    assert status.json()["metadata"]["generation"] == 1
    both = {"spec": {"nprocPerNode": "1"}, "status": {"restartCount": 5}}
    spec = client.patch(f"{JOBS}/quickstart", json=both, headers=MERGE)
    assert spec.json()["metadata"]["generation"] == 2
    assert spec.json()["status"]["restartCount"] == 1


@pytest.mark.usefixtures("with_crd")
def test_invalid_job_is_refused_naming_the_field(
    client: httpx.Client, job_manifest: dict[str, Any]
) -> None:
    job_manifest["spec"]["replicaSpecs"][0]["replicas"] = "two"
    refused = client.post(JOBS, json=job_manifest)
    assert refused.status_code == 422
    fields = [cause["field"] for cause in refused.json()["details"]["causes"]]
    assert "spec.replicaSpecs[0].replicas" in fields


def test_crd_without_names_is_invalid(client: httpx.Client) -> None:
    body = crd()
    del body["spec"]["names"]["plural"]
    refused = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=body)
    assert refused.status_code == 422
    assert refused.json()["details"]["causes"][0]["field"] == "spec.names.plural"


@pytest.mark.usefixtures("with_crd")
def test_deleting_the_crd_stops_serving(client: httpx.Client, job_manifest: dict[str, Any]) -> None:
    client.post(JOBS, json=job_manifest)
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    client.delete(f"{crds}/hyperpodpytorchjobs.sagemaker.amazonaws.com")
    assert client.get(JOBS).status_code == 404
