"""An agent extension used by the tests: one socket message type and one HTTP route."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from trainguard.agent.extensions import ExtensionContext

SEEN: list[dict[str, Any]] = []


def register(context: ExtensionContext) -> None:
    router = APIRouter()

    @router.get("/replicas")
    def replicas() -> dict[str, Any]:
        return {"seen": SEEN, "shm": str(context.shm_dir), "pod": context.status().trainguard.pod}  # type: ignore[union-attr]

    def fetch(message: dict[str, Any]) -> dict[str, Any]:
        SEEN.append({"rank": message["local_rank"], "step": message["step"]})
        return {"path": f"{context.shm_dir}/step_{message['step']}"}

    context.add_router(router)
    context.add_socket_handler("sample_fetch", fetch)
