"""`auditc export` and `auditc check --format junit`, read back by the tools they are for:
inspect_ai's `read_eval_log` and `inspect view`, the Every Eval Ever JSON Schemas, and a
JUnit XML parser."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import jsonschema
import pytest
from e2e_helpers import REPO, auditc, copy_fixture
from junitparser import Failure, JUnitXml

from schemas import Store

EEE = REPO / "tests" / "fixtures" / "every_eval_ever"
PHRASES = [
    json.loads(line)
    for line in (REPO / "tests/fixtures/audits/export-basic/data/phrases.jsonl")
    .read_text()
    .splitlines()
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export-basic audit, run once: its project directory (store in .auditc)."""
    project = copy_fixture("export-basic", tmp_path_factory.mktemp("export") / "project")
    done = auditc("-C", str(project), "run", ".")
    assert done.returncode == 0, done.stderr
    return project


def node_id(project: Path, kind: str, name: str) -> str:
    store = Store.open(project / ".auditc", create=False)
    return next(m.id for m in store.manifests() if m.kind == kind and m.name == name)


def test_inspect_log_loads_in_inspect_ai(exported: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    out = tmp_path / "logs" / "filter.json"
    done = auditc(
        "-C", str(exported), "export", "filter-on-phrases", "--format", "inspect", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    log = read_eval_log(str(out))
    evaluation_id = node_id(exported, "Evaluation", "filter-on-phrases")
    assert log.status == "success"
    assert (log.eval.task, log.eval.task_id, log.eval.model) == (
        "filter-on-phrases",
        evaluation_id,
        "auditc/length-filter",
    )
    assert log.eval.config.epochs == 2 and log.eval.dataset.samples == len(PHRASES)
    assert len(log.samples) == 2 * len(PHRASES)
    assert {(s.id, s.epoch) for s in log.samples} == {
        (i, e) for i in range(len(PHRASES)) for e in (1, 2)
    }
    first = next(s for s in log.samples if s.id == 1 and s.epoch == 1)
    assert first.input == PHRASES[1]["text"]
    assert json.loads(first.output.completion) == {"score": min(len(PHRASES[1]["text"]) / 40, 1.0)}
    judged = {s.id: s.scores for s in log.samples if s.epoch == 1}
    assert judged[1]["judged/correct"].value == 1.0 and judged[1]["judged/flagged"].value == 1.0
    assert judged[1]["filter-case/accuracy"].value == 1.0
    scores = {s.name: s for s in log.results.scores}
    assert scores["filter-case/accuracy"].metrics["value"].value == 0.75
    assert scores["filter-case/flag_rate"].metadata["passed"] is False
    provenance = log.eval.metadata["auditc"]
    assert provenance["evaluation"]["id"] == evaluation_id
    assert provenance["evaluation"]["upstream"]["InferenceService/length-filter"]
    assert provenance["evaluation"]["model_revision"]
    assert [c["name"] for c in provenance["safety_cases"]] == ["filter-case"]
    assert [m["name"] for m in provenance["measurements"]] == ["judged"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_inspect_view_serves_the_log(exported: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    done = auditc(
        "-C",
        str(exported),
        "export",
        "filter-on-phrases",
        "--format",
        "inspect",
        "--out",
        str(logs),
    )
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip())
    assert written.parent == logs and written.name.endswith(
        "_filter-on-phrases_" + written.name[-17:]
    )
    port = free_port()
    viewer = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "inspect"),
            "view",
            "start",
            "--log-dir",
            str(logs),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "INSPECT_VIEW_AUTHORIZATION_TOKEN": ""},
    )
    try:
        listing = _get_json(
            f"http://127.0.0.1:{port}/api/log-files", deadline=time.monotonic() + 60
        )
        names = [f["name"] for f in listing["files"]]
        assert len(names) == 1 and names[0].endswith(written.name), names
        log = _get_json(f"http://127.0.0.1:{port}/api/logs/{urllib.parse.quote(names[0], safe='')}")
        assert log["eval"]["task"] == "filter-on-phrases" and len(log["samples"]) == 2 * len(
            PHRASES
        )
    finally:
        viewer.terminate()
        viewer.wait(timeout=30)


def _get_json(url: str, deadline: float | None = None) -> dict[str, object]:
    """GET a JSON document from the viewer, retrying until `deadline` while it starts."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except OSError:
            if deadline is None or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_eee_records_validate_against_the_published_schemas(exported: Path, tmp_path: Path) -> None:
    done = auditc(
        "-C",
        str(exported),
        "export",
        "filter-on-phrases",
        "--format",
        "eee",
        "--out",
        str(tmp_path),
        "--organization",
        "Acme Audits",
    )
    assert done.returncode == 0, done.stderr
    record_path, samples_path = (Path(p) for p in done.stdout.split())
    aggregate = json.loads(record_path.read_text())
    instances = [json.loads(line) for line in samples_path.read_text().splitlines()]
    jsonschema.Draft7Validator(json.loads((EEE / "eval.schema.json").read_text())).validate(
        aggregate
    )
    instance_schema = jsonschema.Draft7Validator(
        json.loads((EEE / "instance_level_eval.schema.json").read_text())
    )
    for instance in instances:
        instance_schema.validate(instance)

    assert record_path.relative_to(tmp_path).parts[:4] == (
        "data",
        "filter-on-phrases",
        "auditc",
        "length-filter",
    )
    detailed = aggregate["detailed_evaluation_results"]
    assert tmp_path / detailed["file_path"] == samples_path and detailed["total_rows"] == len(
        instances
    )
    results = {r["evaluation_result_id"]: r for r in aggregate["evaluation_results"]}
    assert results["filter-case/accuracy"]["score_details"]["score"] == 0.75
    assert results["filter-case/flag_rate"]["metric_config"]["lower_is_better"] is True
    assert results["filter-case/accuracy"]["score_details"]["uncertainty"]["num_samples"] == len(
        PHRASES
    )
    assert aggregate["source_metadata"]["source_organization_name"] == "Acme Audits"
    provenance = aggregate["eval_library"]["additional_details"]
    assert provenance["auditc.id"] == node_id(exported, "Evaluation", "filter-on-phrases")
    assert provenance["auditc.model_revision"]
    # accuracy is the only score with per-instance values: one record per phrase.
    assert sorted(int(i["sample_id"]) for i in instances) == list(range(len(PHRASES)))
    assert all(
        i["evaluation"]["is_correct"] == (i["evaluation"]["score"] == 1.0) for i in instances
    )
    assert (
        instances[1]["input"]["raw"] == PHRASES[1]["text"]
        and len(instances[1]["output"]["raw"]) == 2
    )


def parse_junit(text: str) -> JUnitXml:
    return JUnitXml.fromstring(text)


def test_junit_has_a_case_per_gate(exported: Path) -> None:
    done = auditc("-C", str(exported), "export", "filter-case", "--format", "junit", "--out", "-")
    assert done.returncode == 0, done.stderr
    suites = list(parse_junit(done.stdout))
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.tests, suite.failures) == (2, 1)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"accuracy", "flag_rate"}
    assert cases["accuracy"].is_passed
    failures = [r for r in cases["flag_rate"].result if isinstance(r, Failure)]
    assert failures and "above the maximum 0.1" in (failures[0].message or "")
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["auditc.id"] == node_id(exported, "Method", "filter-case")
    assert properties["auditc.lineage.Evaluation/filter-on-phrases"] == node_id(
        exported, "Evaluation", "filter-on-phrases"
    )
    assert properties["auditc.system.length-filter.model_revision"]


def test_check_format_junit_fails_with_the_gate(exported: Path) -> None:
    done = auditc("-C", str(exported), "check", ".", "--format", "junit")
    assert done.returncode == 1  # a gate failed, as with the text format
    exported_xml = auditc(
        "-C", str(exported), "export", "filter-on-phrases", "--format", "junit", "--out", "-"
    )
    assert done.stdout == exported_xml.stdout  # the evaluation's one safety case: the same gates
    suite = next(iter(parse_junit(done.stdout)))
    assert [case.name for case in suite if not case.is_passed] == ["flag_rate"]


def test_export_errors_name_what_to_do(exported: Path) -> None:
    unknown = auditc("-C", str(exported), "export", "filter-on-phrase", "--format", "inspect")
    assert unknown.returncode == 2
    assert (
        "no run of 'filter-on-phrase'" in unknown.stderr
        and "did you mean 'filter-on-phrases'" in unknown.stderr
    )
    not_evaluation = auditc("-C", str(exported), "export", "filter-case", "--format", "eee")
    assert not_evaluation.returncode == 2
    assert "exports an Evaluation, and Method/filter-case is not" in not_evaluation.stderr
    assert "Traceback" not in unknown.stderr + not_evaluation.stderr
