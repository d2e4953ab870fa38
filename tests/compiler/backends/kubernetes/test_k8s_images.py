"""The runner image's Dockerfile (no Docker here: parsed, not built): non-root, pinned, no secrets."""

from __future__ import annotations

import re
import tomllib

import pytest
from dockerfile_parse import DockerfileParser
from k8s_helpers import REPO

from compiler.backends.kubernetes._pods import RUN_AS_USER

IMAGES = REPO / "runners" / "images"
SECRET_WORDS = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|CREDENTIAL)", re.I)


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(IMAGES / "Dockerfile"))


def _final_stage(dockerfile: DockerfileParser) -> list[dict[str, str]]:
    instructions = [i for i in dockerfile.structure if i["instruction"] != "COMMENT"]
    last_from = max(n for n, i in enumerate(instructions) if i["instruction"] == "FROM")
    return instructions[last_from:]


def test_runs_as_the_numeric_non_root_user_the_pods_expect(dockerfile: DockerfileParser) -> None:
    users = [i["value"] for i in _final_stage(dockerfile) if i["instruction"] == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    user, _, group = users[-1].partition(":")
    # Kubernetes can only verify runAsNonRoot for a numeric user.
    assert user.isdigit() and int(user) != 0
    assert int(user) == RUN_AS_USER and (not group or int(group) != 0)


def test_base_image_is_a_pinned_slim_python(dockerfile: DockerfileParser) -> None:
    assert dockerfile.is_multistage
    base = dockerfile.baseimage  # with build args expanded
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "FROM":
            assert ":latest" not in instruction["value"]


def test_no_secrets_enter_the_image(dockerfile: DockerfileParser) -> None:
    for instruction in dockerfile.structure:
        kind, value = instruction["instruction"], instruction["value"]
        if kind in ("ENV", "ARG", "LABEL"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)=", value) or [value.split("=")[0]]
            assert not [n for n in names if SECRET_WORDS.search(n)], instruction
        if kind in ("COPY", "ADD"):
            assert not re.search(r"\.env\b|\.aws|\.ssh|credentials|\.netrc|id_rsa", value), value
            assert "://" not in value, "ADD from a URL is not reproducible"
        if kind == "RUN":
            assert "--mount=type=secret" not in value
            assert not SECRET_WORDS.search(value), value
    ignore = (IMAGES / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][0] == "*", "the build context starts from nothing"


def test_every_dependency_is_pinned() -> None:
    pins = {}
    for line in (IMAGES / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert re.fullmatch(r"\d+(\.\d+)+", version), line
            pins[name.lower().replace("_", "-")] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + [
        d for e in ("run", "notebooks", "huggingface") for d in extras[e] if "auditc[" not in d
    ]
    names = {re.split(r"[<>=!~\[ ;]", d)[0].lower().replace("_", "-") for d in wanted}
    assert names - set(pins) == set(), "runtime dependencies without a pinned version"
    assert "pip" in pins
