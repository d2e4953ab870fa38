"""Sigstore keyless attestations: the node's in-toto Statement signed with a CI job's identity.

Instead of a key file, the signer proves an OIDC identity (GitHub Actions' ambient
token, for example): Sigstore's CA (Fulcio) certifies a fresh key for that identity for
a few minutes, the signature is logged in Sigstore's transparency log (Rekor), and the
bundle — DSSE envelope, certificate, log entry with its inclusion proof — is kept in
`<node>/_attestations/sigstore-<id>.sigstore.json`, beside the Ed25519 envelopes.

Verifying a bundle needs no network once the instance's trusted root is known
(`--trust-config`; by default the public-good instance's, fetched through TUF): the
certificate chains to the CA, its SCT is the CT log's, the log entry's proofs are the
log's, and the certificate names the expected identity and issuer.

sigstore-python is the `sigstore` extra, imported only when a bundle is made or checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas import ATTESTATIONS_DIR, MANIFEST_FILE, Store, StoreError, UsageError, require_extra

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig
    from sigstore.sign import Signer
    from sigstore.verify import Verifier

__all__ = [
    "BUNDLE_SUFFIX",
    "IDENTITY_TOKEN_ENV",
    "SigstoreIdentity",
    "SigstoreSigner",
    "bundle_signer",
    "sigstore_attest_node",
    "verify_bundle",
]

BUNDLE_SUFFIX = ".sigstore.json"
IDENTITY_TOKEN_ENV = "SIGSTORE_IDENTITY_TOKEN"
"""An OIDC identity token to sign with, where the environment provides none by itself
(the same variable as sigstore's own command line)."""
_OIDC_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
_OIDC_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"


def _trust_config(path: Path | None, offline: bool = False) -> ClientTrustConfig:
    """The client trust config of `path`, or the public-good instance's (through TUF).

    `offline`: the public-good instance's as sigstore-python last fetched it, or as it
    ships it; no network.
    """
    from sigstore.models import ClientTrustConfig

    if path is None:
        try:
            return ClientTrustConfig.production(offline=offline)
        except Exception as exc:  # TUF's errors have no common base worth naming
            raise UsageError(
                "cannot fetch the Sigstore public-good instance's trusted root "
                f"({exc}); give one with --trust-config FILE"
            ) from exc
    try:
        return ClientTrustConfig.from_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{path}: not a Sigstore client trust config (a JSON object with "
            f"`trustedRoot` and `signingConfig`): {exc}"
        ) from exc


def _identity_token(token: str | None) -> str:
    """The OIDC token to sign with: given, in $SIGSTORE_IDENTITY_TOKEN, or the CI's ambient one."""
    from sigstore.oidc import IdentityError, detect_credential

    raw = token or os.environ.get(IDENTITY_TOKEN_ENV)
    if raw:
        return raw
    try:
        ambient = detect_credential()
    except IdentityError as exc:
        raise UsageError(f"cannot get the CI's OIDC identity token: {exc}") from exc
    if ambient is None:
        raise UsageError(
            "no OIDC identity to sign with: run in a CI job that provides one (GitHub "
            "Actions with `permissions: id-token: write`), or put a token in "
            f"${IDENTITY_TOKEN_ENV}"
        )
    return ambient


@dataclass
class SigstoreSigner:
    """A Sigstore signer for one OIDC identity; sign nodes with `sigstore_attest_node`."""

    signer: Signer
    identity: str = "?"
    """The identity the CA certified (a workflow's URI, an e-mail address), once it signed."""
    issuer: str = "?"

    @classmethod
    def open(cls, trust_config: Path | None = None, token: str | None = None) -> SigstoreSigner:
        """Get a certificate for the identity of `token` (default: the environment's).

        Raises:
            UsageError: no identity token, or the CA refuses it.
            MissingDependencyError: the `sigstore` extra is not installed.
        """
        require_extra("sigstore", "Sigstore signing")
        from sigstore.errors import Error as SigstoreError
        from sigstore.oidc import IdentityToken
        from sigstore.sign import Signer, SigningContext

        config = _trust_config(trust_config)
        try:
            identity = IdentityToken(_identity_token(token))
        except SigstoreError as exc:
            raise UsageError(f"not a usable OIDC identity token: {exc}") from exc
        try:
            # One ephemeral key and certificate for every node signed in this run.
            signer = Signer(identity, SigningContext.from_trust_config(config), cache=True)
        except Exception as exc:  # the CA's client raises its own, unexported errors
            raise UsageError(f"Sigstore's CA did not certify the identity: {exc}") from exc
        return cls(signer)


def _signer_file(identity: str, issuer: str) -> str:
    digest = hashlib.sha256(f"{issuer}\n{identity}".encode()).hexdigest()[:16]
    return posixpath.join(ATTESTATIONS_DIR, f"sigstore-{digest}{BUNDLE_SUFFIX}")


def sigstore_attest_node(store: Store, node: str, signer: SigstoreSigner) -> str:
    """Sign the node's statement with Sigstore and store the bundle; its path in the node.

    Raises:
        StoreError: the node has no complete manifest, or the log refused the entry.
        IntegrityError: its files do not match its manifest.
    """
    from sigstore import dsse

    from ._attest import build_statement, canonical_json

    manifest = store.verify_node(node)
    if manifest is None or manifest.status != "complete":
        raise StoreError(f"{store.uri_of(node)}: not a complete node; nothing to attest")
    payload = canonical_json(build_statement(manifest, store.hash_file(node, MANIFEST_FILE)))
    try:
        bundle = signer.signer.sign_dsse(dsse.Statement(payload))
    except Exception as exc:  # the log's client raises its own, unexported errors
        raise StoreError(
            f"{store.uri_of(node)}: Sigstore's transparency log refused the entry: {exc}"
        ) from exc
    signer.identity, signer.issuer = _certified_identity(bundle.signing_certificate)
    relative = _signer_file(signer.identity, signer.issuer)
    store.write_bytes(bundle.to_json().encode(), node, relative)
    return relative


# ------------------------------------------------------------------ verifying


def _certified_identity(certificate: Any) -> tuple[str, str]:
    """(identity, issuer) a Fulcio certificate names: its SAN and OIDC-issuer extension."""
    from cryptography import x509

    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
        names += [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
    except x509.ExtensionNotFound:
        names = []
    issuer = "?"
    for extension in certificate.extensions:
        if extension.oid.dotted_string == _OIDC_ISSUER_V2:
            raw = extension.value.value
            # A DER UTF8String: tag, length (short form, or 0x8n and n bytes), the text.
            start = 2 + (raw[1] & 0x7F if raw[1] & 0x80 else 0)
            issuer = raw[start:].decode(errors="replace")
            break
        if extension.oid.dotted_string == _OIDC_ISSUER_V1:
            issuer = extension.value.value.decode(errors="replace")
    return (names[0] if names else "?"), issuer


def bundle_signer(raw: bytes) -> tuple[str, str, dict[str, Any]]:
    """(identity, issuer, statement) of a bundle, read without checking anything.

    For listing who signed; `verify_bundle` checks it.

    Raises:
        ValueError: not a Sigstore bundle with a DSSE envelope and a certificate.
    """
    from cryptography import x509

    try:
        bundle = json.loads(raw)
        material = bundle["verificationMaterial"]
        if "certificate" in material:
            der = material["certificate"]["rawBytes"]
        else:
            der = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
        certificate = x509.load_der_x509_certificate(base64.b64decode(der))
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a Sigstore bundle with a DSSE envelope: missing {exc}") from exc
    if not isinstance(statement, dict):
        raise ValueError("the DSSE payload is not a JSON object")
    identity, issuer = _certified_identity(certificate)
    return identity, issuer, statement


@dataclass(frozen=True)
class SigstoreIdentity:
    """A trusted Sigstore signer: the identity and OIDC issuer its certificate must name."""

    identity: str
    issuer: str
    trust_config: Path | None = None
    """The Sigstore instance's client trust config; None: the public-good instance."""
    offline: bool = False
    """With no `trust_config`: the public-good instance's trusted root without fetching it."""

    def describe(self) -> str:
        """How `auditc verify` names it."""
        return f"{self.identity} ({self.issuer})"


_VERIFIERS: dict[tuple[Path | None, bool], Verifier] = {}


def _verifier(trust_config: Path | None, offline: bool) -> Verifier:
    """One verifier per trust config (the public one is fetched once per process)."""
    from sigstore.verify import Verifier

    key = (trust_config, offline)
    if key not in _VERIFIERS:
        root = _trust_config(trust_config, offline).trusted_root
        _VERIFIERS[key] = Verifier(trusted_root=root)
    return _VERIFIERS[key]


def verify_bundle(raw: bytes, trusted: SigstoreIdentity) -> tuple[str | None, dict[str, Any]]:
    """Check a bundle against a trusted identity: (problem or None, the signed statement).

    Raises:
        UsageError: the trust config cannot be read.
        MissingDependencyError: the `sigstore` extra is not installed.
    """
    require_extra("sigstore", "auditc verify --identity")
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import policy

    from ._attest import PAYLOAD_TYPE

    verifier = _verifier(trusted.trust_config, trusted.offline)
    try:
        bundle = Bundle.from_json(raw)
        payload_type, payload = verifier.verify_dsse(
            bundle, policy.Identity(identity=trusted.identity, issuer=trusted.issuer)
        )
    except (SigstoreError, ValueError) as exc:
        return f"the Sigstore bundle does not verify: {exc}", {}
    if payload_type != PAYLOAD_TYPE:
        return f"payload type {payload_type!r}, expected {PAYLOAD_TYPE}", {}
    statement = json.loads(payload)
    return None, statement if isinstance(statement, dict) else {}
