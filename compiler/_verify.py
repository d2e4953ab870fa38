"""`auditc verify`: a store's nodes against their manifests, upstream ids and signatures.

`verify_audit` re-hashes every file of the chosen nodes (all of the store, or the
nodes of the current specs), checks each node's upstream nodes are there and complete,
and — given public keys or Sigstore identities — that each node carries an attestation
a trusted signer signed, whose subjects are the node's files as they are now.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from schemas import Problem, Store, verify_store

from ._attest import PublicKey, check_attestations
from ._sigstore import SigstoreIdentity

__all__ = ["VerifyResult", "verify_audit"]


@dataclass(frozen=True)
class VerifyResult:
    """What `verify_audit` checked and found."""

    nodes: list[str]
    """The node paths checked, in store order."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return not self.problems


def verify_audit(
    store: Store,
    *,
    nodes: Collection[str] | None = None,
    keys: list[PublicKey] | None = None,
    identities: list[SigstoreIdentity] | None = None,
    on_node: Callable[[str], None] | None = None,
) -> VerifyResult:
    """Check the store's nodes (or the node paths in `nodes`) and, with `keys`, their signatures.

    Args:
        store: The store to check.
        nodes: Node paths (`<kind>/<name>/<id>`) to check, e.g. those of the current
            specs; a path the store does not hold is a `not-run` problem. Default: every
            node of the store.
        keys: Trusted public keys: each complete node must carry an attestation one of
            them (or one of `identities`) signed, and every attestation by them must hold.
        identities: Trusted Sigstore identities, as `keys`.
        on_node: Called with each node path before it is checked (progress).

    Raises:
        StoreError: the store cannot be listed or read.
    """
    checked: list[str] = []

    def visit(path: str) -> None:
        checked.append(path)
        if on_node is not None:
            on_node(path)

    wanted = set(nodes) if nodes is not None else None
    problems = verify_store(store, only=wanted.__contains__ if wanted else None, on_node=visit)
    if wanted is not None:
        problems.extend(
            Problem(path, None, "not-run", "no manifest: this node has not run into the store")
            for path in sorted(wanted - set(checked))
            if not store.is_dir(path)
        )
    if keys or identities:
        for path in checked:
            manifest = store.read_manifest(path) if _readable(problems, path) else None
            if manifest is not None and manifest.status == "complete":
                problems.extend(check_attestations(store, path, keys or [], identities))
    return VerifyResult(checked, sorted(problems))


def _readable(problems: list[Problem], path: str) -> bool:
    return not any(p.node == path and p.kind == "bad-manifest" for p in problems)
