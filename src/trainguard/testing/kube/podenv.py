"""What a container sees: its environment, command line and working directory, as a kubelet
resolves them from the Pod spec — pure, so the rules are tested without processes.

The fake kubelet runs containers as plain processes on this machine: there is no image and no
mount namespace. So the rules that a runtime would apply inside the container are applied to the
strings instead:

- ``env`` literals, ``$(VAR)`` references (``$$`` escapes), ``valueFrom`` secretKeyRef /
  configMapKeyRef / fieldRef, and ``envFrom``; a missing Secret/ConfigMap or key is the
  kubelet's ``CreateContainerConfigError`` with its message (``secret "x" not found``).
- Volumes live in per-pod directories. Any env value, ``workingDir``, command or argument that
  starts with a volume's ``mountPath`` is rewritten to that directory (a fake limitation: a path
  built at run time inside the process is not rewritten).
- The image's environment is replaced by ``image_env`` (``PATH`` and friends from the host), so
  ``command[0]`` is looked up on ``PATH`` as a runtime looks it up in the image.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
# (kind "Secret"|"ConfigMap", namespace, name) -> the object, or None when it does not exist
ObjectLookup = Callable[[str, str, str], JSON | None]

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_LABEL_PATH = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class ContainerConfigError(Exception):
    """The kubelet cannot build a container's config; the message is the kubelet's."""


@dataclass(frozen=True)
class PodContext:
    """Everything outside the container spec that its config may refer to."""

    pod: JSON
    node_name: str
    pod_ip: str
    host_ip: str
    lookup: ObjectLookup
    volume_dirs: Mapping[str, Path] = field(default_factory=dict)
    """Volume name -> the directory standing in for it on this machine."""
    image_env: Mapping[str, str] = field(default_factory=dict)
    """The environment a container starts with before its ``env`` (the image's, here the host's)."""


@dataclass(frozen=True)
class ContainerConfig:
    """A container ready to start: argv (command resolved later on PATH), env, directory."""

    argv: list[str]
    env: dict[str, str]
    working_dir: str | None


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names replaced, unknown kept, ``$$`` -> ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


def mount_map(container: Mapping[str, Any], ctx: PodContext) -> dict[str, Path]:
    """``mountPath`` -> directory for this container's volume mounts (subPath honoured)."""
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        directory = ctx.volume_dirs.get(mount.get("name", ""))
        if directory is None:
            raise ContainerConfigError(
                f'volumeMounts: volume "{mount.get("name")}" is not defined in spec.volumes'
            )
        mounts[mount["mountPath"].rstrip("/") or "/"] = directory / (mount.get("subPath") or "")
    return mounts


def rewrite_path(value: str, mounts: Mapping[str, Path]) -> str:
    """``value`` with a leading ``mountPath`` replaced by the volume's directory."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return str(mounts[mount_path]) + value[len(mount_path) :]
    return value


def container_config(container: Mapping[str, Any], ctx: PodContext) -> ContainerConfig:
    """Resolve one container; raises `ContainerConfigError` in the kubelet's words."""
    mounts = mount_map(container, ctx)
    env = dict(ctx.image_env)
    env.update(_env_from(container, ctx))
    for var in container.get("env") or []:
        value = _env_value(var, env, ctx)
        if value is not None:
            env[var["name"]] = rewrite_path(value, mounts)
    argv = [
        rewrite_path(expand(str(part), env), mounts)
        for part in [*(container.get("command") or []), *(container.get("args") or [])]
    ]
    working_dir = container.get("workingDir")
    return ContainerConfig(
        argv=argv,
        env=env,
        working_dir=rewrite_path(working_dir, mounts) if working_dir else None,
    )


def _env_value(var: Mapping[str, Any], env: Mapping[str, str], ctx: PodContext) -> str | None:
    if "valueFrom" not in var:
        return expand(str(var.get("value", "")), env)
    source = var["valueFrom"] or {}
    if "fieldRef" in source:
        return field_value(source["fieldRef"].get("fieldPath", ""), ctx)
    if "secretKeyRef" in source:
        return _key_value("Secret", source["secretKeyRef"], ctx)
    if "configMapKeyRef" in source:
        return _key_value("ConfigMap", source["configMapKeyRef"], ctx)
    raise ContainerConfigError(f"env {var.get('name')}: unsupported valueFrom {sorted(source)}")


def field_value(path: str, ctx: PodContext) -> str:
    """The downward API's ``fieldRef`` values."""
    metadata, spec = ctx.pod.get("metadata", {}), ctx.pod.get("spec", {})
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", "default"),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": ctx.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": ctx.pod_ip,
        "status.podIPs": ctx.pod_ip,
        "status.hostIP": ctx.host_ip,
        "status.hostIPs": ctx.host_ip,
    }
    if path in simple:
        return str(simple[path])
    keyed = _LABEL_PATH.match(path)
    if keyed:
        return str((metadata.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    raise ContainerConfigError(f'unsupported fieldRef fieldPath "{path}"')


def _key_value(kind: str, ref: Mapping[str, Any], ctx: PodContext) -> str | None:
    data = _object_data(kind, ref.get("name", ""), ctx, optional=bool(ref.get("optional")))
    if data is None:
        return None
    key = ref.get("key", "")
    if key not in data:
        if ref.get("optional"):
            return None
        namespace = ctx.pod.get("metadata", {}).get("namespace", "default")
        raise ContainerConfigError(
            f"couldn't find key {key} in {kind} {namespace}/{ref.get('name', '')}"
        )
    return data[key]


def _env_from(container: Mapping[str, Any], ctx: PodContext) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("Secret", source["secretRef"])
            if "secretRef" in source
            else ("ConfigMap", source.get("configMapRef") or {})
        )
        data = _object_data(kind, ref.get("name", ""), ctx, optional=bool(ref.get("optional")))
        prefix = source.get("prefix", "")
        env.update({prefix + key: value for key, value in (data or {}).items()})
    return env


def object_data(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's decoded ``data`` (plus ``stringData``) or a ConfigMap's ``data``."""
    if kind != "Secret":
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    data.update(obj.get("stringData") or {})
    return data


def _object_data(kind: str, name: str, ctx: PodContext, *, optional: bool) -> dict[str, str] | None:
    namespace = ctx.pod.get("metadata", {}).get("namespace", "default")
    obj = ctx.lookup(kind, namespace, name)
    if obj is None:
        if optional:
            return None
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    return object_data(kind, obj)
