"""Results in the formats other tools read: Inspect AI logs, Every Eval Ever, JUnit XML.

- `select_target(store, "NAME")` picks a node of the store (the latest complete run) and
  the Measurements and SafetyCases computed from it;
- `inspect_log(target)` → an Inspect AI EvalLog (JSON), `eee_records(target)` → the Every
  Eval Ever aggregate record and its instance-level records, `junit_xml(check)` → JUnit
  XML with one test case per gate.

The other way, an Inspect log is read as a Dataset by `runners.datasets`
(`file: {path: run.eval}`, docs/specs.md "Inspect AI logs").

Each format carries the provenance (node ids, input hashes, model revision, git commit)
in its own metadata fields. Nothing here writes to the store.
"""

from ._eee import EEE_SCHEMA_VERSION, eee_records
from ._inspect import INSPECT_LOG_VERSION, inspect_log
from ._junit import junit_xml
from ._select import ExportTarget, find_node, select_target

__all__ = [
    "EEE_SCHEMA_VERSION",
    "INSPECT_LOG_VERSION",
    "ExportTarget",
    "eee_records",
    "find_node",
    "inspect_log",
    "junit_xml",
    "select_target",
]
