"""Kubernetes names and labels of the resources a node becomes.

A name carries the node's id (`<name>-<id[:10]>`), so a node whose id changes gets
new resources and every other node keeps its own untouched. Names are valid DNS-1123
labels (at most 63 characters); when a suffix makes one too long, the resource name
is cut and a short hash of it keeps the result unique.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "DNS_LABEL_MAX",
    "ID_CHARS",
    "LABEL_PREFIX",
    "dns_label",
    "indexed_job_reserve",
    "is_dns_label",
    "node_labels",
    "object_name",
    "service_name",
]

DNS_LABEL_MAX = 63
ID_CHARS = 10
"""Hex characters of the node id in names: 40 bits, plenty within one namespace."""
LABEL_PREFIX = "auditc.io"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(name: str) -> bool:
    """Whether `name` is a DNS-1123 label (lower-case alphanumerics and '-', ≤ 63)."""
    return len(name) <= DNS_LABEL_MAX and bool(_DNS_LABEL.match(name))


def dns_label(base: str, *tail: str, reserve: int = 0) -> str:
    """`base-tail1-tail2…`, with `base` cut (and hashed) so the whole fits in 63 characters.

    `reserve` keeps that many characters free for what Kubernetes appends to the name
    (`-<index>` in an Indexed Job's pod hostnames).

    Example:
        >>> dns_label("toxicity-eval", "3f2a9c0b1d")
        'toxicity-eval-3f2a9c0b1d'
    """
    limit = DNS_LABEL_MAX - reserve
    suffix = "".join(f"-{part}" for part in tail if part)
    name = base + suffix
    if len(name) <= limit:
        return name
    # Cutting alone could make two long names equal; a hash of the full base keeps them apart.
    digest = hashlib.sha256(base.encode()).hexdigest()[:4]
    room = limit - len(suffix) - len(digest) - 1
    return f"{base[:room].rstrip('-')}-{digest}{suffix}"


def object_name(name: str, node_id: str, suffix: str = "", *, reserve: int = 0) -> str:
    """The name of a node's resources: `<name>-<id[:10]>[-suffix]` (see `dns_label`)."""
    return dns_label(name, node_id[:ID_CHARS], suffix, reserve=reserve)


def indexed_job_reserve(completions: int) -> int:
    """Characters an Indexed Job's name must leave free for its pods' `-<index>` hostnames.

    The Job controller names each pod's hostname `<job-name>-<index>`, which must be a
    DNS label too: the largest index is `completions - 1`.
    """
    return 1 + len(str(max(completions - 1, 0)))


def service_name(name: str) -> str:
    """A Service name: a DNS-1035 label, which must start with a letter."""
    return name if name[:1].isalpha() else dns_label("s", name)


def node_labels(kind: str, name: str, node_id: str, role: str) -> dict[str, str]:
    """Labels that identify a node's resources (label values are ≤ 63 characters)."""
    return {
        "app.kubernetes.io/managed-by": "auditc",
        "app.kubernetes.io/part-of": "auditc",
        f"{LABEL_PREFIX}/kind": kind.lower(),
        f"{LABEL_PREFIX}/name": name,
        f"{LABEL_PREFIX}/id": node_id[:DNS_LABEL_MAX],
        f"{LABEL_PREFIX}/role": role,
    }
