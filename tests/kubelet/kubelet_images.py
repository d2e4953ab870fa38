"""The "images" the test kubelet can run, made from this machine's files.

No image can be built or pulled here (no Docker engine, no registry), so each image
the manifests name is stood for by a root filesystem assembled from host paths:

- **auditc's runner image** (`runners/images/Dockerfile`) is the project's own
  environment (and its build-time bytecode cache, this machine's warmed private one): the virtual environment stands for the image's `/opt/auditc` (its
  `bin/` takes that place on `PATH`), together with the interpreter it was made from
  and the repository it installs in editable mode, each at its own absolute path so
  that the venv resolves. The image's `ENV`, `WORKDIR` and `USER` are read from the
  Dockerfile's final stage, and it has the Dockerfile's user `auditc` (10001) in its
  `/etc/passwd` and the directories it creates (`/work/inputs`, `/work/state`).
- **vLLM's image** is the same environment plus a stand-in `vllm` executable
  (`vllm_stand_in/vllm`) on `PATH`, and — as the official image — no passwd entry for
  uid 10001 and `/vllm-workspace` as its working directory.

Every other path of the host stays invisible in the container: the root is a tmpfs
holding only these binds, so a command that works here would work in an image with
the same files. What differs from a real image (library versions of the host, no
CUDA) is said in docs/kubernetes.md.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from runners import RUNNER_IMAGE_PYCACHE

__all__ = ["HERE", "Image", "ImageNotFound", "Images", "project_images"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of the python:3.11-slim base image."""
_SYSTEM_DIRS = ("/usr", "/etc/alternatives")
_ETC_FILES = (
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "resolv.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "ssl",
    "ca-certificates",
    "mime.types",
    "fonts",
)
_BASE_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
_BASE_GROUP = "root:x:0:\nnogroup:x:65534:\n"


class ImageNotFound(LookupError):
    """The manifests name an image this cluster cannot run (the kubelet's ErrImagePull)."""


@dataclass(frozen=True)
class Image:
    """A root filesystem and the configuration an image would carry."""

    name: str
    env: dict[str, str]
    """The image's `ENV` (before the container's own `env`)."""
    workdir: str
    user: tuple[int, int] | None
    """`USER uid:gid`, or None for root."""
    binds: tuple[str, ...]
    """Host paths visible read-only at the same path in the container."""
    passwd: str
    group: str
    dirs: tuple[tuple[str, int], ...] = ()
    """Directories the image creates, with their owner uid."""
    extra_binds: tuple[tuple[str, str], ...] = field(default=())
    """(host path, path in the container) pairs, read-only."""


class Images:
    """Image references → images; `fnmatch` patterns, first match wins."""

    def __init__(self, images: dict[str, Image]) -> None:
        self._images = images

    def resolve(self, reference: str) -> Image:
        """The image for `reference`.

        Raises:
            ImageNotFound: no pattern matches.
        """
        for pattern, image in self._images.items():
            if fnmatch.fnmatchcase(reference, pattern):
                return image
        raise ImageNotFound(
            f"image {reference!r} cannot be run by the test kubelet "
            f"(it knows {', '.join(self._images)})"
        )


def _system_binds() -> list[str]:
    binds = [path for path in _SYSTEM_DIRS if os.path.exists(path)]
    binds += [f"/etc/{name}" for name in _ETC_FILES if os.path.exists(f"/etc/{name}")]
    return binds


def _environment_binds() -> list[str]:
    """The venv's interpreter installation and the repository (which holds the venv)."""
    binds = [sys.base_prefix, str(REPO)]
    venv = Path(sys.prefix).resolve()
    if not venv.is_relative_to(REPO):
        binds.append(str(venv))
    # The interpreter of `python -m venv` may live elsewhere than base_prefix (a symlink).
    real = Path(os.path.realpath(sys.executable)).parent.parent
    if str(real) not in binds and not real.is_relative_to("/usr"):
        binds.append(str(real))
    return [b for b in dict.fromkeys(binds) if not b.startswith("/usr/")]


def _final_stage(parser: DockerfileParser) -> list[dict[str, str]]:
    instructions = [i for i in parser.structure if i["instruction"] != "COMMENT"]
    start = max(n for n, i in enumerate(instructions) if i["instruction"] == "FROM")
    return instructions[start:]


_WARM_IMPORTS = (
    "runners.fetch.__main__",
    "runners.datasets.__main__",
    "runners.evaluation.__main__",
    "runners.methods.__main__",
    "runners.inference.__main__",
    "runners.launcher",
    "pyarrow.dataset",
    "pyarrow.parquet",
    "httpx",
    "uvicorn",
    "starlette.applications",
    "papermill",
    "nbconvert",
    "ipykernel.kernelapp",
    "matplotlib.pyplot",
    "profanity_check",
)


@functools.cache
def _bytecode_cache() -> str:
    """What stands for the image's build-time bytecode cache (`RUNNER_IMAGE_PYCACHE`).

    The Dockerfile compiles the image's libraries into that prefix, and pods read
    bytecode only there. Paths in these containers are this machine's, so this
    machine's private cache serves, once it holds what the runners import.
    """
    from runners import default_bytecode_cache

    cache = default_bytecode_cache()
    cache.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = (
        "import importlib\n"
        f"for name in {_WARM_IMPORTS!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except Exception:\n        pass\n"
    )
    subprocess.run(
        [sys.executable, "-X", f"pycache_prefix={cache}", "-c", code],
        env=env,
        check=False,
        capture_output=True,
        timeout=600,
    )
    return str(cache)


def runner_image(dockerfile: Path = REPO / "runners" / "images" / "Dockerfile") -> Image:
    """auditc's runner image as the Dockerfile describes it, from the project's environment."""
    parser = DockerfileParser(str(dockerfile))
    stage = _final_stage(parser)
    workdir = [i["value"] for i in stage if i["instruction"] == "WORKDIR"][-1]
    uid, _, gid = [i["value"] for i in stage if i["instruction"] == "USER"][-1].partition(":")
    venv_bin = str(Path(sys.prefix) / "bin")
    env = dict(parser.envs)
    env["PATH"] = env["PATH"].replace("/opt/auditc/bin", venv_bin).rstrip(":") + ":" + _BASE_PATH
    user = (int(uid), int(gid or uid))
    return Image(
        name="auditc-runner",
        env=env,
        workdir=workdir,
        user=user,
        binds=(*_system_binds(), *_environment_binds()),
        passwd=_BASE_PASSWD + f"auditc:x:{user[0]}:{user[1]}::/tmp:/usr/sbin/nologin\n",
        group=_BASE_GROUP + f"auditc:x:{user[1]}:\n",
        dirs=((workdir, user[0]), (f"{workdir}/inputs", user[0]), (f"{workdir}/state", user[0])),
        extra_binds=((_bytecode_cache(), env.get("PYTHONPYCACHEPREFIX", RUNNER_IMAGE_PYCACHE)),),
    )


def vllm_image() -> Image:
    """vLLM's OpenAI server image, stood for by `kubelet_vllm.py` as `vllm` on PATH."""
    runner = runner_image()
    return Image(
        name="vllm-openai (stand-in)",
        env={
            "PATH": f"/opt/vllm-stand-in:{Path(sys.prefix) / 'bin'}:{_BASE_PATH}",
            "PYTHONUNBUFFERED": "1",
        },
        workdir="/vllm-workspace",
        user=None,
        binds=runner.binds,
        passwd=_BASE_PASSWD,
        group=_BASE_GROUP,
        dirs=(("/vllm-workspace", 0),),
        extra_binds=((str(HERE / "vllm_stand_in"), "/opt/vllm-stand-in"),),
    )


def project_images(runner_reference: str) -> Images:
    """The runner image under `runner_reference` and vLLM's official images."""
    return Images({runner_reference: runner_image(), "vllm/vllm-openai:*": vllm_image()})
