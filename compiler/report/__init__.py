"""Reports from a store: the static site, run-to-run comparison and score gates.

Everything here reads a store and writes nothing back to it:

- `load_results(store)` selects the safety cases to show (the latest complete run per
  Method and system under test) with their lineage and systems;
- `build_site(results, out_dir)` writes the static site (`auditc report`);
- `diff_results(base, head)` compares two sets of safety cases score by score, with
  paired bootstrap intervals where per-instance values exist (`auditc diff`);
- `check_gates(results)` evaluates every score gate (`auditc check`).

Example:
    >>> from schemas import Store                               # doctest: +SKIP
    >>> results = load_results(Store.open(".auditc", create=False))
    >>> build_site(results, Path("site")).index
    PosixPath('site/index.html')
"""

from ._check import (
    CHECK_SCHEMA_VERSION,
    EXIT_GATE_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_PASSED,
    CheckResult,
    GateResult,
    NotRun,
    check_gates,
    render_check,
)
from ._diff import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    DIFF_SCHEMA_VERSION,
    BootstrapOptions,
    CaseDiff,
    Comparison,
    DiffReport,
    DiffSide,
    GateFlip,
    NodeChange,
    ScoreDiff,
    diff_results,
    render_diff,
)
from ._results import (
    NO_SYSTEM,
    Audit,
    NodeRef,
    RunChoice,
    SafetyCase,
    Scope,
    StoreIndex,
    StoreResults,
    System,
    cases_by_ref,
    load_results,
    read_instances,
    read_table,
    scope_of,
)
from ._site import Site, build_site, sanitize_case_html

__all__ = [
    "CHECK_SCHEMA_VERSION",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "DIFF_SCHEMA_VERSION",
    "EXIT_GATE_FAILED",
    "EXIT_INCONCLUSIVE",
    "EXIT_PASSED",
    "NO_SYSTEM",
    "Audit",
    "BootstrapOptions",
    "CaseDiff",
    "CheckResult",
    "Comparison",
    "DiffReport",
    "DiffSide",
    "GateFlip",
    "GateResult",
    "NodeChange",
    "NodeRef",
    "NotRun",
    "RunChoice",
    "SafetyCase",
    "Scope",
    "ScoreDiff",
    "Site",
    "StoreIndex",
    "StoreResults",
    "System",
    "build_site",
    "cases_by_ref",
    "check_gates",
    "diff_results",
    "load_results",
    "read_instances",
    "read_table",
    "render_check",
    "render_diff",
    "sanitize_case_html",
    "scope_of",
]
