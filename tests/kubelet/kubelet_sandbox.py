"""The container runtime of the test kubelet: `python kubelet_sandbox.py SPEC.json`.

Run as root, it turns itself into one container of a pod and then `exec`s the
container's command, so the process the kubelet waits on *is* the container:

1. joins the pod's network namespace (`setns`), so the container has the pod's IP and
   shares `127.0.0.1` with the pod's other containers;
2. enters new mount and UTS namespaces and sets the pod's hostname;
3. builds a root filesystem on a fresh tmpfs: the image's directories and files
   bind-mounted read-only (`binds`), the image's own files (`files`, e.g. an
   `/etc/passwd` without the pod's uid) and directories (`dirs`), then the pod's
   volumes bind-mounted at their mount paths, read-only where the manifest says so;
4. remounts that tmpfs read-only when `readOnlyRootFilesystem` is set, so only
   volumes are writable, then `chroot`s into it and changes to the working directory;
5. drops to the container's uid, gid and groups (`runAsUser`, `runAsGroup`,
   `fsGroup`), sets `no_new_privs` (`allowPrivilegeEscalation: false`), and executes
   the command with exactly the environment given.

Only the standard library is used: this runs before the container's own Python exists.
Errors before `exec` are printed as `sandbox: …` and exit with code 128, as a container
runtime reports a container it could not create.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import stat
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
EXIT_SANDBOX_ERROR = 128

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(Exception):
    """The container could not be created as specified."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(errno)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source or fstype} on {target}",
    )


def _enter_network(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def _inside(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _make_mount_point(target: str, source: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            with open(target, "w"):
                pass


def _bind(root: str, bind: dict[str, Any]) -> None:
    target = _inside(root, bind["target"])
    source = bind["source"]
    if not os.path.exists(source):
        raise SandboxError(f"bind source {source} does not exist")
    _make_mount_point(target, source)
    _mount(source, target, None, MS_BIND | MS_REC)
    if bind.get("readonly"):
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _build_root(spec: dict[str, Any]) -> str:
    root = spec["rootfs"]
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m")
    for link in spec.get("symlinks", []):
        os.symlink(link["to"], _inside(root, link["path"]))
    for directory in spec.get("dirs", []):
        path = _inside(root, directory["path"])
        os.makedirs(path, exist_ok=True)
        os.chmod(path, directory.get("mode", 0o755))
        os.chown(path, directory.get("uid", 0), directory.get("gid", 0))
    for item in spec.get("files", []):
        path = _inside(root, item["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(item["content"])
        os.chmod(path, item.get("mode", 0o644))
    # Parents before children, as the kubelet sorts volume mounts.
    for bind in sorted(spec["binds"], key=lambda b: b["target"].rstrip("/").count("/")):
        _bind(root, bind)
    if spec.get("read_only_root"):
        _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return str(root)


def _resolve(command: str, env: dict[str, str]) -> str:
    if "/" in command:
        return command
    for directory in env.get("PATH", "").split(":"):
        candidate = os.path.join(directory, command)
        if os.path.isfile(candidate) and os.stat(candidate).st_mode & stat.S_IXOTH:
            return candidate
    raise SandboxError(f'executable file "{command}" not found in $PATH ({env.get("PATH", "")})')


def _drop_privileges(spec: dict[str, Any]) -> None:
    os.setgroups(spec.get("groups", []))
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    if spec.get("no_new_privs"):
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def run(spec: dict[str, Any]) -> None:
    """Become the container described by `spec` and exec its command (never returns)."""
    _enter_network(spec["netns"])
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    socket.sethostname(spec["hostname"])
    root = _build_root(spec)
    os.chroot(root)
    os.chdir(spec["workdir"])
    env = dict(spec["env"])
    executable = _resolve(spec["argv"][0], env)
    _drop_privileges(spec)
    os.execve(executable, spec["argv"], env)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    try:
        run(spec)
    except (SandboxError, OSError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        os._exit(EXIT_SANDBOX_ERROR)


if __name__ == "__main__":
    main()
