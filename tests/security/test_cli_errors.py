"""Usage errors end in a message and exit 2 (or 1 for a store that cannot be reached), never
in a traceback (issue 10, defect 11, and the small CLI cases of "Also handle")."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from security_helpers import DATASET, METHOD, MODULE, assert_usage_error, auditc, write_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "p",
        DATASET + METHOD,
        MODULE,
    )


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_store_error(result, *needles: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.mark.parametrize("command", ["run", "check", "report", "plan"])
def test_an_unreachable_s3_endpoint_is_a_store_error(
    project: Path, closed_port: int, command: str, tmp_path: Path
) -> None:
    uri = f"s3://audits/main?endpoint_override=127.0.0.1:{closed_port}&scheme=http"
    extra = ["--out", str(tmp_path / "site")] if command == "report" else []
    result = auditc("-C", str(project), command, "--store", uri, *extra)
    assert_store_error(result, f"error: cannot open store {uri}: ", "Could not connect to server")


@pytest.mark.parametrize("command", ["run", "check", "plan", "report"])
def test_a_pseudo_filesystem_as_store_ends_cleanly(
    project: Path, command: str, tmp_path: Path
) -> None:
    # /proc/self links back to the whole machine: a recursive listing never ended.
    extra = ["--out", str(tmp_path / "site")] if command == "report" else []
    result = auditc("-C", str(project), command, "--store", "/proc/self", *extra, timeout=60)
    assert result.returncode != 3 and "Traceback" not in result.stderr, result.stderr
    if command == "run":  # the store cannot be written: said, with the path
        assert result.returncode == 1
        assert "error: cannot create the writer lock /proc/" in result.stderr


def test_report_out_where_no_directory_can_be_made(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    result = auditc("-C", str(project), "report", "--store", str(store), "--out", "/proc/no/site")
    assert_usage_error(result, "--out /proc/no/site: cannot write /proc/no")


def test_schema_into_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "schema.json"
    result = auditc("schema", "-o", str(target))
    assert_usage_error(result, f"-o {target}: cannot write", "No such file or directory")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--seed", "-1", "Invalid value for '--seed'"),
        ("--resamples", "1000000000", "Invalid value for '--resamples'"),
    ],
)
def test_diff_options_are_bounded(project: Path, option: str, value: str, message: str) -> None:
    result = auditc("-C", str(project), "diff", "a", "b", option, value)
    assert_usage_error(result, message)


@pytest.mark.parametrize(
    "command",
    [
        *("plan", "run", "check", "report", "diff", "push", "export"),
        *("verify", "gc", "attest", "status", "wait"),
    ],
)
def test_an_empty_store_option_is_an_error(project: Path, command: str) -> None:
    key = str(project / "audits" / "a.yaml")  # attest checks --store before reading its key
    args = {
        "report": ["--out", "site"],
        "diff": ["a", "b"],
        "export": ["mean"],
        "attest": ["--key", key],
        "status": ["--stack", "dev"],
        "wait": ["--stack", "dev"],
    }.get(command, [])
    result = auditc("-C", str(project), command, *args, "--store", "")
    assert_usage_error(result, "Invalid value for '--store': is empty")


@pytest.mark.parametrize("command", ["plan", "run", "check", "report", "verify", "gc"])
def test_a_file_as_store_is_an_error(project: Path, command: str) -> None:
    args = ["--out", "site"] if command == "report" else []
    result = auditc(command, *args, "--store", "audits/a.yaml", cwd=project)
    assert_usage_error(result, "Invalid value for '--store': 'audits/a.yaml' is a file")


def test_an_empty_mapping_is_not_called_a_string(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DATASET.replace("name: rows", "name: {}"))
    result = auditc("-C", str(project), "validate")
    assert_usage_error(result, "found an empty mapping")
    assert "a string ({})" not in result.stderr
