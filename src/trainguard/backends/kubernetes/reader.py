"""Where the backend reads Pods, Nodes and Secrets: a small interface, a cache or the API.

`KubernetesBackend` asks "is this pod still there, in what state" and "which nodes exist" once
per controller step. The operator answers those from its list+watch caches (`InformerReader`,
no request per question); tests and tools without a cache ask the API each time
(`ClientReader`). Objects come back in their wire form (camelCase dicts), the form the pure
mappings in `trainguard.backends.kubernetes.nodes` take. Secrets are never cached (the
operator has no reason to hold every Secret of the cluster): both readers GET the one asked for.
"""

from __future__ import annotations

from typing import Any, Protocol

from lightkube.resources.core_v1 import Secret

from trainguard import constants as c
from trainguard.backends.kubernetes.caches import ObjectCache
from trainguard.backends.kubernetes.client import ALL_NAMESPACES, NODES, PODS, KubeClient
from trainguard.errors import NotFoundError

Manifest = dict[str, Any]


class ObjectReader(Protocol):
    """Read access to the objects the backend looks at."""

    def pod(self, namespace: str, name: str) -> Manifest | None:
        """The Pod, or None when it does not exist."""

    def pods(self) -> list[Manifest]:
        """Every Pod the backend created (labelled with its job), terminating ones included."""

    def nodes(self) -> list[Manifest]:
        """Every Node of the cluster."""

    def secret(self, namespace: str, name: str) -> Manifest | None:
        """The Secret, or None when it does not exist."""


class ClientReader:
    """`ObjectReader` over the API: one request per question.

    Args:
        client: the API client.
    """

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def pod(self, namespace: str, name: str) -> Manifest | None:
        """GET the Pod."""
        return _get_or_none(self.client, PODS, namespace, name)

    def pods(self) -> list[Manifest]:
        """LIST the job pods of every namespace."""
        return self.client.list(PODS, namespace=ALL_NAMESPACES, labels={c.LABEL_JOB: None})[0]

    def nodes(self) -> list[Manifest]:
        """LIST the Nodes."""
        return self.client.list(NODES)[0]

    def secret(self, namespace: str, name: str) -> Manifest | None:
        """GET the Secret."""
        return _get_or_none(self.client, Secret, namespace, name)


class InformerReader:
    """`ObjectReader` over the operator's caches of the job pods and of the nodes.

    Args:
        client: the API client (for Secrets).
        pods: the informer of pods labelled ``HPJob`` (every pod the backend creates).
        nodes: the informer of nodes.
    """

    def __init__(self, client: KubeClient, *, pods: ObjectCache, nodes: ObjectCache) -> None:
        self.client, self._pods, self._nodes = client, pods, nodes

    def pod(self, namespace: str, name: str) -> Manifest | None:
        """The cached Pod."""
        return self._pods.get(namespace, name)

    def pods(self) -> list[Manifest]:
        """The cached job pods."""
        return self._pods.items()

    def nodes(self) -> list[Manifest]:
        """The cached Nodes."""
        return self._nodes.items()

    def secret(self, namespace: str, name: str) -> Manifest | None:
        """GET the Secret."""
        return _get_or_none(self.client, Secret, namespace, name)


def _get_or_none(client: KubeClient, res: Any, namespace: str, name: str) -> Manifest | None:
    try:
        return client.get(res, name, namespace=namespace)
    except NotFoundError:
        return None
