"""Property: any valid job survives spec -> YAML -> spec unchanged (unknown fields included)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainguard.spec import HyperPodPyTorchJob, dump_yaml, load_jobs

dns_label = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30
)
count = st.integers(min_value=0, max_value=10**6)
positive = st.integers(min_value=1, max_value=10**6)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
patterns = st.sampled_from([".*Loss:.*", r"Step: (\d+)", r".*loss ([0-9.eE+-]+|nan)", "^done$"])
label_key = st.sampled_from(["app", "kueue.x-k8s.io/queue-name", "team", "example.com/tier"])
label_value = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?\Z")
extra = st.dictionaries(st.sampled_from(["futureField", "xExperimental"]), text | count, max_size=1)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for index in range(draw(st.integers(0, 3))):
        metric = draw(st.booleans())
        rule = {
            "name": f"Rule{index}",
            "logPattern": r"Loss: ([0-9.]+)" if metric else draw(patterns),
            "stopPattern": draw(optional(patterns)),
            "expectedStartCutOffInSeconds": draw(optional(positive)),
            "expectedRecurringFrequencyInSeconds": draw(optional(positive)),
            "faultOnMatch": draw(optional(st.booleans())),
        }
        if metric:
            rule |= {
                "metricThreshold": draw(finite),
                "operator": draw(st.sampled_from(["gt", "gteq", "lt", "lteq", "eq"])),
                "metricEvaluationDataPoints": draw(optional(positive)),
            }
        found.append(rule | draw(extra))
    return found


@st.composite
def jobs(draw: st.DrawFn) -> dict[str, Any]:
    container = {
        "name": draw(dns_label),
        "image": draw(text),
        "command": draw(st.lists(text, max_size=3)),
        "args": draw(optional(st.lists(text, max_size=3))),
        "env": [{"name": "A", "value": draw(text)}],
        "resources": {"limits": {"nvidia.com/gpu": draw(count)}, "requests": {"memory": "32Gi"}},
    } | draw(extra)
    replicas = draw(st.integers(1, 64))
    spec: dict[str, Any] = {
        "nprocPerNode": draw(st.sampled_from(["auto", "cpu", "gpu", "1", "8"])),
        "replicaSpecs": [
            {
                "name": draw(dns_label),
                "replicas": replicas,
                "spares": draw(st.integers(0, 4)),
                "template": {
                    "metadata": {
                        "labels": draw(st.dictionaries(label_key, label_value, max_size=2))
                    },
                    "spec": {
                        "containers": [container],
                        "nodeSelector": draw(st.dictionaries(label_key, label_value, max_size=2)),
                        "hostNetwork": draw(optional(st.booleans())),
                    },
                },
            }
        ],
        "runPolicy": {
            "cleanPodPolicy": draw(st.sampled_from(["All", "OnlyComplete", "None"])),
            "jobMaxRetryCount": draw(optional(count)),
            "restartPolicy": {
                "evalPeriodSeconds": draw(positive),
                "numRestartBeforeFullJobRestart": draw(optional(count)),
                "maxFullJobRestarts": draw(optional(count)),
            },
            "logMonitoringConfiguration": draw(rules()),
        }
        | draw(extra),
    }
    return {
        "apiVersion": "sagemaker.amazonaws.com/v1",
        "kind": "HyperPodPyTorchJob",
        "metadata": {
            "name": draw(dns_label),
            "labels": draw(st.dictionaries(label_key, label_value, max_size=2)),
        },
        "spec": spec,
    } | draw(extra)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs())
def test_spec_yaml_spec_is_identity(document: dict[str, Any]) -> None:
    first = HyperPodPyTorchJob.model_validate(document)
    text_form = dump_yaml(first.to_manifest())
    second = load_jobs(text_form, source="roundtrip.yaml")[0].job
    assert second == first
    assert second.to_manifest() == first.to_manifest()
