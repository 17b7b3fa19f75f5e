"""The Helm chart renders, lints, validates against Kubernetes' schemas and says what it must.

Rendering and linting are Helm's own Go code (helm-python-sdk); every built-in object is
checked with ``kubernetes-validate --strict`` against Kubernetes 1.33's published schemas; the
CRD in ``crds/`` must be exactly what ``trainguard crd`` prints; every example job must pass
that CRD's schema. The remaining tests pin the properties issue 16 asks of each object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from typer.testing import CliRunner

from tests.conftest import EXAMPLES
from tests.helm.chart import (
    CHART,
    FULL,
    NAMESPACE,
    NOT_BUILT_IN,
    Obj,
    crd_file,
    lint,
    named,
    notes,
    of_kind,
    render,
)
from tests.helm.rbac import grants_of, missing, needed
from tests.scenarios.rbac import documented_rules
from tests.unit.spec.structural import to_json_schema
from trainguard import constants as c
from trainguard.cli.main import app
from trainguard.testing.kube.audit import AuditEntry

OPERATOR = "tg-trainguard-operator"
AGENT = "tg-trainguard-health-agent"


def _container(obj: Obj) -> Obj:
    containers: list[Obj] = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_chart_lints_clean_with_defaults_and_with_every_part_on() -> None:
    for values in ({}, FULL):
        report = lint(values)
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("values", [{}, FULL], ids=["defaults", "full"])
def test_every_built_in_object_passes_kubernetes_validate_strict(values: Obj) -> None:
    objects = [o for o in render(values) if o["apiVersion"] not in NOT_BUILT_IN]
    assert len(objects) >= 20
    for obj in objects:
        assert kubernetes_validate.validate(obj, "1.33", strict=True) == "1.33", obj["kind"]


def test_crds_are_what_trainguard_crd_prints() -> None:
    printed = CliRunner().invoke(app, ["crd"])
    assert printed.exit_code == 0, printed.output
    assert (CHART / "crds" / "hyperpodpytorchjobs.yaml").read_text() == printed.output


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted(EXAMPLES.rglob("*.yaml"))
        if yaml.safe_load(p.read_text())["kind"] == c.KIND
    ],
    ids=lambda p: str(p.relative_to(EXAMPLES)),
)
def test_example_job_passes_the_charts_crd_schema(path: Path) -> None:
    version = crd_file()["spec"]["versions"][0]
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    job = yaml.safe_load(path.read_text())
    jsonschema.validate(job, schema)
    with pytest.raises(jsonschema.ValidationError, match="replicaSpecs"):
        jsonschema.validate({**job, "spec": {**job["spec"], "replicaSpecs": "no"}}, schema)


def test_values_schema_refuses_bad_values_naming_the_field() -> None:
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema({})
        for bad, field in [
            ({"watchNamespaces": []}, "/watchNamespaces"),
            ({"operator": {"replicas": 0}}, "/operator/replicas"),
            ({"deepHealthCheck": {"enabled": True}}, "/deepHealthCheck/nodes"),
            ({"mtc": {"port": "9200"}}, "/mtc/port"),
            ({"mtc": {"peerDiscovery": {"intervalSeconds": 0}}}, "/mtc/peerDiscovery"),
            ({"healthAgent": {"kernelLg": "/x"}}, "kernelLg"),
        ]:
            with pytest.raises(helm.HelmValuesError, match=field):
                chart.validate_schema(bad)


def test_operator_deployment_runs_two_restricted_replicas_with_probes() -> None:
    deployment = named(render(), "Deployment", OPERATOR)
    assert deployment["spec"]["replicas"] == 2
    container = _container(deployment)
    args = container["args"]
    assert "--namespace=default" in args and f"--lease-namespace={NAMESPACE}" in args
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081, "callback": 8082}
    for flag, port in (("metrics", 8080), ("health", 8081), ("callback", 8082)):
        assert f"--{flag}-port={port}" in args
    pod_ip = next(e for e in container["env"] if e["name"] == "POD_IP")
    assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["capabilities"]["drop"] == ["ALL"] and not security["allowPrivilegeEscalation"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    pdb = named(render(), "PodDisruptionBudget", OPERATOR)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= _pod_labels(deployment).items()


def _pod_labels(obj: Obj) -> dict[str, str]:
    labels: dict[str, str] = obj["spec"]["template"]["metadata"]["labels"]
    return labels


def _rules(objects: list[Obj]) -> list[tuple[str, str | None, Obj]]:
    return [
        (o["metadata"]["name"], o["metadata"].get("namespace"), rule)
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
        for rule in o["rules"]
    ]


def test_no_role_grants_exec_wildcards_or_cluster_wide_secrets() -> None:
    for name, namespace, rule in _rules(render(FULL)):
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], name
        assert not any(r.startswith("pods/exec") or r == "pods/attach" for r in rule["resources"])
        if namespace is None:
            assert "secrets" not in rule["resources"], f"ClusterRole {name} reads Secrets"


def test_operator_gets_a_role_in_each_watched_namespace() -> None:
    objects = render({"watchNamespaces": ["team-a", "team-b"]})
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in of_kind(objects, "Role")}
    assert {("team-a", f"{OPERATOR}-jobs"), ("team-b", f"{OPERATOR}-jobs")} <= roles
    args = _container(named(objects, "Deployment", OPERATOR))["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    bindings = of_kind(objects, "RoleBinding") + of_kind(objects, "ClusterRoleBinding")
    for binding in bindings:
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount" and subject["namespace"] == NAMESPACE


def test_health_agent_daemonset_reads_the_kernel_log_and_may_touch_only_nodes_and_events() -> None:
    objects = render()
    daemonset = named(objects, "DaemonSet", AGENT)
    container = _container(daemonset)
    assert container["command"] == ["trainguard", "health-agent"]
    assert "--in-cluster" in container["args"]
    node = next(e for e in container["env"] if e["name"] == c.ENV_NODE_NAME)
    assert node["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    (kernel,) = [m for m in container["volumeMounts"] if m["name"] == "kernel-log"]
    assert kernel["readOnly"] is True and kernel["mountPath"] == "/dev/kmsg"
    tolerated = {t["key"] for t in daemonset["spec"]["template"]["spec"]["tolerations"]}
    assert c.LABEL_NODE_HEALTH in tolerated
    agent_rules = [r for name, _, r in _rules(objects) if name.startswith(AGENT)]
    granted = {(g, res) for r in agent_rules for g in r["apiGroups"] for res in r["resources"]}
    assert granted == {("", "nodes"), ("events.k8s.io", "events")}


def test_deep_health_checks_are_one_job_per_chosen_node() -> None:
    jobs = of_kind(render(FULL), "Job")
    assert [j["spec"]["template"]["spec"]["nodeName"] for j in jobs] == ["node-0", "node-1"]
    args = _container(jobs[0])["args"]
    assert "--checks=InstanceStress,InstanceConnectivity" in args and "--node=node-0" in args
    assert not of_kind(render(), "Job"), "off by default: it takes nodes out of service"
    gpus = render({"deepHealthCheck": {"enabled": True, "nodes": ["n"], "gpusPerNode": 8}})
    limits = _container(of_kind(gpus, "Job")[0])["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 8 and limits["memory"] == "4Gi"


def test_mtc_server_answers_at_hyperpods_default_url() -> None:
    objects = render()
    service = named(objects, "Service", "ai-toolkit-gossip-headless")
    assert service["metadata"]["namespace"] == "aws-hyperpod"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == 9200
    daemonset = named(objects, "DaemonSet", "tg-trainguard-mtc")
    assert service["spec"]["selector"].items() <= _pod_labels(daemonset).items()
    assert _container(daemonset)["command"] == ["trainguard", "checkpoint", "serve"]
    elsewhere = render({"mtc": {"namespace": "ml", "createNamespace": False}})
    assert (
        named(elsewhere, "Service", "ai-toolkit-gossip-headless")["metadata"]["namespace"] == "ml"
    )
    assert not of_kind(elsewhere, "Namespace")


def _mtc_args(values: dict[str, Any] | None = None) -> list[str]:
    return list(_container(named(render(values), "DaemonSet", "tg-trainguard-mtc"))["args"])


def test_mtc_servers_find_their_peers_through_the_headless_service_unless_listed() -> None:
    name = "ai-toolkit-gossip-headless.aws-hyperpod.svc.cluster.local"
    default = _mtc_args()
    assert f"--peers-from-dns={name}" in default and "--peers-refresh-seconds=30" in default
    assert "--advertise-url=http://$(POD_IP):9200" in default  # its own place in the ring
    assert not [a for a in default if a.startswith("--peers=")]
    moved = _mtc_args({"mtc": {"namespace": "ml", "peerDiscovery": {"intervalSeconds": 5}}})
    assert "--peers-from-dns=ai-toolkit-gossip-headless.ml.svc.cluster.local" in moved
    assert "--peers-refresh-seconds=5" in moved
    listed = _mtc_args({"mtc": {"peers": ["http://10.0.0.1:9200", "http://10.0.0.2:9200"]}})
    assert "--peers=http://10.0.0.1:9200,http://10.0.0.2:9200" in listed
    assert not [a for a in listed if a.startswith("--peers-from-dns")]
    off = _mtc_args({"mtc": {"peerDiscovery": {"enabled": False}}})
    assert not [a for a in off if a.startswith("--peers")]


def test_the_mtc_memory_limit_leaves_room_for_the_shards_tmpfs_pages() -> None:
    """A Memory emptyDir is charged to the container: a limit below the shard budget would get
    the server OOM-killed where it should answer 507."""

    def limits(values: dict[str, Any]) -> dict[str, Any]:
        daemonset = named(render(values), "DaemonSet", "tg-trainguard-mtc")
        return dict(_container(daemonset)["resources"]["limits"])

    assert limits({}) == {"memory": "73Gi"}  # 64 GiB of shards, an 8 GiB upload, the process
    assert limits({"mtc": {"memoryGiB": 1, "maxShardGiB": 0.5}}) == {"memory": "2.5Gi"}
    given = {"mtc": {"resources": {"limits": {"memory": "100Gi", "cpu": "2"}}}}
    assert limits(given) == {"memory": "100Gi", "cpu": "2"}


@pytest.mark.parametrize(
    ("service_name", "monitor_name"),
    [(f"{OPERATOR}-metrics", OPERATOR), ("ai-toolkit-gossip-headless", "tg-trainguard-mtc")],
)
def test_servicemonitors_select_the_operator_and_mtc_services(
    service_name: str, monitor_name: str
) -> None:
    objects: list[dict[str, Any]] = render(FULL)
    service = named(objects, "Service", service_name)
    monitor = named(objects, "ServiceMonitor", monitor_name)
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def _containers(objects: list[Obj]) -> list[Obj]:
    return [
        container
        for o in objects
        if o["kind"] in ("Deployment", "DaemonSet", "Job")
        for container in o["spec"]["template"]["spec"]["containers"]
    ]


def _parse(words: list[str]) -> None:
    """Parse ``trainguard WORDS`` with the CLI's own commands (types checked, nothing run)."""
    command = typer.main.get_command(app)
    ctx = command.make_context("trainguard", [], resilient_parsing=True)
    while hasattr(command, "get_command"):
        name = words.pop(0)
        found = command.get_command(ctx, name)
        assert found is not None, f"no command {name!r}"
        command = found
        if hasattr(command, "get_command"):
            ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
    command.make_context(command.name, words, parent=ctx)


def test_every_rendered_command_line_parses_with_the_real_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each container's ``trainguard ...`` arguments are options the CLI has, of the right type;
    env the pod gets from the downward API (``NODE_NAME``, ``$(POD_IP)``) is set as a kubelet
    would."""
    containers = _containers(render(FULL))
    assert len(containers) == 5
    monkeypatch.setenv(c.ENV_NODE_NAME, "node-0")
    for container in containers:
        assert container["command"][0] == "trainguard"
        words = [*container["command"][1:], *container["args"]]
        _parse([w.replace("$(POD_IP)", "10.0.0.1") for w in words])
    with pytest.raises(Exception, match="No such option: --bogus"):
        _parse(["health-agent", "--bogus"])


def test_chart_rules_match_the_documented_cluster_role_less_the_fault_cli() -> None:
    """docs/kubernetes.md's ClusterRole (checked against the scenario suite's audit) is the
    operator's rules plus ``create`` on ConfigMaps, which only ``trainguard fault inject``
    (a user's command) sends; the chart grants the operator the same rules, scoped."""
    chart = {
        (g.group, g.resource, g.verb)
        for g in grants_of(render(), account=OPERATOR, namespace=NAMESPACE)
    }
    assert documented_rules() - chart == {("", "configmaps", "create")}
    assert chart <= documented_rules()


def test_notes_name_the_watched_namespaces_and_the_mtc_url_with_its_caveats() -> None:
    default = notes()
    assert "reconciles HyperPodPyTorchJobs in: default." in default
    url = "http://ai-toolkit-gossip-headless.aws-hyperpod.svc.cluster.local:9200"
    assert url in default and "Peers: each server resolves ai-toolkit-gossip-headless" in default
    moved = notes({"mtc": {"namespace": "ml", "peers": ["http://10.0.0.1:9200"]}})
    assert "ai-toolkit-gossip-headless.ml.svc" in moved and "InMemoryClientConfig" in moved
    assert "Peers: mtc.peers (1 server(s))" in moved and "mtc.peers is empty" not in moved
    alone = notes({"mtc": {"peerDiscovery": {"enabled": False}}})
    assert "mtc.peers is empty and mtc.peerDiscovery is off" in alone


def test_the_drift_check_refuses_what_the_chart_does_not_grant() -> None:
    """The comparison the RBAC drift test makes, on requests it must refuse and allow."""
    grants = grants_of(render(), account=OPERATOR, namespace=NAMESPACE)

    def request(verb: str, resource: str, namespace: str, sub: str = "") -> AuditEntry:
        group = "coordination.k8s.io" if resource == "leases" else ""
        return AuditEntry(verb, group, resource, sub, namespace)

    allowed = [request("list", "nodes", ""), request("get", "secrets", "default"),
               request("update", "leases", NAMESPACE)]  # fmt: skip
    refused = [request("create", "pods", "default", "exec"), request("get", "secrets", "other"),
               request("list", "secrets", ""), request("update", "leases", "default")]  # fmt: skip
    assert missing(grants, {needed(e) for e in allowed}) == []
    assert set(missing(grants, {needed(e) for e in refused})) == {needed(e) for e in refused}


def test_dockerfile_runs_as_the_user_the_chart_expects_with_trainguard_on_path() -> None:
    """The image (not built here) and the chart agree: uid/gid 65532, ``trainguard`` on PATH."""
    dockerfile = (CHART.parents[1] / "docker" / "Dockerfile").read_text()
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build"), "multi-stage"
    assert "USER 65532:65532" in dockerfile
    assert "ENV PATH=/opt/trainguard/bin:$PATH" in dockerfile
    deployment = named(render(), "Deployment", OPERATOR)
    security = _container(deployment)["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (65532, 65532)


def test_kueue_rights_follow_kueue_enabled() -> None:
    def kueue_rules(values: Obj) -> list[Obj]:
        return [r for _, _, r in _rules(render(values)) if "kueue.x-k8s.io" in r["apiGroups"]]

    assert {res for r in kueue_rules({}) for res in r["resources"]} == {
        "workloads", "workloads/status", "resourceflavors", "workloadpriorityclasses",
    }  # fmt: skip
    assert kueue_rules({"kueue": {"enabled": False}}) == []


def test_deep_health_job_names_are_unique_for_long_node_names_sharing_a_prefix() -> None:
    nodes = [f"ip-10-0-1-2.us-west-2.compute.internal{suffix}" for suffix in ("", "2", "3")]
    jobs = of_kind(render({"deepHealthCheck": {"enabled": True, "nodes": nodes}}), "Job")
    names = [j["metadata"]["name"] for j in jobs]
    assert len(set(names)) == 3 and all(len(name) <= 63 for name in names), names


def test_chart_packages_with_its_crd_dashboard_and_schema(tmp_path: Path) -> None:
    import tarfile

    import helm_python as helm

    packaged = Path(helm.package(str(CHART), destination=str(tmp_path)))
    with tarfile.open(packaged) as archive:
        names = set(archive.getnames())
    for member in ("crds/hyperpodpytorchjobs.yaml", "dashboards/trainguard.json",
                   "values.schema.json", "templates/NOTES.txt"):  # fmt: skip
        assert f"trainguard/{member}" in names
