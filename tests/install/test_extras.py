"""Install by role: the core commands need no extra; the others say which extra to install.

The fresh-venv install itself is test_core_install.py; here the heavy
packages are hidden from one process (`sys.modules[name] = None` makes both import and
`importlib.util.find_spec` fail, as in an environment without them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
from install_helpers import write_manifest

from compiler import graph_extras, load_project, require_graph_extras, resolve_graph
from compiler.cli._common import run_cli
from compiler.cli.main import main
from schemas import EXTRA_MODULES, MissingDependencyError, Store, local_manifests

ROOT = Path(__file__).parents[2]
CORE = {
    {"pyyaml": "yaml"}.get(name, name)
    for name in (
        re.split(r"[<>=!~\[ ;]", dependency)[0].lower()
        for dependency in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "dependencies"
        ]
    )
}
"""Import names of the core's own dependencies (an extra may list one too)."""
HEAVY = sorted(
    {m for modules in EXTRA_MODULES.values() for m in modules} - CORE | {"pandas", "IPython"}
)


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def core_command(*args: str) -> subprocess.CompletedProcess[str]:
    """`auditc ARGS` in a process where no extra's module can be imported."""
    code = (
        "import sys\n"
        f"for name in {HEAVY!r}:\n"
        "    sys.modules[name] = None\n"
        "from compiler.cli.main import main\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "audits/"],
        ["graph", "--format", "json"],
        ["plan", "--store", "{tmp}/store"],
        ["schema"],
        ["compile", "--target", "local", "--out", "{tmp}/out"],
    ],
)
def test_core_commands_need_no_extra(args: list[str], tmp_path: Path) -> None:
    done = core_command(*[a.format(tmp=tmp_path) for a in args])
    assert done.returncode == 0, done.stderr
    assert done.stdout


def test_plan_reads_a_local_store_without_pyarrow(tmp_path: Path) -> None:
    graph = resolve_graph(load_project(ROOT, [ROOT / "audits" / "tutorial"]))
    node = next(n for n in graph if n.is_workflow)
    write_manifest(tmp_path / "store", node.kind, node.name, node.id)
    done = core_command("plan", "--store", str(tmp_path / "store"), "audits/tutorial")
    assert done.returncode == 0, done.stderr
    assert f"= {node.key}" in done.stdout


def test_local_manifests_reads_what_the_store_reads(tmp_path: Path) -> None:
    for kind, name, node_id in [("Dataset", "d", "a" * 20), ("Method", "m", "b" * 20)]:
        write_manifest(tmp_path, kind, name, node_id)
    (tmp_path / "method" / "m" / "logs").mkdir()
    through_pyarrow = list(Store.open(tmp_path, create=False).manifests())
    assert list(local_manifests(tmp_path)) == through_pyarrow
    assert len(through_pyarrow) == 2


@pytest.mark.parametrize(
    ("command", "extra"),
    [("check", "results"), ("report", "results"), ("diff", "results"), ("run", "run")],
)
def test_a_command_names_its_missing_extra(
    command: str, extra: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hide(monkeypatch, "pyarrow")
    args = {"report": ["--out", "site"], "diff": ["a", "b"]}.get(command, [])
    with pytest.raises(SystemExit) as exited:
        main([command, *args])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"error: auditc {command} needs the '{extra}' extra (pyarrow not installed): "
        f"pip install 'auditc[{extra}]'\n"
    )


def test_help_works_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hide(monkeypatch, "pyarrow")
    assert main(["check", "--help"]) == 0
    assert "Usage: auditc check" in capsys.readouterr().out


def test_an_import_error_at_the_boundary_names_the_extra(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @click.group()
    def group() -> None: ...

    @group.command("plot")
    def plot() -> None:
        raise ModuleNotFoundError("No module named 'papermill'", name="papermill")

    with pytest.raises(SystemExit) as exited:
        run_cli(group, ["plot"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "auditc plot needs the 'notebooks' extra" in err
    assert "pip install 'auditc[notebooks]'" in err and "Traceback" not in err


def test_an_unknown_import_error_is_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    @click.group()
    def group() -> None: ...

    @group.command("x")
    def x() -> None:
        raise ModuleNotFoundError("No module named 'nothing_like_it'", name="nothing_like_it")

    with pytest.raises(SystemExit) as exited:
        run_cli(group, ["x"])
    assert exited.value.code == 3
    assert "internal error" in capsys.readouterr().err


def test_running_a_graph_checks_its_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = resolve_graph(load_project(ROOT, [ROOT / "audits" / "tutorial"]))
    needed = graph_extras(graph)
    assert set(needed) == {"run", "notebooks"}
    assert needed["notebooks"] == ["Method/offensive-filter-safety-case"]
    require_graph_extras(graph)  # everything is installed here
    hide(monkeypatch, "papermill")
    with pytest.raises(MissingDependencyError) as raised:
        require_graph_extras(graph)
    assert str(raised.value) == (
        "running Method/offensive-filter-safety-case needs the 'notebooks' extra "
        "(papermill not installed): pip install 'auditc[notebooks]'"
    )
    assert raised.value.exit_code == 2
    functions_only = graph.select(["fpr-by-identity"])
    assert "notebooks" not in graph_extras(functions_only)
    require_graph_extras(functions_only)
