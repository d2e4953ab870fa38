"""Signed attestations of stored nodes: in-toto Statements (v1) in DSSE envelopes.

For each committed node, the statement's subjects are the node's files — every entry
of `Manifest.outputs` and the manifest itself — with their sha256, and its predicate
is the manifest without `outputs`: the resolved spec and node id, the upstream ids,
the input files' digests, the model revision (or an external service's fingerprint),
the image, auditc's version, the git state and the timings. The statement is wrapped
in a DSSE envelope (payload type `application/vnd.in-toto+json`) and signed with an
Ed25519 key, and kept in `<node>/_attestations/ed25519-<keyid>.dsse.json`.

Verifying needs nothing but the store and the public key: the envelope's signature
over DSSE's pre-authentication encoding, then the statement's subjects against the
node's files (`check_files` checks the files against the manifest; here the manifest
and every digest it lists must be what was signed).

`cryptography` is imported when a key is used, never at import time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from schemas import (
    ATTESTATIONS_DIR,
    MANIFEST_FILE,
    FileDigest,
    Manifest,
    MissingDependencyError,
    Problem,
    Store,
    StoreError,
    UsageError,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from ._sigstore import SigstoreIdentity

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Attestation",
    "PublicKey",
    "SigningKey",
    "attest_node",
    "build_statement",
    "canonical_json",
    "check_attestations",
    "list_attestations",
    "pae",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "urn:auditc:predicate:node-provenance:v1"
"""The predicate: an auditc manifest without `outputs` (docs/store.md, Attestations)."""
KEY_PASSWORD_ENV = "AUDITC_SIGNING_KEY_PASSWORD"
"""Environment variable holding the password of an encrypted private key file."""
_ENVELOPE_SUFFIX = ".dsse.json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def build_statement(manifest: Manifest, manifest_digest: FileDigest) -> dict[str, Any]:
    """The in-toto Statement of a node: its files as subjects, its provenance as predicate."""
    subjects = [
        {"name": path, "digest": {"sha256": digest.sha256}}
        for path, digest in sorted(manifest.outputs.items())
    ]
    subjects.append({"name": MANIFEST_FILE, "digest": {"sha256": manifest_digest.sha256}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": manifest.model_dump(mode="json", exclude={"outputs"}),
    }


def canonical_json(value: Any) -> bytes:
    """The bytes auditc signs: JSON with sorted keys and no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ----------------------------------------------------------------------- keys


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:  # pragma: no cover - cryptography is a dependency
        raise MissingDependencyError(
            "signing and verifying attestations needs cryptography: pip install cryptography"
        ) from exc
    return serialization


def _key_id(public: Ed25519PublicKey) -> str:
    """sha256 of the key's SubjectPublicKeyInfo (DER): the same for the key pair's two files."""
    serialization = _crypto()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key, loaded from a PEM file (PKCS#8, as `openssl genpkey` writes)."""

    key: Ed25519PrivateKey
    keyid: str

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a private key; an encrypted one takes its password from $AUDITC_SIGNING_KEY_PASSWORD.

        Raises:
            UsageError: the file is unreadable, not a PEM private key, or not Ed25519.
        """
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        serialization = _crypto()
        password = os.environ.get(KEY_PASSWORD_ENV)
        try:
            key = serialization.load_pem_private_key(
                path.read_bytes(), password.encode() if password else None
            )
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"{path}: not a usable private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise UsageError(
                f"{path}: a {type(key).__name__}; attestations are signed with Ed25519 keys "
                "(openssl genpkey -algorithm ed25519 -out key.pem)"
            )
        return cls(key, _key_id(key.public_key()))

    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature of `data`."""
        signature: bytes = self.key.sign(data)
        return signature


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key, loaded from a PEM file (`openssl pkey -pubout`)."""

    key: Ed25519PublicKey
    keyid: str
    source: str

    @classmethod
    def load(cls, path: Path) -> PublicKey:
        """Read a public key.

        Raises:
            UsageError: the file is unreadable, not a PEM public key, or not Ed25519.
        """
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        serialization = _crypto()
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"{path}: not a usable public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise UsageError(f"{path}: a {type(key).__name__}; expected an Ed25519 public key")
        return cls(key, _key_id(key), str(path))

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """Whether `signature` is this key's signature of `data`."""
        from cryptography.exceptions import InvalidSignature

        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


# -------------------------------------------------------------------- signing


def attest_node(store: Store, node: str, key: SigningKey) -> str:
    """Sign the node's statement with `key` and store the envelope; its path in the node.

    The node must be complete and its files must match its manifest: an attestation
    vouches for what is there.

    Raises:
        StoreError: the node has no complete manifest.
        IntegrityError: its files do not match its manifest.
    """
    manifest = store.verify_node(node)
    if manifest is None or manifest.status != "complete":
        raise StoreError(f"{store.uri_of(node)}: not a complete node; nothing to attest")
    statement = build_statement(manifest, store.hash_file(node, MANIFEST_FILE))
    payload = canonical_json(statement)
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {
                "keyid": key.keyid,
                "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode(),
            }
        ],
    }
    relative = posixpath.join(ATTESTATIONS_DIR, f"ed25519-{key.keyid[:16]}{_ENVELOPE_SUFFIX}")
    store.write_bytes(json.dumps(envelope, indent=2).encode(), node, relative)
    return relative


# ------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class Attestation:
    """One stored attestation of a node: who signed, and whether it holds for the files."""

    file: str
    """Relative to the node directory (`_attestations/…`)."""
    kind: Literal["ed25519", "sigstore"]
    signer: str
    """ed25519: the signing key's id (sha256 of its public key); sigstore: the identity
    its certificate names (a CI workflow's URI, an e-mail address)."""
    subjects: int
    """How many files it covers (the manifest included)."""
    verified: bool | None = None
    """True when a trusted signer's signature holds and the subjects match the node's
    files; False when not; None when no trusted signer was given."""
    problem: str | None = None
    issuer: str | None = None
    """sigstore: the OIDC issuer that vouched for the identity."""

    def describe(self) -> str:
        """Who signed, in words: `key 5f3a9c2e1d0b7a64`, `https://github.com/… (issuer …)`."""
        if self.kind == "ed25519":
            return f"key {self.signer[:16]}"
        return f"{self.signer} (Sigstore, issuer {self.issuer})"


_UNTRUSTED = "signed by no trusted "


def list_attestations(
    store: Store,
    node: str,
    keys: list[PublicKey] | None = None,
    identities: list[SigstoreIdentity] | None = None,
) -> list[Attestation]:
    """The node's attestations (who signed what), checked when trusted signers are given.

    Args:
        store: The store.
        node: The node path.
        keys: Trusted Ed25519 public keys.
        identities: Trusted Sigstore identities.

    Raises:
        StoreError: the node's manifest or an attestation cannot be read.
    """
    from ._sigstore import BUNDLE_SUFFIX

    manifest = store.read_manifest(node)
    if manifest is None:
        return []
    expected = build_statement(manifest, store.hash_file(node, MANIFEST_FILE))["subject"]
    checking = bool(keys or identities)
    found: list[Attestation] = []
    for relative in store.list_files(node, ATTESTATIONS_DIR):
        where = posixpath.join(ATTESTATIONS_DIR, relative)
        if relative.endswith(_ENVELOPE_SUFFIX):
            raw = store.read_bytes(node, where)
            found.append(_check_envelope(raw, where, expected, (keys or []) if checking else None))
        elif relative.endswith(BUNDLE_SUFFIX):
            raw = store.read_bytes(node, where)
            found.append(
                _check_bundle(raw, where, expected, (identities or []) if checking else None)
            )
    return found


def _check_bundle(
    raw: bytes,
    where: str,
    expected: list[dict[str, Any]],
    identities: list[SigstoreIdentity] | None,
) -> Attestation:
    from ._sigstore import bundle_signer, verify_bundle

    try:
        identity, issuer, statement = bundle_signer(raw)
        subjects = len(statement.get("subject", []))
    except ValueError as exc:
        return Attestation(where, "sigstore", "?", 0, False, f"not a Sigstore bundle: {exc}")
    if identities is None:
        return Attestation(where, "sigstore", identity, subjects, issuer=issuer)
    trusted = [t for t in identities if (t.identity, t.issuer) == (identity, issuer)]
    if not trusted:
        untrusted = f"{_UNTRUSTED}identity ({identity}, issuer {issuer})"
        return Attestation(where, "sigstore", identity, subjects, False, untrusted, issuer)
    problem, signed = verify_bundle(raw, trusted[0])
    if problem is None:
        try:
            problem = _statement_problem(signed, expected)
        except (KeyError, TypeError, AttributeError) as exc:
            problem = f"the signed statement is not an in-toto Statement: {exc}"
    verified = problem is None
    return Attestation(where, "sigstore", identity, subjects, verified, problem, issuer)


def _check_envelope(
    raw: bytes, where: str, expected: list[dict[str, Any]], keys: list[PublicKey] | None
) -> Attestation:
    try:
        envelope = json.loads(raw)
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [
            (str(s["keyid"]), base64.b64decode(s["sig"], validate=True))
            for s in envelope["signatures"]
        ]
        statement = json.loads(payload)
        subjects = statement["subject"]
    except (ValueError, KeyError, TypeError) as exc:
        return Attestation(where, "ed25519", "?", 0, False, f"not a DSSE envelope: {exc}")
    signer = signatures[0][0] if signatures else "?"
    attestation = Attestation(where, "ed25519", signer, len(subjects))
    if keys is None:
        return attestation
    problem = _trusted_signature(envelope.get("payloadType"), payload, signatures, keys)
    if problem is None:
        problem = _statement_problem(statement, expected)
    verified = problem is None
    return Attestation(where, "ed25519", signer, len(subjects), verified, problem)


def _trusted_signature(
    payload_type: object, payload: bytes, signatures: list[tuple[str, bytes]], keys: list[PublicKey]
) -> str | None:
    if payload_type != PAYLOAD_TYPE:
        return f"payload type {payload_type!r}, expected {PAYLOAD_TYPE}"
    signed = pae(PAYLOAD_TYPE, payload)
    by_id = {key.keyid: key for key in keys}
    trusted = [(by_id[k], sig) for k, sig in signatures if k in by_id]
    if not trusted:
        return f"{_UNTRUSTED}key (keyids " + ", ".join(k[:16] for k, _ in signatures) + ")"
    if any(key.verifies(sig, signed) for key, sig in trusted):
        return None
    return "the signature does not match the statement (it was changed after signing)"


def _statement_problem(statement: Any, expected: list[dict[str, Any]]) -> str | None:
    if statement.get("_type") != STATEMENT_TYPE:
        return f"statement type {statement.get('_type')!r}, expected {STATEMENT_TYPE}"
    if statement.get("predicateType") != PREDICATE_TYPE:
        return f"predicate type {statement.get('predicateType')!r}, expected {PREDICATE_TYPE}"
    signed = {s["name"]: s["digest"].get("sha256") for s in statement["subject"]}
    now = {s["name"]: s["digest"]["sha256"] for s in expected}
    changed = sorted(
        name for name in signed.keys() | now.keys() if signed.get(name) != now.get(name)
    )
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        return f"the node's files are not what was signed: {shown}"
    return None


def check_attestations(
    store: Store,
    node: str,
    keys: list[PublicKey],
    identities: list[SigstoreIdentity] | None = None,
) -> list[Problem]:
    """Problems with a node's attestations: none verifies with a trusted signer, or one fails.

    Any one trusted signer (a key or a Sigstore identity) is enough; every attestation
    by a trusted signer must hold.

    Raises:
        StoreError: the node's manifest or an attestation cannot be read.
    """
    attestations = list_attestations(store, node, keys, identities or [])
    problems = [
        Problem(node, a.file, "bad-attestation", a.problem or "does not verify")
        for a in attestations
        if a.verified is False and not (a.problem or "").startswith(_UNTRUSTED)
    ]
    if not any(a.verified for a in attestations) and not problems:
        trusted = [f"key {k.keyid[:16]}" for k in keys]
        trusted += [t.describe() for t in identities or []]
        problems.append(
            Problem(node, None, "unsigned", "no attestation signed by " + ", ".join(trusted))
        )
    return problems
