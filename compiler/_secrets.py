"""Secret values written into specs, found at validate time and never echoed.

Specs are committed to git and copied into plans, manifests, ConfigMaps and the
store, so a secret written in one leaks everywhere. Three kinds of evidence flag a
string value of a resource (its value is never shown, only where it is and why):

- a credential inside a URL: `https://user:password@host`, a long token as the user
  (`https://<token>@github.com/...`), or a query parameter named like a key
  (`?api_key=...`, `&token=...`, `X-Amz-Signature=...`);
- a well-known token format anywhere: OpenAI/Anthropic `sk-…`, Hugging Face `hf_…`,
  GitHub `ghp_…`/`github_pat_…`, AWS `AKIA…`, Google `AIza…`, Slack `xox?-…`, JWTs,
  `Bearer …` and PEM private keys;
- a literal value under a key named like a secret (`DB_PASSWORD`, `HF_TOKEN`,
  `api-key`, …) in a free-form mapping (a container's `env`, method `parameters`,
  pipeline kwargs) or after such a command-line flag (`--api-key VALUE`), when the
  value looks like one (8+ characters without spaces, with a digit or symbol, or 20+
  characters), and is not the *name* of a variable (`OPENAI_API_KEY`, `$TOKEN`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._load import FieldPath
from ._project import LoadedResource

__all__ = ["SECRET_HINT", "secret_findings"]

SECRET_HINT = (
    "specs are committed to git and copied into manifests and the store: reference secrets "
    "instead (runner.api_key_env for an external service's key; environment variables or "
    "Kubernetes Secrets for the rest, see docs/security.md)"
)

_SCHEME_END = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}$")
_AUTHORITY = re.compile(r"[^/?#\s]{0,512}")
_TOKEN_USER = re.compile(r"[A-Za-z0-9_-]{20,}")
_URL_SECRET_PARAM = re.compile(
    r"[?&;](?:api[_-]?key|apikey|key|access[_-]?token|auth[_-]?token|token|secret|"
    r"client[_-]?secret|password|passwd|pwd|sig|signature|x-amz-signature|"
    r"x-amz-credential|x-amz-security-token)=[^&#\s]{6,}",
    re.IGNORECASE,
)
_TOKENS = {
    "an OpenAI/Anthropic-style API key (sk-…)": r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}",
    "a Hugging Face token (hf_…)": r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}",
    "a GitHub token": r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    "an AWS access key id": r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])",
    "a Google API key": r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}",
    "a Slack token": r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}",
    "a JSON Web Token": r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
    "a bearer token": r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{20,}",
    "a private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
}
_TOKEN_PATTERNS = [(what, re.compile(pattern)) for what, pattern in _TOKENS.items()]
_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:api[_-]?key|apikey|secret|secret[_-]?key|password|passwd|pwd|token|"
    r"access[_-]?key|private[_-]?key|client[_-]?secret|credentials?|auth[_-]?token)(?:$|[_.-])",
    re.IGNORECASE,
)
_VARIABLE_NAME = re.compile(r"^\$?\{?\(?[A-Z_][A-Z0-9_]*\)?\}?$")


def secret_findings(loaded: LoadedResource) -> list[tuple[FieldPath, str]]:
    """Where `loaded` holds something that looks like a secret, and what it looks like.

    Returns:
        `(field path, description)` pairs; the description never contains the value.
    """
    data = loaded.resource.model_dump(mode="json", by_alias=True, exclude_unset=True)
    findings: dict[FieldPath, str] = {}
    for path, key, value in _strings(data, ()):
        what = _looks_secret(value) or _named_secret(key, value)
        if what is not None:
            findings.setdefault(path, what)
    for path, flag in _flag_values(data, ()):
        findings.setdefault(path, f"the value of {flag}")
    return sorted(findings.items(), key=lambda item: [str(p) for p in item[0]])


def _strings(value: Any, path: FieldPath, key: str = "") -> Iterator[tuple[FieldPath, str, str]]:
    """Every string in a JSON-like value: (path, the mapping key it is under, the string)."""
    if isinstance(value, str):
        yield path, key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k), str(k))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i), key)


def _looks_secret(value: str) -> str | None:
    found = _url_credentials(value)
    if found is not None:
        return found
    if _URL_SECRET_PARAM.search(value):
        return "a URL with a key or token in its query"
    for what, pattern in _TOKEN_PATTERNS:
        if pattern.search(value):
            return what
    return None


def _url_credentials(value: str) -> str | None:
    """A password or a token in the user part of a URL (`scheme://user:password@host`).

    Scans from each `://` (patterns that start anywhere and run to `://` take time
    quadratic in a long string: a spec could hang validation with one).
    """
    start = value.find("://")
    while start >= 0:
        if _SCHEME_END.search(value[max(0, start - 31) : start]):
            match = _AUTHORITY.match(value, start + 3)
            authority = match.group(0) if match else ""
            user, at, _ = authority.rpartition("@")
            if at and ":" in user:
                return "a URL with a password"
            if at and _TOKEN_USER.fullmatch(user):
                return "a URL with a token as its user"
        start = value.find("://", start + 3)
    return None


def _named_secret(key: str, value: str) -> str | None:
    if not key or key.endswith(("_env", "_path", "_file")) or not _SECRET_NAME.search(key):
        return None
    return f"a literal value for {key!r}" if _secret_like(value) else None


def _secret_like(value: str) -> bool:
    if len(value) < 8 or any(c.isspace() for c in value) or _VARIABLE_NAME.match(value):
        return False
    symbols_or_digits = any(not c.isalpha() for c in value)
    return symbols_or_digits or len(value) >= 20


def _flag_values(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    """Values of secret-named flags in command-line lists: `--api-key V`, `--token=V`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flag_values(v, (*path, k))
    elif isinstance(value, list):
        items = [v if isinstance(v, str) else "" for v in value]
        for i, item in enumerate(items):
            flag, eq, inline = item.partition("=")
            if not flag.startswith("-") or not _SECRET_NAME.search(flag.lstrip("-")):
                continue
            candidate = inline if eq else (items[i + 1] if i + 1 < len(items) else "")
            if candidate and not candidate.startswith("-") and _secret_like(candidate):
                yield (*path, i if eq else i + 1), flag
        for i, item in enumerate(value):
            if isinstance(item, dict | list):
                yield from _flag_values(item, (*path, i))
