"""``trainguard validate``, ``crd`` and ``version`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from tests.conftest import EXAMPLES, SAMPLE_ENV, SAMPLES
from trainguard import __version__
from trainguard.cli.main import app

runner = CliRunner()


def test_valid_files_give_one_summary_line_each() -> None:
    files = [str(p) for p in sorted(EXAMPLES.glob("*.yaml"))]
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(files)
    assert all(" valid HyperPodPyTorchJob " in line for line in lines)


def test_invalid_file_prints_every_error_and_exits_2(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
    doc["spec"]["runPolicy"]["logMonitoringConfiguration"][1]["operator"] = "above"
    doc["spec"]["replicaSpecs"][0]["replicas"] = -3
    bad = tmp_path / "job.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = runner.invoke(app, ["validate", str(bad), str(EXAMPLES / "minimal.yaml")])
    assert result.exit_code == 2
    assert (
        f"{bad}: spec.runPolicy.logMonitoringConfiguration[1].operator: must be one of"
        in result.stderr
    )
    assert f"{bad}: spec.replicaSpecs[0].replicas: must be at least 1" in result.stderr
    assert "minimal.yaml: valid" in result.stdout


def test_missing_file_is_a_usage_error() -> None:
    result = runner.invoke(app, ["validate", "does-not-exist.yaml"])
    assert result.exit_code == 2
    assert "does-not-exist.yaml: no such file" in result.stderr


def test_json_output_is_the_normalized_spec() -> None:
    result = runner.invoke(
        app, ["validate", "-o", "json", str(EXAMPLES / "kubeflow-pytorchjob.yaml")]
    )
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["kind"] == "HyperPodPyTorchJob"
    assert document["spec"]["replicaSpecs"][1]["name"] == "worker"
    assert document["spec"]["runPolicy"]["cleanPodPolicy"] == "None"


def test_json_output_of_several_files_is_a_list() -> None:
    files = [str(EXAMPLES / "minimal.yaml"), str(EXAMPLES / "full-run-policy.yaml")]
    result = runner.invoke(app, ["validate", "--output", "json", *files])
    document = json.loads(result.stdout)
    assert document["kind"] == "List"
    assert [i["metadata"]["name"] for i in document["items"]] == ["minimal", "llama-fsdp-resilient"]


def test_envsubst_and_stdin() -> None:
    text = (SAMPLES / "llama3-fsdp-hpto.yaml").read_text()
    result = runner.invoke(app, ["validate", "--envsubst", "-"], input=text, env=SAMPLE_ENV)
    assert result.exit_code == 0, result.stderr
    assert "<stdin>: valid" in result.stdout


def test_crd_prints_a_yaml_crd() -> None:
    result = runner.invoke(app, ["crd"])
    assert result.exit_code == 0
    document = yaml.safe_load(result.stdout)
    assert document["kind"] == "CustomResourceDefinition"
    assert document["metadata"]["name"] == "hyperpodpytorchjobs.sagemaker.amazonaws.com"


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"trainguard {__version__}")
