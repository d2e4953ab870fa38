"""A spec change never chooses which code runs (issue 10, defects 2 and 3).

The attacks: a "data-only" pull request whose Method is `subprocess:Popen` with a shell
command as parameter; callables reached through a Module's imports or from outside a
Model's package; and a committed `.pyc` that changes a result under the same node id.
"""

from __future__ import annotations

import py_compile
import sys
from importlib.util import cache_from_source
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from security_helpers import DATASET, REPO, assert_usage_error, auditc, write_project

from runners import CallableSourceError, import_callable

METHOD = """\
---
kind: Module
name: metrics
spec: {path: metrics}
---
kind: Method
name: answer
spec:
  implementation: {python: "metrics:answer"}
  modules: [metrics]
  inputs: {rows: rows}
  output: {kind: Measurement, columns: {value: int64}}
"""
ANSWER = """\
import pyarrow as pa


def answer(rows):
    return pa.table({"value": [%d]})
"""
NO_CACHE = {"PYTHONPYCACHEPREFIX": ""}
"""Run as a user would: no bytecode prefix inherited from the test process."""


def test_a_yaml_only_change_cannot_run_a_shell_command(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    specs = (
        DATASET
        + f"""\
---
kind: Method
name: innocent-looking
spec:
  implementation: {{python: "subprocess:Popen"}}
  inputs: {{text: rows}}           # Popen(text=<dataset>) is accepted
  parameters: {{args: "touch {marker}", shell: true}}
  output: {{kind: Measurement}}
"""
    )
    project = write_project(tmp_path / "p", specs)
    result = auditc("-C", str(project), "run", "--store", str(tmp_path / "store"))
    assert_usage_error(
        result,
        "audits/a.yaml:10:28: Method/innocent-looking: spec.implementation.python: "
        "'subprocess' is a standard-library module",
        "[callable-not-allowed]",
    )
    assert not marker.exists()


def test_a_module_callable_cannot_reach_what_the_module_imports(tmp_path: Path) -> None:
    specs = DATASET + METHOD.replace("metrics:answer", "metrics:subprocess.Popen")
    project = write_project(
        tmp_path / "p", specs, {"metrics/metrics.py": "import subprocess\n" + ANSWER % 1}
    )
    for command in ("validate", "plan"):
        result = auditc("-C", str(project), command)
        assert_usage_error(result, "is the module 'subprocess', which is not in the resource's")


def test_the_runner_refuses_a_module_that_shadows_an_installed_one(tmp_path: Path) -> None:
    # Validation sees a Module file numpy.py; the interpreter already has the real numpy.
    (tmp_path / "numpy.py").write_text("def load(x):\n    return x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import numpy  # noqa: F401 - loaded, as it is in every runner

        with pytest.raises(CallableSourceError, match="would be imported from .*numpy"):
            import_callable("numpy:load", module_dirs=[str(tmp_path)])
    finally:
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize(
    ("target", "package", "message"),
    [
        ("pyarrow:table", "alt-profanity-check==1.9.1", "is not part of the Model's package"),
        ("profanity_check:profanity_check.np.load", "alt-profanity-check==1.9.1", "'numpy'"),
        ("profanity_check:profanity_check.model.predict", "alt-profanity-check==1.9.1", "sklearn"),
        ("profanity_check:predict_prob", "alt-profanity-check==1.9.0", "pins"),
        ("profanity_check:predict_prob", None, "no Module and no package"),
    ],
)
def test_a_package_callable_must_be_defined_in_its_pinned_package(
    target: str, package: str | None, message: str
) -> None:
    with pytest.raises(CallableSourceError, match=message):
        import_callable(target, module_dirs=[], package=package)


def test_a_package_callable_from_its_package_loads() -> None:
    predict = import_callable(
        "profanity_check:predict_prob", module_dirs=[], package="alt-profanity-check==1.9.1"
    )
    assert predict.__module__ == "profanity_check.profanity_check"


def _plant_bytecode(module: Path, source: str, target: Path) -> None:
    """Compile `source` as if it were `module`'s bytecode, unchecked: Python trusts it."""
    other = module.parent / "_other.py"
    other.write_text(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(
        str(other),
        cfile=str(target),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    other.unlink()


def test_committed_bytecode_cannot_change_a_result(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DATASET + METHOD, {"metrics/metrics.py": ANSWER % 1})
    module = project / "audits" / "metrics" / "metrics.py"
    # With the prefix unset, this is exactly where CPython would look for the cache.
    cached = Path(cache_from_source(str(module), optimization=""))
    if sys.pycache_prefix:
        cached = module.parent / "__pycache__" / cached.name
    _plant_bytecode(module, ANSWER % 2, cached)
    store = tmp_path / "store"
    result = auditc("-C", str(project), "run", "--store", str(store), env=NO_CACHE)
    assert result.returncode == 0, result.stderr
    parts = list(store.glob("measurement/answer/*/part-*.parquet")) or list(
        store.glob("method/answer/*/part-*.parquet")
    )
    assert parts, list(store.rglob("*"))
    assert pq.read_table(parts[0]).column("value").to_pylist() == [1]


def test_sourceless_bytecode_in_a_module_is_refused(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DATASET + METHOD, {"metrics/metrics.py": ANSWER % 1})
    module = project / "audits" / "metrics" / "metrics.py"
    # Python imports `helpers.pyc` without any source; ids would never see its content.
    _plant_bytecode(module, ANSWER % 2, module.parent / "helpers.pyc")
    result = auditc("-C", str(project), "validate")
    assert_usage_error(
        result,
        "Module/metrics: spec.path: 'audits/metrics/helpers.pyc' is compiled bytecode "
        "without its source",
        "[sourceless-module]",
    )


def test_both_backends_run_modules_with_a_private_bytecode_cache(tmp_path: Path) -> None:
    from dockerfile_parse import DockerfileParser

    fixture = REPO / "tests" / "fixtures" / "audits" / "k8s-basic"
    out = tmp_path / "manifests"
    result = auditc("-C", str(fixture), "compile", "--store", "s3://bucket/x", "--out", str(out))
    assert result.returncode == 0, result.stderr

    runner_containers = 0
    for file in out.glob("*.yaml"):
        manifest = yaml.safe_load(file.read_text())
        pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            if "auditc-runner" in container["image"]:
                runner_containers += 1
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                assert env.get("PYTHONPYCACHEPREFIX") == "/opt/auditc/pycache", (file, container)
    assert runner_containers > 5
    dockerfile = DockerfileParser(str(REPO / "runners" / "images" / "Dockerfile"))
    assert dockerfile.envs["PYTHONPYCACHEPREFIX"] == "/opt/auditc/pycache"
    assert "-X pycache_prefix=/opt/auditc/pycache -m compileall" in dockerfile.content


def test_a_module_left_by_another_audit_is_not_reused(tmp_path: Path) -> None:
    # The local launcher forks steps from a process that may have imported another
    # audit's Module of the same name: that one must not answer for this one.
    first, second = tmp_path / "first", tmp_path / "second"
    for directory, value in ((first, 1), (second, 2)):
        directory.mkdir()
        (directory / "leftover_metrics.py").write_text(f"def value():\n    return {value}\n")
    sys.path.insert(0, str(first))
    try:
        assert import_callable("leftover_metrics:value", module_dirs=[str(first)])() == 1
    finally:
        sys.path.remove(str(first))
    sys.path.insert(0, str(second))
    try:
        assert import_callable("leftover_metrics:value", module_dirs=[str(second)])() == 2
    finally:
        sys.path.remove(str(second))
        sys.modules.pop("leftover_metrics", None)
