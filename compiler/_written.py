"""Files auditc generates into a directory the user names (`compile --out DIR`).

The directory may hold the user's own files too (a kustomization, a README, other
manifests such as `99-secret-prod-db.yaml`). A marker file, `.auditc-generated.json`,
lists every file auditc wrote there with its sha256, and only those are ever replaced
or removed:

- a file auditc would write whose name is taken by a file it did not write is an error,
  and nothing is written;
- a file auditc wrote and someone changed since is neither replaced nor removed (an
  error says which);
- files auditc wrote earlier that the new output no longer has are removed.

The marker is written first with the old and the new names, then the files (each
atomically), then the marker with the new names only: an interrupted write leaves
every file either listed in the marker or untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

from schemas import UsageError

__all__ = ["MARKER_FILE", "write_generated_files"]

MARKER_FILE = ".auditc-generated.json"
_MARKER_VERSION = 1


def write_generated_files(out: Path, files: dict[str, str], *, option: str = "--out") -> list[Path]:
    """Write `files` (name → text) into `out`, replacing only what auditc wrote there before.

    Args:
        out: the directory (created if missing).
        files: file names (no directories) and their UTF-8 text.
        option: how the command names `out`, for messages.

    Returns:
        The paths written, in the order of `files`.

    Raises:
        UsageError: `out` is not a directory or cannot be created, or writing would
            replace or remove a file auditc did not write (or changed since it wrote it).
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"{option} {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {out}: cannot create it: {exc.strerror or exc}") from None
    owned = _read_marker(out, option)
    foreign = sorted(n for n in files if os.path.lexists(out / n) and n not in owned)
    changed = sorted(n for n, digest in owned.items() if _changed(out / n, digest))
    if foreign or changed:
        raise UsageError(_refusal(out, option, foreign, changed))
    new = {name: _sha256(text.encode()) for name, text in files.items()}
    try:
        _write_marker(out, {**owned, **new})
        written = []
        for name, text in files.items():
            _write_atomically(out / name, text.encode())
            written.append(out / name)
        for name in sorted(set(owned) - set(new)):
            (out / name).unlink(missing_ok=True)
        _write_marker(out, new)
    except OSError as exc:
        raise UsageError(f"{option} {out}: cannot write there: {exc}") from None
    return written


def _refusal(out: Path, option: str, foreign: list[str], changed: list[str]) -> str:
    parts = []
    if foreign:
        parts.append(
            f"{_names(foreign)} already exist{'s' if len(foreign) == 1 else ''} and "
            f"{'was' if len(foreign) == 1 else 'were'} not written by auditc "
            f"(not listed in {MARKER_FILE})"
        )
    if changed:
        parts.append(
            f"{_names(changed)} {'was' if len(changed) == 1 else 'were'} changed after "
            "auditc wrote them"
        )
    return (
        f"{option} {out}: {'; '.join(parts)}; nothing was written. Move those files away, "
        "or compile into another directory"
    )


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _read_marker(out: Path, option: str) -> dict[str, str]:
    path = out / MARKER_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if data.get("version") != _MARKER_VERSION or not all(
            isinstance(k, str) and isinstance(v, str) and "/" not in k and k not in (".", "..")
            for k, v in files.items()
        ):
            raise ValueError("unexpected content")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{option} {out}: {MARKER_FILE} is not a file auditc wrote ({exc}); remove it "
            "only if every file it lists may be replaced"
        ) from None
    return dict(files)


def _write_marker(out: Path, files: dict[str, str]) -> None:
    document = {
        "version": _MARKER_VERSION,
        "generator": "auditc",
        "files": dict(sorted(files.items())),
    }
    _write_atomically(out / MARKER_FILE, (json.dumps(document, indent=2) + "\n").encode())


def _changed(path: Path, digest: str) -> bool:
    """Whether a file auditc wrote was changed since (a file removed since is not)."""
    if not os.path.lexists(path):
        return False
    if path.is_symlink() or not path.is_file():
        return True
    return _sha256(path.read_bytes()) != digest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    # open() (not mkstemp) so the file gets the usual permissions (0666 less the umask).
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
