"""`pip install .` with no extras, in a fresh virtual environment: what a fork's pull request runs.

The core install must validate and plan the repository's audits in at most 60 MB of
installed packages, without pyarrow, and a command that needs an extra must say which.
pip installs from the package index this machine is configured with; where that
configuration names a local (file://) index, only that is used, so the test stays offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from install_helpers import write_manifest

ROOT = Path(__file__).parents[2]
CORE_LIMIT_MB = 60.0

SIZE_SCRIPT = """
import importlib.metadata as md, json, os
sizes = {}
for dist in md.distributions():
    name = dist.metadata["Name"]
    if name.lower() in ("pip", "setuptools", "wheel"):
        continue  # the virtual environment's own tools, not what auditc installs
    sizes[name] = sum(os.path.getsize(f.locate()) for f in dist.files or [] if f.locate().is_file())
print(json.dumps(sizes))
"""


def local_index_args() -> list[str]:
    """pip options that keep the install on this machine's local index, when it has one."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    urls = [
        url
        for line in out.splitlines()
        if "index-url" in line
        for url in line.split("=", 1)[1].strip().strip("'\"").split()
        if url.startswith("file://")
    ]
    if not urls:
        return []
    return ["--index-url", urls[0], *[a for url in urls[1:] for a in ("--extra-index-url", url)]]


def copy_project(target: Path) -> None:
    """The files of a clean clone (tracked, plus new files not ignored), without build outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        source = ROOT / raw.decode()
        if source.is_file():
            (target / raw.decode()).parent.mkdir(parents=True, exist_ok=True)
            (target / raw.decode()).write_bytes(source.read_bytes())


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_core_install_validates_and_plans_in_60_mb(tmp_path: Path) -> None:
    project, env_dir = tmp_path / "project", tmp_path / "venv"
    copy_project(project)
    venv.create(env_dir, with_pip=True)
    python, auditc = env_dir / "bin" / "python", str(env_dir / "bin" / "auditc")
    installed = run(
        [str(python), "-m", "pip", "install", "--quiet", *local_index_args(), "."],
        cwd=project,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    sizes = json.loads(run([str(python), "-c", SIZE_SCRIPT], cwd=project).stdout)
    assert "pyarrow" not in sizes and "numpy" not in sizes, sorted(sizes)
    total_mb = sum(sizes.values()) / 1e6
    assert total_mb <= CORE_LIMIT_MB, f"{total_mb:.1f} MB: {sorted(sizes.items())}"

    validated = run([auditc, "validate", "audits/"], cwd=project)
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.startswith("ok: ")

    planned = run([auditc, "plan", "--format", "json"], cwd=project)
    assert planned.returncode == 0, planned.stderr
    entries = json.loads(planned.stdout)["entries"]
    assert entries and {e["action"] for e in entries} == {"create"}

    # Against a local store, read without pyarrow: a complete node is kept.
    first = entries[0]
    write_manifest(project / ".auditc", first["kind"], first["name"], first["id"])
    replanned = run([auditc, "plan", "--format", "json"], cwd=project)
    assert replanned.returncode == 0, replanned.stderr
    actions = {e["name"]: e["action"] for e in json.loads(replanned.stdout)["entries"]}
    assert actions[first["name"]] == "keep"

    # Its files are listed (with os, not pyarrow): one its manifest does not list damages it.
    node_dir = project / ".auditc" / first["kind"].lower() / first["name"] / first["id"]
    (node_dir / "stray.parquet").write_bytes(b"not written by auditc")
    damaged = run([auditc, "plan"], cwd=project)
    assert damaged.returncode == 0, damaged.stderr
    assert f"! {first['kind']}/{first['name']}" in damaged.stdout
    assert "stray.parquet: unlisted" in damaged.stdout, damaged.stdout
    (node_dir / "stray.parquet").unlink()

    for command in (["graph"], ["schema"], ["compile", "--target", "local", "--out", "out"]):
        done = run([auditc, *command], cwd=project)
        assert done.returncode == 0, (command, done.stderr)

    for command, extra in ((["check"], "results"), (["run", "audits/tutorial"], "run")):
        refused = run([auditc, *command], cwd=project)
        assert refused.returncode == 2, refused.stderr
        assert f"pip install 'auditc[{extra}]'" in refused.stderr
        assert "Traceback" not in refused.stderr
