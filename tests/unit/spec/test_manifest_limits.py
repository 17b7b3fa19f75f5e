"""Reading a manifest is bounded: size, alias expansion, nesting depth and pod count.

Each test feeds the input that used to hurt (a billion-laughs bomb, nesting deeper than the
stack, a 50 MB manifest, ``replicas: 100000``) and checks it is refused with a `SpecError`
that says which limit, without building what the input describes.
"""

from __future__ import annotations

import tracemalloc

import pytest

from trainguard.errors import SpecError
from trainguard.spec import load_jobs
from trainguard.spec.limits import MAX_MANIFEST_BYTES, MAX_REPLICAS, MAX_YAML_DEPTH

JOB = """\
apiVersion: sagemaker.amazonaws.com/v1
kind: HyperPodPyTorchJob
metadata:
  name: limits
spec:
  replicaSpecs:
    - name: pods
      replicas: {replicas}
      template:
        spec:
          containers: [{{name: pytorch, command: [x]}}]
          securityContext: {note}
"""


def job(note: str = "plain", replicas: int = 1, prefix: str = "") -> str:
    return prefix + JOB.format(note=note, replicas=replicas)


def refused(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        load_jobs(text, source="job.yaml")
    return "\n".join(issue.render("job.yaml") for issue in caught.value.issues)


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_without_expanding_it() -> None:
    text = job(note=f"*l{8}", prefix=billion_laughs())
    tracemalloc.start()
    try:
        message = refused(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "expands (aliases included) to more than" in message
    assert peak < 5 * 1024 * 1024, f"{peak} bytes allocated: the bomb was expanded"


def test_aliases_within_the_limit_still_work() -> None:
    text = job(note="*l2", prefix=billion_laughs(levels=3))
    (loaded,) = load_jobs(text, source="job.yaml")
    note = loaded.job.spec.replica_specs[0].template.spec.security_context
    assert len(note) == 10 and all(len(part) == 10 for part in note)


@pytest.mark.parametrize(
    "nested",
    ["[" * 50_000 + "]" * 50_000, "{a: " * 50_000 + "1" + "}" * 50_000],
    ids=["sequences", "mappings"],
)
def test_deep_nesting_is_a_spec_error_not_a_recursion_error(nested: str) -> None:
    message = refused(job(note=nested))
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in message
    assert "line 12" in message


def test_depth_built_from_a_chain_of_aliases_is_counted() -> None:
    chain = "c0: &c0 [x]\n" + "".join(f"c{i}: &c{i} [*c{i - 1}]\n" for i in range(1, 2000))
    message = refused(job(note="*c1999", prefix=chain))
    assert f"nested (aliases included) more than {MAX_YAML_DEPTH} levels deep" in message


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    message = refused(job(note="&loop [*loop]"))
    assert "refers to a node that contains it" in message


def test_a_50_mb_manifest_is_refused_before_parsing() -> None:
    text = job(note="x" * (50 * 1024 * 1024))
    message = refused(text)
    assert f"larger than the limit of {MAX_MANIFEST_BYTES} bytes" in message


def test_a_manifest_just_under_the_size_limit_is_read() -> None:
    note = "x" * (MAX_MANIFEST_BYTES - len(job(note="")) - 1)
    (loaded,) = load_jobs(job(note=note), source="job.yaml")
    assert loaded.job.metadata.name == "limits"


def test_replicas_are_bounded() -> None:
    message = refused(job(replicas=100_000))
    assert f"spec.replicaSpecs[0].replicas: must be at most {MAX_REPLICAS}" in message


def test_pods_of_all_groups_together_are_bounded() -> None:
    text = job(replicas=MAX_REPLICAS).replace(
        "      template:", f"      spares: {MAX_REPLICAS}\n      template:"
    )
    message = refused(text)
    assert f"job.yaml: spec.replicaSpecs: asks for {2 * MAX_REPLICAS} pods" in message
