"""Pod volumes as directories on this machine, since the fake kubelet has no mount namespaces.

``emptyDir`` (any medium; ``Memory`` is not a tmpfs here) is a fresh directory under the pod's
directory; ``secret`` and ``configMap`` volumes are directories holding one file per key (or per
``items`` entry), written when the pod starts and not refreshed afterwards; ``hostPath`` is the
host path itself. Containers see them through the path rewriting in `podenv`. Other volume kinds
cannot be faked honestly and fail the pod's containers with a message naming the volume.
Once the pod is gone its volume directories are removed (`remove_volumes`), as a kubelet tears
down an ``emptyDir`` with its pod; the pod's logs stay for tests to read.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainguard.testing.kube.podenv import ContainerConfigError, ObjectLookup, object_data

SUPPORTED = ("emptyDir", "hostPath", "secret", "configMap")


def prepare_volumes(pod: Mapping[str, Any], pod_dir: Path, lookup: ObjectLookup) -> dict[str, Path]:
    """Create the pod's volume directories; returns volume name -> directory.

    Raises:
        ContainerConfigError: a kind we cannot fake, or a missing Secret/ConfigMap.
    """
    namespace = pod.get("metadata", {}).get("namespace", "default")
    dirs: dict[str, Path] = {}
    for index, volume in enumerate(pod.get("spec", {}).get("volumes") or []):
        name = volume.get("name", "")
        kind = next((k for k in SUPPORTED if k in volume), None)
        if kind is None:
            kinds = sorted(k for k in volume if k != "name")
            raise ContainerConfigError(
                f"spec.volumes[{index}] ({name}): the fake kubelet runs {', '.join(SUPPORTED)}, "
                f"not {', '.join(kinds) or 'an empty volume'}"
            )
        if kind == "hostPath":
            dirs[name] = Path(volume["hostPath"].get("path", "/"))
            continue
        directory = pod_dir / "volumes" / name
        directory.mkdir(parents=True, exist_ok=True)
        if kind in ("secret", "configMap"):
            _write_keys(kind, volume[kind], namespace, directory, lookup)
        dirs[name] = directory
    return dirs


def remove_volumes(pod_dir: Path) -> None:
    """Delete the pod's volume directories (never a ``hostPath``: it is not under them)."""
    shutil.rmtree(pod_dir / "volumes", ignore_errors=True)


def _write_keys(
    kind: str, source: Mapping[str, Any], namespace: str, directory: Path, lookup: ObjectLookup
) -> None:
    object_kind = "Secret" if kind == "secret" else "ConfigMap"
    name = source.get("secretName") if kind == "secret" else source.get("name")
    obj = lookup(object_kind, namespace, str(name or ""))
    if obj is None:
        if source.get("optional"):
            return
        raise ContainerConfigError(f'{object_kind.lower()} "{name}" not found')
    data = object_data(object_kind, obj)
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    for item in items:
        if item["key"] not in data:
            raise ContainerConfigError(
                f"couldn't find key {item['key']} in {object_kind} {namespace}/{name}"
            )
        target = directory / item.get("path", item["key"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[item["key"]])
