"""Fixtures of the provenance tests: a small store of two nodes, and a Sigstore instance.

A Sigstore instance of our own, on 127.0.0.1: a Fulcio CA, a CT log and a Rekor log.

Sigstore's public instance needs the network, which tests never reach. This one speaks
the same HTTP APIs (Fulcio `POST /api/v2/signingCert`, Rekor v1 `POST
/api/v1/log/entries`) with real keys of its own, and publishes a client trust config
(its trusted root and signing config) that sigstore-python signs and verifies against.
So `auditc attest --sigstore` runs its real signing path — OIDC token, ephemeral key,
certificate with an embedded SCT, transparency-log entry with an inclusion proof, a
signed checkpoint and a signed entry timestamp — and `auditc verify --identity` runs
sigstore-python's full offline verification of the bundle it made.

What differs from the public instance: the OIDC token is not checked against its issuer
(Fulcio checks it; sigstore-python, like auditc, only forwards it), and the log holds
one entry per tree (each inclusion proof is for a tree of size 1).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from schemas import Manifest, Store, node_path

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
DATASET = node_path("Dataset", "d", "d" * 20)
CASE = node_path("Method", "case", "c" * 20)


def commit(store: Store, path: str, files: dict[str, bytes], **fields: object) -> None:
    kind, name, node_id = path.split("/")
    for relative, data in files.items():
        store.write_output(data, path, relative)
    manifest = Manifest.model_validate(
        {
            "kind": "Method" if kind == "method" else "Dataset",
            "name": name,
            "id": node_id,
            "status": "complete",
            "spec": {"kind": kind, "spec": {"x": 1}},
            "auditc_version": "test",
            "git_commit": "a" * 40,
            "git_dirty": False,
            "started_at": NOW,
            "finished_at": NOW,
            "duration_s": 1.0,
            "outputs": store.collect_outputs(path),
            **fields,
        }
    )
    store.write_manifest(path, manifest)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    commit(store, DATASET, {"part-00000.parquet": b"rows", "_logs/dataset.log": b"ok"})
    commit(
        store,
        CASE,
        {"part-00000.parquet": b"scores", "_case/scores.json": b'{"v": 0.8}'},
        upstream={"Dataset/d": "d" * 20},
    )
    return store


GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
RUNNER_REQUEST_TOKEN = "runner-request-token"
"""What a GitHub Actions runner puts in $ACTIONS_ID_TOKEN_REQUEST_TOKEN."""
_OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _canonical(value: Any) -> bytes:
    """RFC 8785 for what Rekor signs (ASCII keys and values, integers only)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _der_octet_string(data: bytes) -> bytes:
    n = len(data)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | 2]) + n.to_bytes(2, "big")
    return b"\x04" + length + data


def make_token(issuer: str = GITHUB_ISSUER, **claims: Any) -> str:
    """An OIDC identity token as GitHub Actions issues one (audience `sigstore`)."""
    import jwt

    now = int(dt.datetime.now(dt.UTC).timestamp())
    body = {
        "iss": issuer,
        "aud": "sigstore",
        "sub": "repo:example/audits:ref:refs/heads/main",
        "job_workflow_ref": "example/audits/.github/workflows/audit.yml@refs/heads/main",
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(body, "a key no client checks: Fulcio does", algorithm="HS256")


def identity_of(claims: dict[str, Any]) -> str:
    """The identity Fulcio certifies: a GitHub workflow's URI, else the e-mail, else `sub`."""
    if claims["iss"] == GITHUB_ISSUER:
        return f"https://github.com/{claims['job_workflow_ref']}"
    return str(claims.get("email", claims["sub"]))


@dataclass
class FakeSigstore:
    """The instance's keys, its log and its address (once served)."""

    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rekor_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    url: str = ""
    entries: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "auditc tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, "fake-fulcio"),
            ]
        )
        self.root = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA384())
        )

    @property
    def rekor_log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.rekor_key)).digest()

    # ------------------------------------------------------------------ Fulcio

    def issue(self, csr_pem: bytes, claims: dict[str, Any]) -> list[str]:
        """A short-lived code-signing certificate for the CSR's key, with an embedded SCT."""
        csr = x509.load_pem_x509_csr(csr_pem)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        issuer = claims["iss"].encode()
        identity = identity_of(claims)
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity)
            if "://" in identity
            else x509.RFC822Name(identity)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.root.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(seconds=30))
            .not_valid_after(now + dt.timedelta(minutes=10))
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(_OIDC_ISSUER_V1, issuer), critical=False)
            .add_extension(
                x509.UnrecognizedExtension(
                    _OIDC_ISSUER_V2, b"\x0c" + bytes([len(issuer)]) + issuer
                ),
                critical=False,
            )
        )
        precert = builder.sign(self.ca_key, hashes.SHA384())
        sct = self._sct(precert.tbs_certificate_bytes, now)
        sct_list = struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct
        cert = builder.add_extension(
            x509.UnrecognizedExtension(_SCT_LIST, _der_octet_string(sct_list)), critical=False
        ).sign(self.ca_key, hashes.SHA384())
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in (cert, self.root)]

    def _sct(self, tbs: bytes, now: dt.datetime) -> bytes:
        """An RFC 6962 SCT over the precertificate's TBS, signed by the CT log's key."""
        timestamp = int(now.timestamp() * 1000)
        issuer_key_hash = hashlib.sha256(_spki(self.ca_key)).digest()
        signed_entry = issuer_key_hash + len(tbs).to_bytes(3, "big") + tbs
        digitally_signed = struct.pack("!BBQH", 0, 0, timestamp, 1) + signed_entry + b"\x00\x00"
        signature = self.ct_key.sign(digitally_signed, ec.ECDSA(hashes.SHA256()))
        log_id = hashlib.sha256(_spki(self.ct_key)).digest()
        return (
            b"\x00"
            + log_id
            + struct.pack("!Q", timestamp)
            + b"\x00\x00"
            + bytes([4, 3])
            + struct.pack("!H", len(signature))
            + signature
        )

    # ------------------------------------------------------------------- Rekor

    def log(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """Integrate a proposed dsse entry as Rekor v1 does; its entry with proofs."""
        content = proposed["spec"]["proposedContent"]
        envelope = json.loads(content["envelope"])
        payload = base64.b64decode(envelope["payload"])
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(content["envelope"].encode()).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [
                    {"signature": s["sig"], "verifier": content["verifiers"][0]}
                    for s in envelope["signatures"]
                ],
            },
        }
        encoded = _b64(_canonical(body))
        root = hashlib.sha256(b"\x00" + base64.b64decode(encoded)).digest()
        integrated = int(dt.datetime.now(dt.UTC).timestamp())
        log_id = self.rekor_log_id.hex()
        signed_entry_timestamp = self.rekor_key.sign(
            _canonical(
                {"body": encoded, "integratedTime": integrated, "logID": log_id, "logIndex": 0}
            ),
            ec.ECDSA(hashes.SHA256()),
        )
        note = f"fake-rekor - {len(self.entries)}\n1\n{_b64(root)}\n"
        note_signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = f"{note}\n\u2014 fake-rekor {_b64(self.rekor_log_id[:4] + note_signature)}\n"
        entry = {
            "body": encoded,
            "integratedTime": integrated,
            "logID": log_id,
            "logIndex": 0,
            "verification": {
                "signedEntryTimestamp": _b64(signed_entry_timestamp),
                "inclusionProof": {
                    "checkpoint": checkpoint,
                    "hashes": [],
                    "logIndex": 0,
                    "rootHash": root.hex(),
                    "treeSize": 1,
                },
            },
        }
        self.entries.append(entry)
        return {secrets.token_hex(32): entry}

    # ------------------------------------------------------------ trust config

    def trust_config(self) -> dict[str, Any]:
        """The client trust config (trusted root and signing config) of this instance."""
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def key(private: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {
                "baseUrl": self.url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(private)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": _b64(hashlib.sha256(_spki(private)).digest())},
            }

        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": {"start": start},
                "operator": "auditc tests",
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [key(self.rekor_key)],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "auditc tests", "commonName": "fake-fulcio"},
                        "uri": self.url,
                        "certChain": {
                            "certificates": [
                                {
                                    "rawBytes": _b64(
                                        self.root.public_bytes(serialization.Encoding.DER)
                                    )
                                }
                            ]
                        },
                        "validFor": {"start": start},
                    }
                ],
                "ctlogs": [key(self.ct_key)],
                "timestampAuthorities": [],
            },
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.url)],
                "oidcUrls": [service(f"{self.url}/oauth2")],
                "rekorTlogUrls": [service(self.url)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

    def write_trust_config(self, path: Path) -> Path:
        path.write_text(json.dumps(self.trust_config(), indent=2))
        return path


def _handler(instance: FakeSigstore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            # GitHub Actions' token endpoint, as a job with `id-token: write` reaches it.
            if self.path.startswith("/github-oidc?"):
                if self.headers.get("Authorization") != f"bearer {RUNNER_REQUEST_TOKEN}":
                    self._reply(403, {"message": "bad request token"})
                    return
                audience = self.path.split("audience=")[-1]
                self._reply(200, {"value": make_token(aud=audience)})
            else:
                self._reply(404, {"message": f"no {self.path} here"})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/api/v2/signingCert":
                import jwt

                token = self.headers["Authorization"].removeprefix("Bearer ")
                claims = jwt.decode(token, options={"verify_signature": False})
                csr = base64.b64decode(request["certificateSigningRequest"])
                chain = instance.issue(csr, claims)
                self._reply(
                    200, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}
                )
            elif self.path == "/api/v1/log/entries":
                self._reply(201, instance.log(request))
            else:
                self._reply(404, {"message": f"no {self.path} here"})

    return Handler


@pytest.fixture
def fake_sigstore() -> Iterator[FakeSigstore]:
    """A Sigstore instance on a free port of 127.0.0.1, for the duration of a test."""
    instance = FakeSigstore()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(instance))
    instance.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield instance
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def github_token() -> str:
    """An OIDC token of a GitHub Actions workflow."""
    return make_token()


@pytest.fixture
def github_actions(fake_sigstore: FakeSigstore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a GitHub Actions job with `permissions: id-token: write`, whose
    token endpoint the fake instance serves."""
    monkeypatch.delenv("SIGSTORE_IDENTITY_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", RUNNER_REQUEST_TOKEN)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{fake_sigstore.url}/github-oidc?v=2.0")


@pytest.fixture
def another_sigstore() -> FakeSigstore:
    """Another Sigstore instance (keys and trust config only; nothing served)."""
    return FakeSigstore(url="http://127.0.0.1:9")
