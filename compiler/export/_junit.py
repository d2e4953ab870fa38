"""Score gates as JUnit XML, the test-report format every CI system shows.

One `<testsuite>` per safety case (`Method · system`), one `<testcase>` per gated score
(classname `auditc.<Method>`, name the score), with a `<failure>` when the gate fails.
The suite's `<properties>` carry the provenance: the safety case's node id and store
URI, the ids of every node upstream of it, the hashes of the files it read, and the
model revision of each system under test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from compiler.report import (
    Audit,
    CheckResult,
    GateResult,
    SafetyCase,
    StoreIndex,
    StoreResults,
    check_gates,
)
from schemas import Store

from ._provenance import flat_provenance

__all__ = ["gates_of", "junit_xml"]


def gates_of(store: Store, index: StoreIndex, cases: Sequence[SafetyCase]) -> CheckResult:
    """The gates of some safety cases, evaluated as `auditc check` evaluates them."""
    results = StoreResults(store, index, tuple(Audit(c.method, (c,)) for c in cases), ())
    return check_gates(results)


def _properties(store: Store, case: SafetyCase) -> dict[str, str]:
    properties = flat_provenance(store, case.manifest)
    for manifest in case.lineage:
        properties[f"auditc.lineage.{manifest.kind}/{manifest.name}"] = manifest.id
    for system in case.systems:
        properties[f"auditc.system.{system.service}.id"] = system.service_id
        if system.model_revision:
            properties[f"auditc.system.{system.service}.model_revision"] = system.model_revision
    return properties


def _testcase(suite: ET.Element, gate: GateResult) -> None:
    case = ET.SubElement(
        suite, "testcase", classname=f"auditc.{gate.method}", name=gate.score.name, time="0"
    )
    shown = gate.score.formatted()
    if not gate.passed:
        failure = ET.SubElement(
            case,
            "failure",
            message=f"{gate.score.name} = {shown}: {gate.reason} (gate {gate.bound})",
            type="gate" if gate.outcome == "fail" else "inconclusive-gate",
        )
        failure.text = f"value {gate.score.value!r}; gate {gate.bound}; system {gate.system}"
    out = ET.SubElement(case, "system-out")
    out.text = f"{gate.score.name} = {shown} (gate {gate.bound})" + (
        f"\n{gate.score.text}" if gate.score.text else ""
    )


def junit_xml(check: CheckResult, cases: Sequence[SafetyCase], store: Store) -> str:
    """The gates of `check` as a JUnit XML document (`<testsuites>`), provenance included.

    Args:
        check: the evaluated gates (`check_gates` or `gates_of`).
        cases: the safety cases those gates belong to (their provenance goes in properties).
        store: the store they were read from.
    """
    by_id = {case.id: case for case in cases}
    root = ET.Element(
        "testsuites",
        name="auditc gates",
        tests=str(len(check.gates)),
        failures=str(len(check.failed)),
        errors="0",
        time="0",
    )
    for case_id in dict.fromkeys(g.case_id for g in check.gates):
        gates = [g for g in check.gates if g.case_id == case_id]
        case = by_id[case_id]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{gates[0].method} · {gates[0].system}",
            tests=str(len(gates)),
            failures=str(sum(1 for g in gates if not g.passed)),
            errors="0",
            skipped="0",
            time="0",
            timestamp=case.manifest.finished_at.isoformat(timespec="seconds"),
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in _properties(store, case).items():
            ET.SubElement(properties, "property", name=name, value=value)
        for gate in gates:
            _testcase(suite, gate)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
