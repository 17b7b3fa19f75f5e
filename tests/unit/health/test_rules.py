"""The Xid / kernel rule table, label values and the fault-details history format."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from trainguard.health.fault_history import (
    FaultRecord,
    decode_fault_details,
    encode_fault_details,
    label_value,
    recover,
)
from trainguard.health.report import HealthStatus, NodeAction, unhealthy
from trainguard.health.xid import XID_RULES, classify
from trainguard.spec.base import LABEL_VALUE_RE

LINE = "[  412.1] NVRM: Xid (PCI:0000:b9:00): {code}, pid=2231, name=python, Ch 00000008"


def test_user_application_xids_ask_for_no_action() -> None:
    for code in (13, 43):
        finding = classify(LINE.format(code=code))
        assert finding is not None
        assert finding.action is NodeAction.NONE
        assert finding.reason == "XidUserAppError"
        assert finding.xid == code
        assert finding.device == "PCI:0000:b9:00"


def test_hardware_xids_ask_for_reboot_or_replacement() -> None:
    expected = {
        48: "REBOOT",
        63: "REBOOT",
        64: "REPLACE",
        74: "REBOOT",
        79: "REBOOT",
        92: "REPLACE",
        94: "REBOOT",
        95: "REBOOT",
    }
    for code, action in expected.items():
        finding = classify(LINE.format(code=code))
        assert finding is not None, code
        assert finding.action is NodeAction[action], code
        assert finding.reason == "XidHardwareFailure"
        assert (
            finding.fault_type == f"NvidiaError{'Reboot' if action == 'REBOOT' else 'Replacement'}"
        )


def test_unknown_xid_is_recorded_without_action_and_other_lines_are_ignored() -> None:
    unknown = classify(LINE.format(code=999))
    assert unknown is not None and unknown.action is NodeAction.NONE
    assert unknown.reason == "XidUnclassified"
    assert classify("usb 1-1: new high-speed USB device number 2") is None


def test_kernel_patterns_beyond_xid() -> None:
    nvlink = classify(
        "NVRM: Xid (PCI:0000:b9:00): 71, pid=1, NVLink: fatal error detected on link 6"
    )
    # Xid 71 is not in the table, but its text is a fatal NVLink error (HyperPod's example).
    assert nvlink is not None and nvlink.xid == 71
    assert nvlink.reason == "NvlinkFatalError" and nvlink.action is NodeAction.REBOOT
    plain = classify("nvidia-nvlink: NVLink: fatal error detected on link 6")
    assert plain is not None and plain.reason == "NvlinkFatalError"
    ro = classify("EXT4-fs (nvme1n1): Remounting filesystem read-only")
    assert ro is not None and ro.action is NodeAction.REBOOT


def test_every_table_entry_has_reasoning() -> None:
    for code, rule in XID_RULES.items():
        assert rule.code == code
        assert len(rule.why) > 20 and rule.meaning


@given(st.lists(st.text(min_size=0, max_size=80), max_size=8))
def test_label_value_is_always_a_valid_kubernetes_label_value(parts: list[str]) -> None:
    value = label_value(parts)
    if value is not None:
        assert len(value) <= 63
        assert LABEL_VALUE_RE.match(value)


def test_label_value_joins_distinct_reasons() -> None:
    assert label_value(["XidHardwareFailure", "DiskSpaceLow", "XidHardwareFailure"]) == (
        "XidHardwareFailure.DiskSpaceLow"
    )
    assert label_value([]) is None
    assert label_value(["a" * 100]) == "a" * 63


def test_fault_details_round_trip_and_trim_keeps_active_faults() -> None:
    hard = unhealthy(
        "KernelLog",
        1000.0,
        reason="XidHardwareFailure",
        message="xid 79",
        fault_type="NvidiaErrorReboot",
        action=NodeAction.REBOOT,
        findings=[{"line": "x"}],
    )
    assert hard.status is HealthStatus.UNHEALTHY
    notice = unhealthy(
        "KernelLog",
        1001.0,
        reason="XidUserAppError",
        message="xid 13",
        fault_type="NvidiaErrorNoAction",
        action=NodeAction.NONE,
    )
    records = [FaultRecord.from_report(hard, boot_id="b1")]
    records += [FaultRecord.from_report(notice, boot_id="b1") for _ in range(30)]
    text = encode_fault_details(records, limit=5)
    decoded = decode_fault_details(text)
    assert len(decoded) == 5
    assert decoded[0].active and decoded[0].reason == "XidHardwareFailure"
    assert decoded[0].evidence == {"findings": [{"line": "x"}]}
    assert json.loads(text)[0]["detectedAt"] == "1970-01-01T00:16:40Z"
    assert not recover(decoded, "KernelLog", 2000.0)[0].active


def test_fault_details_that_do_not_parse_are_dropped() -> None:
    assert decode_fault_details("not json") == []
    assert decode_fault_details('[{"check": "x"}, 5]') == []
