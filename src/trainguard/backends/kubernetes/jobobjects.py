"""The objects a job owns besides its pods: the job object reference and the headless Service.

(The agent-token Secret is `agenttoken`'s: one function makes it for the store and the
backend.) Pure manifests, each owned by the job through a controller ownerReference so Kubernetes'
garbage collector removes them with it (the backend also deletes them explicitly on release).
The headless Service gives every pod of the job a DNS name for humans and
tools. The controller itself never resolves it: it reaches each agent at its pod IP.
"""

from __future__ import annotations

import re
from typing import Any

from trainguard import constants as c
from trainguard.backends.base import PodLaunch
from trainguard.backends.kubernetes.podspec import AGENT_PORT, AGENT_PORT_NAME, owner_reference

Manifest = dict[str, Any]
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
"""What a Service name must be (a DNS-1035 label: starts with a letter, at most 63)."""


def job_object(launch: PodLaunch) -> Manifest:
    """The launch's job as far as its children need it (kind, name, namespace, uid): the
    owner `agenttoken.ensure_token_secret` points the Secret at."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": launch.job, "namespace": launch.namespace, "uid": launch.job_uid},
    }


def service_name_ok(job: str) -> bool:
    """Whether ``job`` can name a Service (job names may be DNS subdomains, Services not)."""
    return len(job) <= 63 and DNS_1035_LABEL.match(job) is not None


def headless_service(launch: PodLaunch) -> Manifest:
    """The headless Service ``<job>`` selecting the job's pods (``HPJob=<job>``)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": launch.job,
            "namespace": launch.namespace,
            "labels": {c.LABEL_JOB: launch.job},
            "ownerReferences": [owner_reference(launch)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": {c.LABEL_JOB: launch.job},
            "publishNotReadyAddresses": True,
            "ports": [{"name": AGENT_PORT_NAME, "port": AGENT_PORT, "targetPort": AGENT_PORT_NAME}],
        },
    }


def owned_by(obj: Manifest, uid: str) -> bool:
    """Whether ``obj`` (wire form) has an ownerReference to the object with ``uid``."""
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in references)
