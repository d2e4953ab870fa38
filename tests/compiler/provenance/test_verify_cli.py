"""`auditc verify` on a real store, and `check`/`report`/`diff` refusing a tampered one.

The store comes from running tests/fixtures/audits/local-basic once (a dataset, an
evaluation through a served model, two measurements and a notebook safety case);
each test tampers with a fresh copy of it the way an attacker or a failing disk would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.cli.main import main

FIXTURE = Path(__file__).parents[2] / "fixtures" / "audits" / "local-basic"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a complete store of the local-basic audit."""
    project = tmp_path_factory.mktemp("verify") / "project"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("__pycache__", ".auditc"))
    auditc = Path(sys.executable).parent / "auditc"
    done = subprocess.run(
        [str(auditc), "-C", str(project), "run", "audit.yaml"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return project


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the project and its store, to tamper with."""
    copy = tmp_path / "project"
    shutil.copytree(pristine, copy)
    return copy


def node(project: Path, kind: str, name: str) -> Path:
    [found] = (project / ".auditc" / kind / name).glob("*/_manifest.json")
    return found.parent


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt(project: Path) -> tuple[Path, str]:
    evaluation = node(project, "evaluation", "phrases-through-length")
    [part] = evaluation.glob("part-*.parquet")
    flip_a_byte(part)
    return evaluation, f"{part.name}: changed"


def corrupt_dataset(project: Path) -> tuple[Path, str]:
    dataset = node(project, "dataset", "phrases")
    flip_a_byte(dataset / "part-00000.parquet")
    return dataset, "part-00000.parquet: changed"


def truncate(project: Path) -> tuple[Path, str]:
    dataset = node(project, "dataset", "phrases")
    part = dataset / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:-100])
    return dataset, "part-00000.parquet: truncated"


def delete(project: Path) -> tuple[Path, str]:
    case = node(project, "method", "case")
    (case / "_case" / "index.html").unlink()
    return case, "_case/index.html: missing"


def add(project: Path) -> tuple[Path, str]:
    measurement = node(project, "method", "mean-score")
    shutil.copy(measurement / "part-00000.parquet", measurement / "part-00001.parquet")
    return measurement, "part-00001.parquet: unlisted"


def edit_manifest(project: Path) -> tuple[Path, str]:
    measurement = node(project, "method", "mean-score")
    manifest = json.loads((measurement / "_manifest.json").read_text())
    manifest["outputs"]["part-00000.parquet"]["sha256"] = "0" * 64
    (measurement / "_manifest.json").write_text(json.dumps(manifest))
    return measurement, "part-00000.parquet: changed"


def manifest_is_a_directory(project: Path) -> tuple[Path, str]:
    case = node(project, "method", "case")
    (case / "_manifest.json").unlink()
    (case / "_manifest.json").mkdir()
    return case, "_manifest.json is a directory, not a manifest"


def edit_scores(project: Path) -> tuple[Path, str]:
    case = node(project, "method", "case")
    scores_file = case / "_case" / "scores.json"
    scores = json.loads(scores_file.read_text())
    scores["scores"][0]["value"] = 0.05
    scores_file.write_text(json.dumps(scores))
    return case, "_case/scores.json"


CASES: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "corrupt": corrupt,
    "truncate": truncate,
    "delete": delete,
    "add": add,
    "edit-manifest": edit_manifest,
    "manifest-is-a-directory": manifest_is_a_directory,
    "edit-scores": edit_scores,
}


def test_a_sound_store_verifies(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = invoke(capsys, "-C", str(project), "verify")
    assert (code, out) == (0, "")
    assert err == "5 nodes verified: every file matches its manifest\n"
    code, out, _ = invoke(capsys, "-C", str(project), "verify", "audit.yaml", "--format", "json")
    assert code == 0 and json.loads(out)["problems"] == [] and json.loads(out)["nodes"] == 5


@pytest.mark.parametrize("case", CASES)
def test_verify_reports_the_node_and_the_file(
    project: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered, what = CASES[case](project)
    code, out, err = invoke(capsys, "-C", str(project), "verify")
    assert code == 1
    relative = tampered.relative_to(project / ".auditc").as_posix()
    assert any(line.startswith(relative) and what in line for line in out.splitlines()), out
    assert err.startswith("error: ") and " problem" in err


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["check", "report", "diff"])
def test_check_report_and_diff_refuse_a_tampered_store(
    pristine: Path, project: Path, case: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered, what = CASES[case](project)
    store = str(project / ".auditc")
    args = {
        "check": ["check", "audit.yaml", "--store", store],
        "report": ["report", "audit.yaml", "--store", store, "--out", str(project / "site")],
        "diff": ["diff", str(pristine / ".auditc"), store, "audit.yaml"],
    }[command]
    code, out, err = invoke(capsys, "-C", str(project), *args)
    assert code == 1, (out, err)
    assert tampered.name in err and what.split(":")[0] in err, err
    assert "Traceback" not in err
    assert not (project / "site" / "index.html").exists()


def test_verify_of_spec_nodes_names_those_not_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (project / "audit.yaml").read_text().replace("threshold: 0.5", "threshold: 0.25")
    (project / "audit.yaml").write_text(text)
    code, out, _ = invoke(capsys, "-C", str(project), "verify", "audit.yaml")
    assert code == 1
    assert [line.split(": ")[1] for line in out.splitlines()] == ["not-run", "not-run"]
    assert {line.split("/")[1] for line in out.splitlines()} == {"mean-score", "case"}
    code, out, _ = invoke(capsys, "-C", str(project), "verify", "audit.yaml", "-s", "label-counts")
    assert (code, out) == (0, "")


def test_the_report_shows_who_signed_each_run(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from compiler import SigningKey

    key_file = tmp_path / "auditor.pem"
    key_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyid = SigningKey.load(key_file).keyid[:16]
    site = project / "site"
    code, _, _ = invoke(capsys, "-C", str(project), "report", "audit.yaml", "--out", str(site))
    assert code == 0
    assert "not signed" in (site / "provenance.html").read_text()
    code, _, err = invoke(capsys, "-C", str(project), "attest", "--key", str(key_file))
    assert code == 0 and f"signed 5 nodes with key {keyid}" in err
    code, _, _ = invoke(capsys, "-C", str(project), "report", "audit.yaml", "--out", str(site))
    assert code == 0
    provenance = (site / "provenance.html").read_text()
    assert provenance.count(f"key <code>{keyid}</code>") == 5 and "not signed" not in provenance
    [case_page] = site.glob("case-case-*.html")
    page = case_page.read_text()
    assert "<dt>Signed by</dt>" in page and f"key <code>{keyid}</code>" in page
    # …and what: how many files, as which attestation.
    case_dir = node(project, "method", "case")
    files = len(json.loads((case_dir / "_manifest.json").read_text())["outputs"])
    envelope = f"_attestations/ed25519-{keyid}.dsse.json"
    assert (
        f"key <code>{keyid}</code>: {files} files and the manifest, as <code>{envelope}</code>"
        in page
    )


@pytest.mark.parametrize(
    ("tamper", "rerun", "node_kind"),
    [
        # Same-size changes, which only a hash finds: `run` keeps the node, its reader refuses it.
        (corrupt_dataset, "phrases-through-length", "Dataset/phrases"),  # the client's input
        (corrupt, "mean-score", "Evaluation/phrases-through-length"),  # a function's input
    ],
)
def test_a_downstream_step_refuses_a_tampered_input(
    project: Path,
    tamper: Callable[[Path], tuple[Path, str]],
    rerun: str,
    node_kind: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tampered, what = tamper(project)
    code, out, err = invoke(
        capsys, "-C", str(project), "run", "audit.yaml", "--select", rerun, "--force"
    )
    assert code == 1
    failed = next(line for line in err.splitlines() if " FAILED after " in line)
    assert failed.startswith(f"{'Evaluation' if rerun.startswith('phrases') else 'Method'}/{rerun}")
    assert f"{node_kind} {tampered.name}: its files do not match its manifest" in err
    assert what.split(":")[0] in err


@pytest.mark.parametrize("case", ["truncate", "delete", "add"])
def test_run_does_not_keep_a_node_whose_files_were_resized_removed_or_added(
    project: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered, what = CASES[case](project)
    code, out, err = invoke(capsys, "-C", str(project), "run", "audit.yaml")
    assert code == 1
    relative = tampered.relative_to(project / ".auditc").as_posix()
    [line] = [x for x in err.splitlines() if " FAILED " in x]
    assert "its files do not match its manifest" in line and f"{relative}/{what}" in line
    assert "auditc run --force --select" in line
    status = {row.split()[0]: row.split()[2] for row in out.splitlines()[1:] if "/" in row}
    assert list(status.values()).count("failed") == 1, out


@pytest.mark.parametrize("case", ["truncate", "delete", "add"])
def test_plan_shows_a_node_whose_files_were_resized_removed_or_added_as_damaged(
    project: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered, what = CASES[case](project)
    key = f"{tampered.parent.parent.name.capitalize()}/{tampered.parent.name}"
    name = tampered.parent.name
    fix = f"auditc run --force --select {name}"

    code, text, _ = invoke(capsys, "-C", str(project), "plan", "audit.yaml")
    assert code == 0, text
    assert "0 to re-run, 1 damaged, 4 to keep," in text.splitlines()[0]
    assert "! damaged (1)" in text and f"  ! {key}  {tampered.name}" in text
    assert f"= {key} " not in text  # never kept
    assert what in text and fix in text and "auditc verify" in text

    code, out, _ = invoke(capsys, "-C", str(project), "plan", "audit.yaml", "--format", "json")
    entries = {e["kind"] + "/" + e["name"]: e for e in json.loads(out)["entries"]}
    assert entries[key]["action"] == "damaged" and entries[key]["id"] == tampered.name
    assert what in entries[key]["reasons"][0] and fix in " ".join(entries[key]["reasons"])
    assert sorted(e["action"] for e in entries.values()).count("keep") == 4

    code, markdown, _ = invoke(
        capsys, "-C", str(project), "plan", "audit.yaml", "--format", "markdown"
    )
    assert "**0 to create, 0 to re-run, 1 damaged, 4 to keep, 0 to remove**" in markdown
    [row] = [line for line in markdown.splitlines() if line.startswith("| ! damaged |")]
    assert f"`{key}`" in row and what in row and fix in row
    assert f"- `{key}`" not in markdown  # not among the kept


def test_plan_of_a_sound_store_keeps_everything(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, _ = invoke(capsys, "-C", str(project), "plan", "audit.yaml")
    assert code == 0 and "0 to create, 0 to re-run, 5 to keep, 0 to remove." in text
    assert "damaged" not in text


def test_run_skips_what_depends_on_a_damaged_node(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncate(project)  # the dataset: `run` reports it failed instead of keeping it
    code, out, err = invoke(
        capsys,
        "-C",
        str(project),
        "run",
        "audit.yaml",
        "--select",
        "phrases-through-length",
        "--force",
    )
    assert code == 1
    status = {row.split()[0]: row.split()[2] for row in out.splitlines()[1:] if "/" in row}
    assert status["Dataset/phrases"] == "failed", out
    # Not started to fail on its own input check: skipped, naming the damaged node.
    assert status["Evaluation/phrases-through-length"] == "skipped", out
    assert "Evaluation/phrases-through-length" in err and "upstream Dataset/phrases failed" in err
    [failed] = [line for line in err.splitlines() if " FAILED " in line]
    assert failed.startswith("Dataset/phrases "), err
