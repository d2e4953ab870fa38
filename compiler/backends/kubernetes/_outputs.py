"""Stack outputs of a SafetyCase: where its report is, and every score with its gate result.

Scores exist only once the method ran, so they are read from the store after the Job's
outputs resolve: after `pulumi up` waited for the Job (or at once in an asynchronous
run, where they appear on a later update). A store that cannot be read (no
credentials where `pulumi` runs) is said in the output; it never fails the program.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_kubernetes.batch import v1 as batch

from schemas import CASE_HTML_FILE, SCORES_FILE, AuditcError, Store, case_file

__all__ = ["safety_case_output", "safety_case_scores"]


def safety_case_scores(uri: str, node_id: str) -> dict[str, Any]:
    """`{"status": …, "scores": {name: {value, display, gate}}}` of a SafetyCase's outputs.

    `status` is `complete`, `not run` (no complete manifest of this id) or
    `unreadable: <why>`; `gate` is `pass`, `fail`, `inconclusive` or None (no gate).
    """
    try:
        store = Store.open(uri, create=False)
        manifest = store.read_manifest("")
        if manifest is None or manifest.status != "complete" or manifest.id != node_id:
            return {"status": "not run", "scores": {}}
        if not store.exists(case_file(SCORES_FILE)):
            return {"status": "complete", "scores": {}}
        scores = store.read_scores("")
    except (AuditcError, OSError) as exc:
        return {"status": f"unreadable: {exc}", "scores": {}}
    return {
        "status": "complete",
        "scores": {
            score.name: {"value": score.value, "display": score.formatted(), "gate": score.gate()}
            for score in scores.scores
        },
    }


def safety_case_output(
    uri: str, node_id: str, job: batch.Job, *, read_store: bool = True
) -> pulumi.Output[dict[str, Any]]:
    """The output of one SafetyCase: its report's URI and, once known, its scores."""
    report = f"{uri.split('?', 1)[0]}/{case_file(CASE_HTML_FILE)}"

    def read(_: Any) -> dict[str, Any]:
        if not read_store:
            return {"uri": uri, "report": report, "status": "not read", "scores": {}}
        return {"uri": uri, "report": report, **safety_case_scores(uri, node_id)}

    return job.status.apply(read)
