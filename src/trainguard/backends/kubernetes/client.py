"""The Kubernetes API as the store and the cache use it: lightkube, plain dicts, our errors.

Why a wrapper around `lightkube.Client`: the store maps API objects to records field by field,
so it reads and writes plain JSON dicts (the wire form, the same the fake API server and
``kubectl get -o json`` show) instead of lightkube's typed models; and every call needs the
same two things lightkube leaves to its user — retries and error mapping:

- **Retries with backoff** on 429 (honouring ``Retry-After``), on 5xx, and on refused or
  dropped connections — but only where repeating the call cannot do something twice. A refused
  connection (nothing was sent) and a 429 (the server did nothing) are retried for every call;
  a 5xx or a connection dropped mid-request only for idempotent ones (get, list, delete, merge
  patches, and updates guarded by a resourceVersion, which can at worst answer a spurious 409).
  A create is not retried after it may have landed: the caller sees the error instead of a
  duplicate or a confusing 409.
- **Errors mapped at the boundary**: 404 is `NotFoundError`, 409 `ConflictError`, 410
  `ResourceExpired` (a watch or list asked for history the server no longer has), anything else
  `KubeApiError` (a `StoreError`, temporary for 429/5xx/transport failures), each naming the
  object and the verb.

Objects are addressed by lightkube resource classes (`JOBS` is our CRD's generic resource);
namespace ``"*"`` lists or watches all namespaces.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from lightkube import ApiError, Client, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.selector import build_selector
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Node, Pod, Secret
from lightkube.resources.events_v1 import Event
from lightkube.types import PatchType

from trainguard import constants as c
from trainguard.errors import ConflictError, NotFoundError, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
Res = Any
"""A lightkube resource class (lightkube's overloads take no common bound for them)."""
ALL_NAMESPACES = "*"

JOBS: Any = create_namespaced_resource(c.GROUP, c.VERSION, c.KIND, c.PLURAL)
"""Our custom resource (``hyperpodpytorchjobs.sagemaker.amazonaws.com``) for lightkube."""
PODS = Pod
NODES = Node
EVENTS = Event
LEASES = Lease
CONFIGMAPS = ConfigMap
SECRETS = Secret


class KubeApiError(StoreError):
    """The API server refused a request (other than 404/409/410) or could not be reached."""

    def __init__(self, message: str, *, code: int | None, temporary: bool) -> None:
        super().__init__(message)
        self.code = code
        self.temporary = temporary


class ResourceExpired(KubeApiError):
    """410 Gone: the resourceVersion asked for is older than the server's history (relist)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=410, temporary=True)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a call is repeated."""

    attempts: int = 6
    """Tries in all, the first included."""
    initial_delay: float = 0.05
    """Seconds before the first retry; doubled each time."""
    max_delay: float = 2.0
    """Longest wait between two tries (a larger ``Retry-After`` is capped to it too)."""


def load_config(kubeconfig: Path | None, *, context: str | None = None) -> SingleConfig:
    """The kubeconfig file's configuration (its current context, or ``context``), or the
    in-cluster one (service account) without a file."""
    config = (
        KubeConfig.from_service_account()
        if kubeconfig is None
        else KubeConfig.from_file(kubeconfig)
    )
    single = config.get(context_name=context)
    if single is None:
        raise KubeApiError(f"{kubeconfig}: no context {context!r}", code=None, temporary=False)
    return single


class KubeClient:
    """A lightkube client speaking dicts, retrying what is safe to retry, raising our errors.

    Args:
        config: where the API server is and how to authenticate (`load_config`).
        field_manager: the name our writes are recorded under (``managedFields``).
        retry: the retry policy.
        sleep: waits between retries (tests pass a recorder).
        transport: an httpx transport instead of the network (tests).
    """

    def __init__(
        self,
        config: SingleConfig | KubeConfig,
        *,
        field_manager: str = c.CONTROLLER_COMPONENT,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self._client = Client(
            config, field_manager=field_manager, lazy=False, trust_env=False, transport=transport
        )
        self.namespace: str = self._client.namespace
        self.retry, self._sleep = retry, sleep
        self._options = (config, field_manager, transport)

    def fork(self) -> KubeClient:
        """A client like this one with its own connections, for another thread.

        Each informer thread holds a watch stream open for minutes on a connection pool of
        its own, apart from the store's writes, and closes it itself when it stops (closing
        a socket another thread is reading lets the OS reuse its descriptor; see `cache`).
        """
        config, field_manager, transport = self._options
        return KubeClient(
            config, field_manager=field_manager, retry=self.retry, sleep=self._sleep,
            transport=transport,
        )  # fmt: skip

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # --- calls -----------------------------------------------------------------------------

    def get(self, res: Res, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        """The object; `NotFoundError` if missing."""
        what = _describe("get", res, name, namespace)
        return self._call(what, lambda: self._send("get", res, name=name, namespace=namespace))

    def list(
        self, res: Res, *, namespace: str | None = None, labels: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every matching object and the list's resourceVersion (where a watch starts)."""
        what = _describe("list", res, None, namespace)
        selector = {"labelSelector": _selector(labels)}

        def run() -> tuple[list[dict[str, Any]], str]:
            found = self._send("list", res, namespace=namespace, params=selector)
            return _items(found), str((found.get("metadata") or {}).get("resourceVersion", ""))

        return self._call(what, run)

    def watch(
        self,
        res: Res,
        *,
        namespace: str | None = None,
        labels: dict[str, Any] | None = None,
        resource_version: str,
        timeout: int | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` changes after ``resource_version``, bookmarks included; ends
        when the server closes the stream. Not retried: the caller resumes (`cache`).

        lightkube's ``Client.watch`` suits none of this: it cannot ask for bookmarks, decodes
        each object into its typed model (a bookmark, which carries only a resourceVersion,
        fails the models' required fields: an Event's ``eventTime``), and re-watches on its
        own when the server ends a watch. So the request is prepared by lightkube's generic
        client and streamed here, one JSON line per event; an ``ERROR`` event raises its
        status (410: `ResourceExpired`).
        """
        what = _describe("watch", res, None, namespace)
        generic = self._client._client
        params = {
            "resourceVersion": resource_version, "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout, "labelSelector": _selector(labels),
        }  # fmt: skip
        request = generic.prepare_request(
            "list", res=res, namespace=namespace, watch=True,
            params={k: v for k, v in params.items() if v is not None},
        )  # fmt: skip
        try:
            with generic._client.stream(
                request.method, request.url, params=request.params, timeout=generic._watch_timeout
            ) as response:
                if response.is_error:
                    response.read()
                    _raise_for_status(response)
                for line in response.iter_lines():
                    if line:
                        yield _watch_event(what, line)
        except (httpx2.HTTPError, ApiError) as exc:
            raise _mapped(what, exc) from exc

    def create(self, res: Res, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``; `ConflictError` if it exists. Retried only where nothing landed."""
        meta = obj.get("metadata", {})
        what = _describe("create", res, meta.get("name"), meta.get("namespace"))
        return self._call(what, lambda: self._send("post", res, body=obj), idempotent=False)

    def replace(self, res: Res, obj: dict[str, Any]) -> dict[str, Any]:
        """Update ``obj`` as a whole (``res.Status``: its status); with its resourceVersion
        a stale object is refused with `ConflictError`."""
        meta = obj.get("metadata", {})
        what = _describe("update", res, meta.get("name"), meta.get("namespace"))
        return self._call(what, lambda: self._send("put", res, body=obj))

    def patch(
        self, res: Res, name: str, patch: dict[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        """Apply a JSON merge patch (None deletes a key; a ``metadata.resourceVersion`` in
        the patch makes it conditional)."""
        what = _describe("patch", res, name, namespace)
        merge = {"Content-Type": PatchType.MERGE.value}
        return self._call(
            what,
            lambda: self._send(
                "patch", res, name=name, namespace=namespace, body=patch, headers=merge
            ),
        )

    def delete(
        self, res: Res, name: str, *, namespace: str | None = None, grace: int | None = None
    ) -> None:
        """Delete the object (background propagation: the garbage collector takes what it
        owns) within ``grace`` seconds (None: its own period; 0: at once, force); raises
        `NotFoundError` if it is gone already."""
        what = _describe("delete", res, name, namespace)
        params = {"gracePeriodSeconds": grace}
        self._call(
            what, lambda: self._send("delete", res, name=name, namespace=namespace, params=params)
        )

    def _send(
        self, method: str, res: Res, *, name: str | None = None, namespace: str | None = None,
        body: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """One request whose body goes out as the JSON it is, and whose answer comes back so.

        lightkube builds the path; its typed models never carry the objects: they reformat
        what they parse — a ``MicroTime`` (an Event's ``eventTime``, a Lease's ``renewTime``)
        went out without its microseconds, which an API server refuses.
        """
        generic = self._client._client
        typed = _typed(res, body) if method in ("post", "put") and body is not None else body
        request = generic.prepare_request(
            method, res=res, obj=typed, name=name, namespace=namespace, params=params,
            headers=headers,
        )  # fmt: skip
        request.data = body
        response = generic.send(generic.build_adapter_request(request))
        _raise_for_status(response)
        answer = response.json() if response.content else {}
        return answer if isinstance(answer, dict) else {}

    # --- retries ---------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        delay = self.retry.initial_delay
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return fn()
            except (httpx2.HTTPError, ApiError) as exc:
                wait = _retry_after(exc, idempotent=idempotent, default=delay)
                if wait is None or attempt == self.retry.attempts:
                    raise _mapped(what, exc) from exc
                log.info("%s: %s; retrying in %.2f s", what, _reason(exc), wait)
                self._sleep(min(wait, self.retry.max_delay))
                delay = min(delay * 2, self.retry.max_delay)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _raise_for_status(response: httpx2.Response) -> None:
    """Raise for an error answer: lightkube's `ApiError` (with the server's ``Status``) when
    the body is JSON, else httpx's error."""
    if not response.is_error:
        return
    if "json" not in response.headers.get("Content-Type", ""):
        response.raise_for_status()
    raise ApiError(request=response.request, response=response)


def _items(found: dict[str, Any]) -> list[dict[str, Any]]:
    """A list's items, each with the ``apiVersion`` and ``kind`` the server leaves out."""
    kind = str(found.get("kind", "")).removesuffix("List")
    head = {"apiVersion": found.get("apiVersion", ""), "kind": kind}
    return [{**head, **item} for item in found.get("items") or []]


def _watch_event(what: str, line: str) -> tuple[str, dict[str, Any]]:
    """One line of a watch stream as ``(type, object)``; an ``ERROR`` line raises."""
    event = json.loads(line)
    kind, obj = str(event.get("type", "")), event.get("object") or {}
    if kind == "ERROR":
        code = obj.get("code")
        message = f"{what}: {code} {obj.get('message', '')}".rstrip()
        if code == 410:
            raise ResourceExpired(message)
        raise KubeApiError(message, code=code, temporary=code is None or code >= 500)
    return kind, obj


def _retry_after(exc: Exception, *, idempotent: bool, default: float) -> float | None:
    """Seconds to wait before repeating the call that raised ``exc``, or None: do not."""
    code = _code(exc)
    if code == 429:
        return _header_seconds(exc) or default
    if code is not None:
        return default if idempotent and code >= 500 else None
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return default  # nothing reached the server
    return default if idempotent and isinstance(exc, httpx2.TransportError) else None


def _header_seconds(exc: Exception) -> float | None:
    response = exc.response if isinstance(exc, httpx2.HTTPStatusError) else None
    value = None if response is None else response.headers.get("Retry-After")
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _code(exc: Exception) -> int | None:
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.code:
        return int(exc.status.code)
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.message:
        return f"{exc.status.code} {exc.status.message}"
    return f"{type(exc).__name__}: {exc}"


def _mapped(what: str, exc: Exception) -> Exception:
    code, reason = _code(exc), _reason(exc)
    message = f"{what}: {reason}"
    if code == 404:
        return NotFoundError(message)
    if code == 409:
        return ConflictError(message)
    if code == 410:
        return ResourceExpired(message)
    temporary = code is None or code == 429 or code >= 500
    return KubeApiError(message, code=code, temporary=temporary)


def _describe(verb: str, res: Res, name: str | None, namespace: str | None) -> str:
    kind = res._api_info.resource.kind
    where = f"{namespace}/" if namespace and namespace != ALL_NAMESPACES else ""
    return f"{verb} {kind} {where}{name or ''}".rstrip()


def _selector(labels: dict[str, Any] | None) -> str | None:
    """``key=value`` (None: the key exists), as lightkube's ``list`` builds it."""
    return build_selector(labels) if labels else None


def _typed(res: Res, obj: dict[str, Any]) -> Any:
    return res.from_dict(obj)
