"""A job's agent token lives in its Secret ``<job>-agent-token`` (key ``token``), not in status.

Why a Secret: anyone allowed to ``get hyperpodpytorchjobs`` can read a job's status, and the
token lets its holder stop or signal the job's agents; a Secret has RBAC of its own, and a Pod
reads it through ``secretKeyRef`` without the token appearing in the Pod object. The store and
the backend both need the Secret — the store because the token is part of the job's state it
must hand back to a new operator replica, the backend because every Pod refers to it — so
`ensure_token_secret` is the one function that makes it, for both.

Rules: the Secret is owned by the job (controller ownerReference: the garbage collector takes
it with the job) and labelled ``HPJob=<job>`` (the store caches Secrets by that label). A job's
token is fixed once its Secret exists; a Secret of the same name left by an older job (another
uid) is replaced.
"""

from __future__ import annotations

import base64
from contextlib import suppress
from typing import Any

from trainguard import constants as c
from trainguard.backends.kubernetes.caches import ObjectCache
from trainguard.backends.kubernetes.client import SECRETS, KubeClient
from trainguard.errors import ConflictError, NotFoundError

SECRET_SUFFIX = "-agent-token"
TOKEN_KEY = "token"


def secret_name(job: str) -> str:
    """The Secret holding ``job``'s agent token."""
    return f"{job}{SECRET_SUFFIX}"


def secret_token(secret: dict[str, Any] | None) -> str | None:
    """The token a Secret (wire form) holds, or None."""
    if secret is None:
        return None
    text = (secret.get("stringData") or {}).get(TOKEN_KEY)
    if text is not None:
        return str(text)
    data = (secret.get("data") or {}).get(TOKEN_KEY)
    return None if data is None else base64.b64decode(data).decode()


def job_token(
    client: KubeClient, secrets: ObjectCache, job: dict[str, Any], *, expected: bool
) -> str:
    """The agent token of job object ``job`` ("" when it has none yet): from the cached
    Secret, or — when the Secret is ``expected`` (the status names it) but the cache has not
    seen it yet — from the API."""
    meta = job["metadata"]
    namespace, name = meta.get("namespace", ""), secret_name(meta["name"])
    secret = secrets.get(namespace, name)
    if secret is None and expected:
        try:
            secret = client.get(SECRETS, name, namespace=namespace)
        except NotFoundError:
            return ""
        secrets.remember(secret)
    if secret is None or not owned_by(secret, meta.get("uid", "")):
        return ""
    return secret_token(secret) or ""


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether ``obj`` has an ownerReference to the object with ``uid``."""
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in references)


def token_secret(job: dict[str, Any], token: str) -> dict[str, Any]:
    """The Secret of job object ``job`` holding ``token``."""
    meta = job["metadata"]
    owner = {
        "apiVersion": job.get("apiVersion", c.API_VERSION), "kind": job.get("kind", c.KIND),
        "name": meta["name"], "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {c.LABEL_JOB: meta["name"]},
            "ownerReferences": [owner],
        },
        "type": "Opaque",
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def ensure_token_secret(client: KubeClient, job: dict[str, Any], token: str) -> dict[str, Any]:
    """The Secret of job object ``job`` holding ``token``: created, or the existing one.

    Raises:
        ConflictError: the job's Secret holds another token (a token never changes).
    """
    wanted = token_secret(job, token)
    name, namespace, uid = secret_name(job["metadata"]["name"]), job["metadata"]["namespace"], (
        job["metadata"]["uid"]
    )  # fmt: skip
    for _ in range(3):
        try:
            return client.create(SECRETS, wanted)
        except ConflictError:
            pass
        try:
            existing = client.get(SECRETS, name, namespace=namespace)
        except NotFoundError:
            continue  # deleted in between: create again
        if not owned_by(existing, uid):  # an older job's: replace it
            _delete(client, name, namespace)
            continue
        if secret_token(existing) != token:
            raise ConflictError(
                f"secret {namespace}/{name} holds another agent token; a job's token is fixed"
            )
        return existing
    raise ConflictError(f"secret {namespace}/{name} kept changing while it was being ensured")


def _delete(client: KubeClient, name: str, namespace: str) -> None:
    with suppress(NotFoundError):
        client.delete(SECRETS, name, namespace=namespace)
