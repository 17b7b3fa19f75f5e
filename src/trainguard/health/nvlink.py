"""`NvLinkCheck`: NVLink state and error counters per GPU, through NVML.

NVLink carries the tensor-parallel and intra-node collective traffic; a link that drops or
retrains keeps the job running at a fraction of its speed, so a link that was up at the first
probe and is down now, or error counters (replay, recovery, CRC) climbing between two probes,
take the node out. It shares `trainguard.health.gpu.GpuCheck`'s template.
"""

from __future__ import annotations

from typing import Any

from trainguard.health.gpu import NVML_FEATURE_ENABLED, GpuCheck, Problem
from trainguard.health.nvml import GpuDevice, NvmlSession, Unsupported
from trainguard.health.report import NodeAction

NVML_NVLINK_MAX_LINKS = 18
NVLINK_COUNTERS = {"replay": 0, "recovery": 1, "crcFlit": 2, "crcData": 3}


class NvLinkCheck(GpuCheck):
    """NVLink state and error counters per GPU.

    A link that was up at the first check (or fewer active links than ``expected_links``) is a
    fault; so are error-counter increases (replay, recovery, CRC) of ``max_error_delta`` or more
    between two checks. GPUs without NVLink report nothing.
    """

    name = "NvLink"

    def __init__(
        self,
        session: NvmlSession,
        *,
        expected_gpus: int | None = None,
        expected_links: int | None = None,
        max_error_delta: int = 100,
        action: NodeAction = NodeAction.REBOOT,
    ) -> None:
        super().__init__(session, expected_gpus=expected_gpus)
        self.expected_links = expected_links
        self.max_error_delta = max_error_delta
        self.action = action
        self._baseline_up: dict[str, set[int]] = {}
        self._last_counts: dict[str, dict[str, int]] = {}

    def inspect(self, device: GpuDevice) -> tuple[list[Problem], dict[str, Any]]:
        """Read link states and counters; compare with the previous call."""
        states = self._link_states(device)
        if not states:
            return [], {"nvlink": "unsupported"}
        up = {link for link, active in states.items() if active}
        counts = self._counters(device, sorted(states))
        problems = []
        baseline = self._baseline_up.setdefault(device.uuid, set(up))
        if baseline - up:
            problems.append(
                Problem("NvLinkDown", self.action, f"link(s) {sorted(baseline - up)} went down")
            )
        if self.expected_links is not None and len(up) < self.expected_links:
            problems.append(
                Problem(
                    "NvLinkDown",
                    self.action,
                    f"{len(up)} active link(s), {self.expected_links} expected",
                )
            )
        previous = self._last_counts.get(device.uuid)
        self._last_counts[device.uuid] = counts
        delta = {k: counts[k] - previous.get(k, 0) for k in counts} if previous else {}
        if sum(delta.values()) >= self.max_error_delta > 0:
            problems.append(
                Problem("NvLinkErrors", self.action, f"NVLink error counters rose by {delta}")
            )
        return problems, {"linksUp": len(up), "links": len(states), "errors": counts}

    def _link_states(self, device: GpuDevice) -> dict[int, bool]:
        max_links = getattr(self.session.nvml, "NVML_NVLINK_MAX_LINKS", NVML_NVLINK_MAX_LINKS)
        states = {}
        for link in range(max_links):
            try:
                state = self.session.call("nvmlDeviceGetNvLinkState", device.handle, link)
            except Unsupported:
                continue
            states[link] = state == NVML_FEATURE_ENABLED
        return states

    def _counters(self, device: GpuDevice, links: list[int]) -> dict[str, int]:
        totals = dict.fromkeys(NVLINK_COUNTERS, 0)
        for link in links:
            for name, counter in NVLINK_COUNTERS.items():
                try:
                    totals[name] += int(
                        self.session.call(
                            "nvmlDeviceGetNvLinkErrorCounter", device.handle, link, counter
                        )
                    )
                except Unsupported:
                    continue
        return totals
