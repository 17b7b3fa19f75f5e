"""The kernel-log rule table: which lines are faults, and what each asks of the node.

NVIDIA's driver reports GPU faults as ``NVRM: Xid (PCI:0000:b9:00): 79, ...`` lines. The table
below follows NVIDIA's Xid catalog (its "resolution bucket" per code) translated to node
actions, with the reasoning in ``docs/health.md``. In short:

* application faults (13, 31, 43, 45) are the job's own bug or its cleanup: recorded, node kept;
* faults cleared by a GPU reset (48, 63, 74, 79, 94, 95, 119, 120...) ask for a reboot — we
  reboot nodes, not single GPUs — and the health agent escalates a reboot fault that comes back
  after a reboot to a replacement;
* faults the GPU cannot repair in the field (64: a row could not be remapped; 92: a high rate
  of corrected errors, i.e. failing memory) ask for replacement at once.

Codes not in the table are recorded with no action: NVIDIA's catalog has ~150 codes, many of
them informational, and taking nodes out on an unknown code would turn driver chatter into lost
capacity. Non-NVIDIA kernel patterns (NVLink fatal, uncorrected memory errors, a file system
remounted read-only) are in `KERNEL_RULES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trainguard.health.report import NodeAction

XID_PATTERN = re.compile(r"NVRM: Xid \((?P<device>[^)]*)\): (?P<code>\d+)\b,?\s*(?P<detail>.*)")

FAULT_NVIDIA = {
    NodeAction.NONE: "NvidiaErrorNoAction",
    NodeAction.CORDON: "NvidiaErrorCordon",
    NodeAction.REBOOT: "NvidiaErrorReboot",
    NodeAction.REPLACE: "NvidiaErrorReplacement",
}
REASON_XID_USER = "XidUserAppError"
REASON_XID_HARDWARE = "XidHardwareFailure"
REASON_XID_UNCLASSIFIED = "XidUnclassified"


@dataclass(frozen=True)
class XidRule:
    """What one Xid code means and what it asks of the node."""

    code: int
    meaning: str
    action: NodeAction
    why: str

    @property
    def reason(self) -> str:
        """``XidUserAppError`` for application faults, ``XidHardwareFailure`` otherwise."""
        return REASON_XID_USER if self.action is NodeAction.NONE else REASON_XID_HARDWARE


_N, _B, _R = NodeAction.NONE, NodeAction.REBOOT, NodeAction.REPLACE
XID_RULES: dict[int, XidRule] = {
    r.code: r
    for r in (
        XidRule(
            13,
            "graphics engine exception",
            _N,
            "out-of-range access or illegal "
            "instruction in a kernel: the application's bug; restart the application",
        ),
        XidRule(
            31,
            "GPU memory page fault",
            _N,
            "an illegal address in the application's "
            "kernel; the context is torn down, the GPU is fine",
        ),
        XidRule(
            43,
            "GPU stopped processing (reset channel)",
            _N,
            "the driver killed a faulting application's channel; other contexts keep running",
        ),
        XidRule(
            45,
            "preemptive cleanup",
            _N,
            "follows a killed application (Ctrl-C, another Xid); cleanup, not a fault of its own",
        ),
        XidRule(
            48,
            "double-bit ECC error",
            _B,
            "uncorrectable memory error: the page is "
            "retired / row remapped only after a GPU reset; recurrence means failing HBM",
        ),
        XidRule(
            61,
            "internal micro-controller breakpoint",
            _B,
            "GPU firmware halted; only a reset brings it back",
        ),
        XidRule(
            62,
            "internal micro-controller halt",
            _B,
            "GPU firmware halted; only a reset brings it back",
        ),
        XidRule(
            63,
            "row remapping / page retirement recorded",
            _B,
            'a bad row was marked and takes effect at the next GPU reset ("reset gpu to activate")',
        ),
        XidRule(
            64,
            "row remapping / page retirement failure",
            _R,
            "the GPU could not record "
            "the remap (spare rows exhausted or InfoROM failure): not repairable in the field",
        ),
        XidRule(
            74,
            "NVLink error",
            _B,
            "a link went down or retrained badly; a reset "
            "retrains it, a recurrence points at the link hardware",
        ),
        XidRule(
            79,
            "GPU has fallen off the bus",
            _B,
            "the device vanished from PCIe; only a "
            "reboot re-enumerates it; repeated loss is a board or riser fault",
        ),
        XidRule(
            92,
            "high single-bit ECC error rate",
            _R,
            "corrected errors are arriving fast "
            "enough to trip the driver's rate limit: memory that is failing",
        ),
        XidRule(
            94,
            "contained ECC error",
            _B,
            "the affected application was killed and the row is remapped at the next reset",
        ),
        XidRule(
            95,
            "uncontained ECC error",
            _B,
            "every context on the GPU is affected; the GPU must be reset before it is used again",
        ),
        XidRule(
            119,
            "GSP RPC timeout",
            _B,
            "the GPU System Processor stopped answering; a reset restarts it",
        ),
        XidRule(120, "GSP error", _B, "GPU System Processor firmware fault; a reset restarts it"),
    )
}


@dataclass(frozen=True)
class KernelRule:
    """A non-Xid kernel log pattern and the action it implies."""

    reason: str
    pattern: re.Pattern[str]
    fault_type: str
    action: NodeAction
    why: str


KERNEL_RULES: tuple[KernelRule, ...] = (
    KernelRule(
        "NvlinkFatalError",
        re.compile(r"NVLink: fatal error detected"),
        FAULT_NVIDIA[_B],
        _B,
        "a fatal NVLink error stops collective traffic on the GPU",
    ),
    KernelRule(
        "GpuFellOffBus",
        re.compile(r"NVRM: GPU at \S+ has fallen off the bus"),
        FAULT_NVIDIA[_B],
        _B,
        "same as Xid 79, logged without a code by older drivers",
    ),
    KernelRule(
        "UncorrectedMemoryError",
        re.compile(r"[Uu]ncorrected hardware memory error|mce: .*[Uu]ncorrected"),
        "HardwareErrorReboot",
        _B,
        "host DRAM returned bad data; the page is poisoned, and a recurrence points at a DIMM",
    ),
    KernelRule(
        "FilesystemReadOnly",
        re.compile(r"Remounting filesystem read-only|EXT4-fs error|XFS .*[Cc]orruption"),
        "KernelErrorReboot",
        _B,
        "a file system went read-only: checkpoints and logs can no longer be written",
    ),
)


@dataclass(frozen=True)
class KernelFinding:
    """One kernel log line that matched a rule."""

    reason: str
    fault_type: str
    action: NodeAction
    line: str
    xid: int | None = None
    device: str | None = None

    @property
    def key(self) -> str:
        """Identity for de-duplication: the same fault on the same device counts once."""
        return f"{self.reason}/{self.xid}/{self.device}"


def classify(line: str) -> KernelFinding | None:
    """The finding for ``line``, or ``None`` when no rule matches.

    An Xid in the table decides by its code. An Xid not in the table still counts when its
    text matches a kernel rule (HyperPod's documented example, ``Xid ...: 71, ... NVLink: fatal
    error detected on link 6``, is a hardware fault by its text); otherwise it is recorded as
    ``XidUnclassified`` with no action.
    """
    match = XID_PATTERN.search(line)
    code = int(match["code"]) if match else None
    device = match["device"] if match else None
    rule = XID_RULES.get(code) if code is not None else None
    if rule is not None:
        fault = FAULT_NVIDIA[rule.action]
        return KernelFinding(rule.reason, fault, rule.action, line.strip(), code, device)
    for krule in KERNEL_RULES:
        if krule.pattern.search(line):
            return KernelFinding(
                krule.reason, krule.fault_type, krule.action, line.strip(), code, device
            )
    if code is None:
        return None
    none = NodeAction.NONE
    return KernelFinding(
        REASON_XID_UNCLASSIFIED, FAULT_NVIDIA[none], none, line.strip(), code, device
    )
