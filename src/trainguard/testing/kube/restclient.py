"""A small Kubernetes REST client over httpx for the fake cluster's own controllers.

The scheduler, kubelets and node lifecycle controller talk to the API server over HTTP like their
real counterparts (a bearer token, JSON, ``watch=1`` streams), so the fake server is exercised by
its own cluster. It is deliberately not lightkube: the layers contract keeps lightkube in the
operator and the Kubernetes backend, the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

JSON = dict[str, Any]


class ApiError(Exception):
    """The API server answered with an error status; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def pods_path(namespace: str, name: str = "", subresource: str = "") -> str:
    """``/api/v1/namespaces/<ns>/pods[/<name>[/<sub>]]``."""
    return "/".join(p for p in (f"/api/v1/namespaces/{namespace}/pods", name, subresource) if p)


def nodes_path(name: str = "", subresource: str = "") -> str:
    """``/api/v1/nodes[/<name>[/<sub>]]``."""
    return "/".join(p for p in ("/api/v1/nodes", name, subresource) if p)


class KubeClient:
    """Blocking JSON requests with the cluster's token; 4xx/5xx raise `ApiError`."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        response = self._http.request(method, path, json=body, params=params)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _message(response))
        return dict(response.json()) if response.content else {}

    def get(self, path: str) -> JSON | None:
        """The object at ``path``; None on 404."""
        try:
            return self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, path: str, *, grace_seconds: int | None = None, uid: str = "") -> None:
        """DELETE with ``gracePeriodSeconds`` and a uid precondition; a 404 is no error."""
        body: JSON = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", path, body=body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    @contextmanager
    def watch(self, path: str, resource_version: str) -> Iterator[Iterator[JSON]]:
        """A watch stream from ``resource_version``: yields its decoded events."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "60",
        }
        timeout = httpx.Timeout(10.0, read=None)
        with self._http.stream("GET", path, params=params, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, _message(response))
            yield (json.loads(line) for line in response.iter_lines() if line.strip())


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text
