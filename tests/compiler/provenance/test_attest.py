"""Signed attestations: made by `auditc attest`, checked by `auditc verify --key` and by
securesystemslib's independent DSSE implementation; a changed byte or a wrong key fails."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from compiler import PublicKey, SigningKey, attest_node, list_attestations
from compiler._attest import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE
from compiler.cli.main import main
from schemas import Store, node_path

DATASET = node_path("Dataset", "d", "d" * 20)
CASE = node_path("Method", "case", "c" * 20)


def write_key(directory: Path, name: str) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private, public = directory / f"{name}.pem", directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return write_key(tmp_path, "auditor")


def test_the_envelope_holds_an_in_toto_statement_of_the_node(
    store: Store, keys: tuple[Path, Path]
) -> None:
    key = SigningKey.load(keys[0])
    relative = attest_node(store, CASE, key)
    assert relative == f"_attestations/ed25519-{key.keyid[:16]}.dsse.json"
    envelope = json.loads(store.read_bytes(CASE, relative))
    assert envelope["payloadType"] == PAYLOAD_TYPE
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    manifest = store.read_manifest(CASE)
    assert manifest is not None
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == {
        **{path: d.sha256 for path, d in manifest.outputs.items()},
        "_manifest.json": store.hash_file(CASE, "_manifest.json").sha256,
    }
    predicate = statement["predicate"]
    assert (predicate["kind"], predicate["name"], predicate["id"]) == ("Method", "case", "c" * 20)
    assert predicate["upstream"] == {"Dataset/d": "d" * 20}
    assert predicate["git_commit"] == "a" * 40 and predicate["auditc_version"] == "test"
    assert "outputs" not in predicate  # they are the subjects
    # The store's own check is not disturbed by attestations.
    assert store.verify_node(CASE) == manifest


def test_securesystemslib_verifies_what_auditc_signed(
    store: Store, keys: tuple[Path, Path]
) -> None:
    key = SigningKey.load(keys[0])
    relative = attest_node(store, CASE, key)
    public = serialization.load_pem_public_key(keys[1].read_bytes())
    trusted = SSlibKey.from_crypto(public, keyid=key.keyid)  # type: ignore[arg-type]
    envelope = Envelope.from_dict(json.loads(store.read_bytes(CASE, relative)))
    assert list(envelope.verify([trusted], 1)) == [key.keyid]
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"

    # One changed byte of the payload, or another key: the independent check fails too.
    raw = json.loads(store.read_bytes(CASE, relative))
    payload = bytearray(base64.b64decode(raw["payload"]))
    payload[payload.index(b"0.8") if b"0.8" in payload else 10] ^= 0x01
    raw["payload"] = base64.b64encode(bytes(payload)).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(raw).verify([trusted], 1)
    other = serialization.load_pem_public_key(write_key(keys[0].parent, "other")[1].read_bytes())
    with pytest.raises(VerificationError):
        envelope.verify([SSlibKey.from_crypto(other, keyid=key.keyid)], 1)  # type: ignore[arg-type]


def test_verify_key_accepts_signed_nodes_and_names_what_fails(
    store: Store, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = keys
    code = main(["attest", "--store", store.base, "--key", str(private)])
    assert code in (0, None)
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and "signed 2 nodes with key " in err

    def verify(*extra: str) -> tuple[int, str]:
        try:
            code = main(["verify", "--store", store.base, *extra])
        except SystemExit as exc:
            code = exc.code
        return int(code or 0), capsys.readouterr().out

    assert verify("--key", str(public)) == (0, "")

    # A wrong key: nothing is signed by it.
    _, stranger = write_key(private.parent, "stranger")
    code, out = verify("--key", str(stranger))
    assert code == 1
    assert sorted(line.split(": ")[1] for line in out.splitlines()) == ["unsigned", "unsigned"]

    # An edited manifest (its digests still match the files): only the signature sees it.
    manifest = json.loads(Path(store.path(CASE, "_manifest.json")).read_text())
    manifest["rows"] = 999
    Path(store.path(CASE, "_manifest.json")).write_text(json.dumps(manifest))
    code, out = verify("--key", str(public))
    assert code == 1
    assert out.startswith(f"{CASE}/_attestations/ed25519-") and "bad-attestation" in out
    assert "not what was signed: _manifest.json" in out
    assert verify()[0] == 0  # without the key, the digests alone cannot tell

    # A changed byte in the envelope's signature.
    path = Path(store.path(DATASET, "_attestations"))
    [envelope_file] = path.iterdir()
    envelope = json.loads(envelope_file.read_text())
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    envelope_file.write_text(json.dumps(envelope))
    code, out = verify("--key", str(public))
    assert f"{DATASET}/_attestations/" in out and "signature does not match" in out


def test_who_signed_what_is_listed_for_reports(store: Store, keys: tuple[Path, Path]) -> None:
    key = SigningKey.load(keys[0])
    attest_node(store, CASE, key)
    [unchecked] = list_attestations(store, CASE)
    assert (unchecked.signer, unchecked.subjects, unchecked.verified) == (
        key.keyid,
        3,
        None,
    )  # 2 files + the manifest
    [checked] = list_attestations(store, CASE, [PublicKey.load(keys[1])])
    assert checked.verified is True and checked.problem is None
    assert list_attestations(store, DATASET) == []


def test_a_key_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from schemas import UsageError

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(UsageError, match="attestations are signed with Ed25519 keys"):
        SigningKey.load(path)
