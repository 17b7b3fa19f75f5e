"""A fake Kubernetes API server for tests: real HTTP, real clients, no cluster.

No Docker and no kube-apiserver binary exist where trainguard's tests run, so the operator is
tested against this fake, held to the real API's rules and driven by real clients (lightkube,
kubectl, our httpx kubelet).

Public API:
    `KubeApiServer` — ``server.start()`` serves on ``server.url`` (127.0.0.1, a free port) from a
    thread; ``server.token``, ``server.write_kubeconfig(path, namespace=...)``, ``server.stop()``,
    context manager. In process: ``server.objects`` (`ObjectStore`: ``get/list/find``,
    ``revision``, ``compact()``), ``server.api`` (`KubeApi`, the verbs without HTTP),
    ``server.faults`` (`Faults.inject(verb=, resource=, status=409|410|429|500|503|DROP,
    times=)`), ``server.audit`` (`AuditLog` of `AuditEntry`), ``server.register_log_source``.
    Seams for pluggable fidelity: ``server.api.patch_handlers.register(content_type, fn)``,
    ``server.set_table_renderer(fn)``, ``server.set_openapi(fn)``.

Served: discovery (legacy and aggregated v2), ``/version``, ``/healthz``, ``/livez``,
``/readyz``; namespaces, nodes, pods (+status, +binding, +log), services, secrets,
configmaps, core/v1 events, coordination.k8s.io/v1 leases, apiextensions.k8s.io/v1 CRDs (and
the resources they define, with status subresource, schema pruning/validation and CEL).

Known differences from a real API server (be aware when a test passes here):
    - One storage version per resource version: two served versions of a CRD keep separate
      objects (no conversion).
    - Garbage collection runs inline after each delete (the real one is asynchronous);
      Foreground deletion is implemented with the ``foregroundDeletion`` finalizer but ignores
      ``blockOwnerDeletion`` (every dependent blocks).
    - ``limit``/``continue`` pages are cut from the current state, not a snapshot at the first
      page's revision; ``resourceVersionMatch=Exact`` lists are served only at the current
      revision check (older, still-kept revisions answer the current state).
    - No admission plugins (no defaults for Pods beyond ``status.phase: Pending``, no
      ServiceAccount injection, no quota), no RBAC: the one token is cluster-admin.
    - Services get no ``clusterIP`` unless the body sets one (``None`` for headless).
    - Namespace deletion removes the namespace object only; its contents stay.
    - Plain HTTP with a bearer token; no TLS, no client certificates.
    - No ``managedFields`` unless the server-side apply handler writes them.
"""

from trainguard.testing.kube.api import KubeApi
from trainguard.testing.kube.audit import AuditEntry, AuditLog
from trainguard.testing.kube.faults import DROP, Faults
from trainguard.testing.kube.objects import ObjectStore, WatchEvent
from trainguard.testing.kube.resources import ResourceType
from trainguard.testing.kube.server import KubeApiServer

__all__ = [
    "DROP",
    "AuditEntry",
    "AuditLog",
    "Faults",
    "KubeApi",
    "KubeApiServer",
    "ObjectStore",
    "ResourceType",
    "WatchEvent",
]
