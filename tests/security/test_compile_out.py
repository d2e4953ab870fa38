"""`compile --out DIR` replaces only what auditc wrote there (issue 10, defect 10).

The attack: a directory of the user's manifests, `99-secret-prod-db.yaml` among them.
A compile into it deleted every file whose name looked like one of auditc's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from security_helpers import REPO, assert_usage_error, auditc

FIXTURE = REPO / "tests" / "fixtures" / "audits" / "k8s-basic"
TARGETS = {
    "kubernetes": ["--target", "kubernetes", "--store", "s3://bucket/audits"],
    "local": ["--target", "local"],
}
USERS = "apiVersion: v1\nkind: Secret\nmetadata: {name: prod-db}\nstringData: {password: x}\n"


def _compile(out: Path, target: str, *select: str) -> None:
    options = [arg for name in select for arg in ("--select", name)]
    result = auditc("-C", str(FIXTURE), "compile", *TARGETS[target], "--out", str(out), *options)
    assert result.returncode == 0, result.stderr


def _written(out: Path) -> set[str]:
    return set(json.loads((out / ".auditc-generated.json").read_text())["files"])


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_users_files_survive_every_compile(tmp_path: Path, target: str) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    (out / "99-secret-prod-db.yaml").write_text(USERS)
    (out / "99-secret-prod-db.json").write_text("{}\n")
    _compile(out, target)
    first = _written(out)
    _compile(out, target, "mean-score")  # a smaller graph: files of the first are removed
    second = _written(out)
    assert len(second) < len(first)  # and what only the first wrote is gone:
    assert {p.name for p in out.iterdir()} == {
        "99-secret-prod-db.yaml",
        "99-secret-prod-db.json",
        ".auditc-generated.json",
        *second,
    }
    assert (out / "99-secret-prod-db.yaml").read_text() == USERS


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_name_auditc_would_write_but_did_not_is_refused(tmp_path: Path, target: str) -> None:
    out = tmp_path / "deploy"
    _compile(out, target)
    taken = sorted(_written(out))[0]
    (out / ".auditc-generated.json").unlink()  # as if another tool had written them all
    before = (out / taken).read_text()
    result = auditc("-C", str(FIXTURE), "compile", *TARGETS[target], "--out", str(out))
    assert_usage_error(result, f"--out {out}: {taken}, ", "were not written by auditc")
    assert (out / taken).read_text() == before


def test_a_file_changed_after_auditc_wrote_it_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    _compile(out, "local")
    edited = sorted(_written(out))[-1]
    (out / edited).write_text('{"edited": "by hand"}\n')
    result = auditc("-C", str(FIXTURE), "compile", *TARGETS["local"], "--out", str(out))
    assert_usage_error(result, f"{edited} was changed after auditc wrote them")
    assert (out / edited).read_text() == '{"edited": "by hand"}\n'


def test_out_that_cannot_be_created_is_a_usage_error(tmp_path: Path) -> None:
    result = auditc("-C", str(FIXTURE), "compile", *TARGETS["local"], "--out", "/proc/x/out")
    assert_usage_error(result, "--out /proc/x/out: cannot create it")
