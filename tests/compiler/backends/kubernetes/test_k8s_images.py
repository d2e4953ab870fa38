"""The runner image's Dockerfile (no Docker here: parsed, not built): non-root, pinned, no secrets."""

from __future__ import annotations

import re
import tomllib

import pytest
from dockerfile_parse import DockerfileParser
from k8s_helpers import REPO
from packaging.version import Version

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
            assert str(Version(version)) == version, f"{line}: an exact version"
            pins[name.lower().replace("_", "-")] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + [
        d for e in ("run", "notebooks", "huggingface") for d in extras[e] if "auditc[" not in d
    ]
    names = {re.split(r"[<>=!~\[ ;]", d)[0].lower().replace("_", "-") for d in wanted}
    assert names - set(pins) == set(), "runtime dependencies without a pinned version"
    assert "pip" in pins


# The runner image: linux/amd64, CPython 3.11 (Dockerfile's PYTHON_IMAGE).
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def _pins() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (IMAGES / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_every_transitive_dependency_is_pinned() -> None:
    """Walk the requirements of auditc[run,notebooks,huggingface] through the metadata of
    the installed packages, as pip would resolve them in the image: each one reached is
    pinned. (Packages not installed here — CUDA wheels of torch's PyPI build — cannot
    be walked further; they are pinned all the same.)"""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = _pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    todo = [Requirement(r) for r in project["dependencies"]]
    todo += [Requirement(r) for e in ("run", "notebooks", "huggingface") for r in extras[e]]
    seen: set[str] = set()
    missing: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        wanted = requirement.extras or {""}
        if any(
            requirement.marker
            and not requirement.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": e})
            for e in wanted
        ):
            continue
        if name == "auditc":
            todo += [Requirement(r) for e in requirement.extras for r in extras[e]]
            continue
        if name not in pins:
            missing.add(name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            continue
        if installed.version != pins.get(name):
            continue  # another version here: its requirements may not be the pinned one's
        requires = installed.requires or []
        for text in requires:
            child = Requirement(text)
            environments = [{**IMAGE_ENVIRONMENT, "extra": e} for e in ("", *requirement.extras)]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                child.marker = None
                todo.append(child)
    assert missing == set(), "not pinned in runners/images/constraints.txt: run `make constraints`"
    assert len(seen) > 60, "the walk reached the whole tree"
