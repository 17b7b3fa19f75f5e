"""Issue 13 item 5: warnings never vanish, near misses get a "did you mean".

``validate`` printed its warnings; ``run`` and ``job create`` accepted the same manifest without
a word, an ``elasticPolicy`` was dropped silently, and ``apiVersion: sagemaker.aws.com/v1`` or
Kubeflow's ``pytorchReplicaSpecs`` produced errors that did not say what was meant.
"""

from __future__ import annotations

import pytest

from tests.integration.cli.cluster import Local

pytestmark = pytest.mark.slow

RETRY = "numRestartBeforeFullJobRestart: exceeds jobMaxRetryCount (0)"
UNKNOWN = "spec.runPolicy.cleanPodPolicyy: unknown field, kept as is; did you mean cleanPodPolicy?"
WARNED = {
    "runPolicy": {
        "restartPolicy": {"numRestartBeforeFullJobRestart": 2, "evalPeriodSeconds": 60},
        "cleanPodPolicyy": "All",
    },
}


def _warned(stderr: str, source: str) -> None:
    for text in (RETRY, UNKNOWN):
        assert f"warning: {source}: " in stderr and text in stderr, stderr


def test_validate_run_and_job_create_print_the_same_warnings(local: Local) -> None:
    job = local.tiny_job(**WARNED)
    validated = local.cli("validate", str(job))
    assert validated.returncode == 0, validated.stderr
    _warned(validated.stderr, str(job))
    created = local.cli("job", "create", "-f", str(job))
    assert created.returncode == 0, created.stderr
    _warned(created.stderr, str(job))
    assert "hyperpodpytorchjob/tiny created" in created.stdout
    local.cli("job", "delete", "tiny")
    ran = local.cli("run", str(job))
    assert ran.returncode == 0, ran.stderr
    _warned(ran.stderr, str(job))
    assert ran.stderr.index(RETRY) < ran.stderr.index("Created")  # before the job starts


def test_a_plain_job_has_no_warnings(local: Local) -> None:
    created = local.cli("job", "create", "-f", str(local.tiny_job()))
    assert created.returncode == 0
    assert "warning: " + str(local.work) not in created.stderr


@pytest.mark.parametrize(
    ("api", "kind", "hint"),
    [
        (
            "sagemaker.aws.com/v1",
            "HyperPodPyTorchJob",
            "apiVersion: must be sagemaker.amazonaws.com/v1, got 'sagemaker.aws.com/v1'; "
            "did you mean sagemaker.amazonaws.com/v1?",
        ),
        (
            "sagemaker.amazonaws.com/v1",
            "HyperpodPytorchJob",
            "kind: must be HyperPodPyTorchJob, got 'HyperpodPytorchJob'; "
            "did you mean HyperPodPyTorchJob?",
        ),
        (
            "sagemaker.aws.com/v1",
            "HyperpodPytorchJob",
            "did you mean kind HyperPodPyTorchJob, apiVersion sagemaker.amazonaws.com/v1?",
        ),
    ],
)
@pytest.mark.parametrize("command", [("validate",), ("run",), ("job", "create", "-f")])
def test_near_misses_of_api_version_and_kind_are_named(
    local: Local, command: tuple[str, ...], api: str, kind: str, hint: str
) -> None:
    job = local.tiny_job()
    job.write_text(
        job.read_text()
        .replace("apiVersion: sagemaker.amazonaws.com/v1", f"apiVersion: {api}")
        .replace("kind: HyperPodPyTorchJob", f"kind: {kind}")
    )
    done = local.cli(*command, str(job))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {job}: "), done.stderr
    assert hint in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_kubeflow_pytorch_replica_specs_on_a_hyperpod_job(local: Local) -> None:
    job = local.tiny_job()
    job.write_text(job.read_text().replace("replicaSpecs:", "pytorchReplicaSpecs:"))
    done = local.cli("validate", str(job))
    assert done.returncode == 2
    assert (
        f"error: {job}: spec.replicaSpecs: required; spec.pytorchReplicaSpecs is set: "
        "did you mean replicaSpecs? (pytorchReplicaSpecs is Kubeflow PyTorchJob's field)"
    ) in done.stderr, done.stderr
