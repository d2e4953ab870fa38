"""CLI conventions, the way users meet them: `run --format json`, NO_COLOR on a terminal,
and shell completion through the installed console script."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

from e2e_helpers import AUDITC, REPO, auditc

SGR = re.compile(rb"\x1b\[[0-9;]*m")
"""An ANSI colour or style sequence (cursor movement is not colour)."""


def test_run_format_json_lists_each_node(project: Path) -> None:
    first = auditc("-C", str(project), "run", ".", "--format", "json")
    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    assert document["schema_version"] == 1 and document["ok"] is True
    nodes = {n["name"]: n for n in document["nodes"]}
    assert set(nodes) == {"phrases", "phrases-through-length", "mean-score", "label-counts", "case"}
    for node in nodes.values():
        assert node["status"] == "ran" and node["time_s"] > 0
        assert len(node["id"]) == 20 and Path(node["outputs"]["uri"]).is_dir()
        assert Path(node["outputs"]["uri"]).name == node["id"]
    assert nodes["phrases-through-length"]["rows"] > 0
    assert nodes["case"]["outputs"]["kind"] == "SafetyCase"
    assert Path(nodes["case"]["outputs"]["report"]).name == "index.html"
    assert "run…" in first.stderr  # progress stays on stderr

    again = json.loads(auditc("-C", str(project), "run", ".", "--format", "json").stdout)
    assert {n["status"] for n in again["nodes"]} == {"kept"}
    assert {n["time_s"] for n in again["nodes"]} == {None}
    assert [n["id"] for n in again["nodes"]] == [n["id"] for n in document["nodes"]]


def on_terminal(args: list[str], env: dict[str, str], timeout: float = 180) -> tuple[int, bytes]:
    """Run a command with stdout and stderr on a pseudo-terminal; its exit code and output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        args, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=30), bytes(output)


def test_no_color_is_honoured_on_a_terminal(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    code, coloured = on_terminal([*AUDITC, "-C", str(project), "run", "."], env)
    assert code == 0, coloured.decode(errors="replace")
    assert SGR.search(coloured), "a terminal run shows colour (or this test checks nothing)"

    code, plain = on_terminal(
        [*AUDITC, "-C", str(project), "run", ".", "--force"], {**env, "NO_COLOR": "1"}
    )
    assert code == 0, plain.decode(errors="replace")
    assert b"done in" in plain
    assert not SGR.search(plain), SGR.findall(plain)[:5]


def test_shell_completion_of_commands_and_options() -> None:
    env = {**os.environ, "_AUDITC_COMPLETE": "bash_complete"}
    words = auditc(env={**env, "COMP_WORDS": "auditc va", "COMP_CWORD": "1"})
    assert words.stdout.split() == ["plain,validate"]
    formats = auditc(env={**env, "COMP_WORDS": "auditc validate --format ", "COMP_CWORD": "3"})
    assert formats.stdout.split() == ["plain,text", "plain,json"]
    # The README's set-up lines, one per shell.
    for shell, line in [
        ("bash", "complete -o nosort -F _auditc_completion auditc"),
        ("zsh", "compdef _auditc_completion auditc"),
        ("fish", "complete --no-files --command auditc"),
    ]:
        script = auditc(env={"_AUDITC_COMPLETE": f"{shell}_source"})
        assert script.returncode == 0 and line in script.stdout, (shell, script.stdout)
    readme = (REPO / "README.md").read_text()
    for shell in ("bash", "zsh", "fish"):
        assert f"_AUDITC_COMPLETE={shell}_source auditc" in readme
