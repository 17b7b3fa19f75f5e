"""The Pod manifest of one `PodLaunch`: the job's pod template plus what the operator adds.

A pure function (no client, no clock), so every field is table-tested and the manifest is
the same on the fake cluster and on a real one. The operator keeps the user's template —
metadata, nodeSelector, tolerations, volumes, resources, serviceAccountName,
securityContext... — and adds only what HyperPod's operator adds and our agent needs:

- name ``<job>-<group>-<index>-<attempt>``: `PodMaker` names a pod ``<job>-<group>-<index>``
  with ``index`` counting up over the job's whole life (kept in the job's status, so a new
  operator replica continues the count); the restart attempt is appended here. A name is
  therefore never handed out twice, and a pod that is still terminating never blocks a new one.
- labels ``HPJob``, replica group, node rank, restart attempt, spare; a controller
  ownerReference to the job (garbage collection removes the pod with the job);
- ``restartPolicy: Never`` (the controller, not the kubelet, restarts workers);
- on the first container: port 8080 named ``agent``; env with the agent token from the job's
  Secret (``secretKeyRef``), the agent's bind address from the downward API (``status.podIP``:
  every pod has its own IP, and on the fake cluster many pods share one machine), pod and node
  name, job identity, ``NNODES``/``NPROC_PER_NODE``; the node-local checkpoint memory as an
  ``emptyDir`` (medium Memory) mounted at `MEMORY_MOUNT_PATH`;
- placement stays with the scheduler: required node affinity on the health label
  (``In [Schedulable]``) and ``kubernetes.io/hostname NotIn`` the nodes the job avoids, AND-ed
  into every term the template already requires; the node the controller's placement chose
  becomes a *preferred* term.
"""

from __future__ import annotations

import copy
from typing import Any

from trainguard import constants as c
from trainguard.backends.base import PodLaunch
from trainguard.backends.kubernetes.agenttoken import TOKEN_KEY, secret_name
from trainguard.backends.kubernetes.entrypoint import container_command
from trainguard.errors import BackendError
from trainguard.names import DNS_SUBDOMAIN_RE

AGENT_PORT = 8080
"""The agent's port in every pod (HyperPod's agent listens on 8080 too)."""
AGENT_PORT_NAME = "agent"
MEMORY_VOLUME = "trainguard-memory"
MEMORY_MOUNT_PATH = "/var/run/trainguard/memory"
PREFERRED_NODE_WEIGHT = 100
MAX_POD_NAME = 253

Manifest = dict[str, Any]


def pod_name(launch: PodLaunch) -> str:
    """``<job>-<group>-<index>-<attempt>`` (``launch.pod`` is ``<job>-<group>-<index>``)."""
    name = f"{launch.pod}-{launch.attempt}"
    if len(name) > MAX_POD_NAME or not DNS_SUBDOMAIN_RE.match(name):
        raise BackendError(f"pod name {name!r} is not a DNS subdomain of at most 253 characters")
    return name


def owner_reference(launch: PodLaunch) -> Manifest:
    """The controller ownerReference from a child object to the launch's job."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "name": launch.job,
        "uid": launch.job_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_labels(launch: PodLaunch) -> dict[str, str]:
    """The template's labels, then ours (ours win: the controller selects pods by them)."""
    labels = dict(launch.labels)
    labels.update(
        {
            c.LABEL_JOB: launch.job,
            c.LABEL_REPLICA_SPEC: launch.replica_spec,
            c.LABEL_RESTART_ATTEMPT: str(launch.attempt),
            c.LABEL_SPARE: "true" if launch.spare else "false",
        }
    )
    if launch.node_rank is not None:
        labels[c.LABEL_NODE_RANK] = str(launch.node_rank)
    return labels


def pod_manifest(launch: PodLaunch) -> Manifest:
    """The Pod to create for ``launch`` (a new dict; the launch's template is not changed).

    Raises:
        BackendError: the pod name is not a valid Kubernetes name.
    """
    template = _template(launch)
    metadata = template.get("metadata") or {}
    spec: Manifest = template["spec"]
    spec["restartPolicy"] = "Never"
    spec["containers"][0] = _agent_container(spec["containers"][0], launch)
    spec["volumes"] = [
        *(v for v in spec.get("volumes") or [] if v.get("name") != MEMORY_VOLUME),
        {"name": MEMORY_VOLUME, "emptyDir": {"medium": "Memory"}},
    ]
    spec["affinity"] = with_node_affinity(
        spec.get("affinity"), avoid=launch.avoid, preferred=launch.node
    )
    _admitted(spec, launch)
    pod_metadata: Manifest = {
        "name": pod_name(launch),
        "namespace": launch.namespace,
        "labels": pod_labels(launch),
        "ownerReferences": [owner_reference(launch)],
    }
    if metadata.get("annotations"):
        pod_metadata["annotations"] = dict(metadata["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata, "spec": spec}


def _admitted(spec: Manifest, launch: PodLaunch) -> None:
    """Add the admission's node selector and tolerations (Kueue's flavors) to ``spec``."""
    if launch.node_selector:
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **launch.node_selector}
    if launch.tolerations:
        have = spec.get("tolerations") or []
        spec["tolerations"] = [*have, *(t for t in launch.tolerations if t not in have)]


def _template(launch: PodLaunch) -> Manifest:
    if launch.template is None:
        return {"spec": {"containers": [launch.container.to_manifest()]}}
    return copy.deepcopy(launch.template.to_manifest())


def _agent_container(container: Manifest, launch: PodLaunch) -> Manifest:
    container = dict(container)
    command = container_command(
        container.get("command"), container.get("args"), nproc_per_node=launch.nproc_per_node
    )
    container.update(command)
    ours = agent_env(launch)
    names = {var["name"] for var in ours}
    container["env"] = [
        *(var for var in container.get("env") or [] if var["name"] not in names),
        *ours,
    ]
    ports = [p for p in container.get("ports") or [] if p.get("containerPort") != AGENT_PORT]
    container["ports"] = [
        *ports,
        {"name": AGENT_PORT_NAME, "containerPort": AGENT_PORT, "protocol": "TCP"},
    ]
    mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != MEMORY_VOLUME]
    container["volumeMounts"] = [*mounts, {"name": MEMORY_VOLUME, "mountPath": MEMORY_MOUNT_PATH}]
    return container


def agent_env(launch: PodLaunch) -> list[Manifest]:
    """The env the operator sets on the agent container (after the template's, which it
    replaces where names collide; ``launch.extra_env`` last)."""
    literal = {
        c.ENV_JOB_NAME: launch.job,
        c.ENV_JOB_NAMESPACE: launch.namespace,
        c.ENV_JOB_UID: launch.job_uid,
        c.ENV_NNODES: str(launch.nnodes),
        c.ENV_NPROC_PER_NODE: launch.nproc_per_node,
        c.ENV_AGENT_PORT: str(AGENT_PORT),
        c.ENV_SHM_DIR: MEMORY_MOUNT_PATH,
        "PYTHONUNBUFFERED": "1",
    }
    env: list[Manifest] = [
        _field_env(c.ENV_POD_NAME, "metadata.name"),
        _field_env(c.ENV_NODE_NAME, "spec.nodeName"),
        _field_env(c.ENV_AGENT_HOST, "status.podIP"),
        {
            "name": c.ENV_AGENT_TOKEN,
            "valueFrom": {"secretKeyRef": {"name": secret_name(launch.job), "key": TOKEN_KEY}},
        },
    ]
    env += [{"name": k, "value": v} for k, v in literal.items() if k not in launch.extra_env]
    env += [{"name": k, "value": v} for k, v in launch.extra_env.items()]
    return env


def _field_env(name: str, path: str) -> Manifest:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def with_node_affinity(
    affinity: Manifest | None, *, avoid: tuple[str, ...], preferred: str | None
) -> Manifest:
    """``affinity`` (the template's, not changed) with the operator's node constraints.

    Required node-selector terms are OR-ed by Kubernetes and the expressions inside one term
    AND-ed, so our expressions join *every* term the template has (or form the only term).
    """
    result: Manifest = copy.deepcopy(affinity) if affinity else {}
    node = result.setdefault("nodeAffinity", {})
    required = node.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or [{}]
    ours = required_expressions(avoid)
    required["nodeSelectorTerms"] = [
        {**term, "matchExpressions": [*(term.get("matchExpressions") or []), *ours]}
        for term in terms
    ]
    if preferred:
        hint = {
            "weight": PREFERRED_NODE_WEIGHT,
            "preference": {
                "matchExpressions": [
                    {"key": c.LABEL_HOSTNAME, "operator": "In", "values": [preferred]}
                ]
            },
        }
        node["preferredDuringSchedulingIgnoredDuringExecution"] = [
            *(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []),
            hint,
        ]
    return result


def required_expressions(avoid: tuple[str, ...]) -> list[Manifest]:
    """Healthy nodes only, and none the job avoids (repeat offenders)."""
    expressions: list[Manifest] = [
        {"key": c.LABEL_NODE_HEALTH, "operator": "In", "values": [c.HEALTH_SCHEDULABLE]}
    ]
    if avoid:
        expressions.append(
            {"key": c.LABEL_HOSTNAME, "operator": "NotIn", "values": sorted(set(avoid))}
        )
    return expressions
