"""Sigstore keyless attestations: `auditc attest --sigstore` signs as the CI's OIDC identity,
`auditc verify --identity/--issuer` checks the bundles offline.

Both run against a Sigstore instance the test starts on 127.0.0.1 (conftest.py): its own
CA, CT log and transparency log, with real keys; sigstore-python signs and verifies
through the same code as with the public-good instance, only the trust config differs.
The DSSE envelope inside a bundle is also checked with securesystemslib.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from compiler import list_attestations
from compiler.cli.main import main
from schemas import Store

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/example/audits/.github/workflows/audit.yml@refs/heads/main"


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


@pytest.fixture
def signed(
    store: Store,
    fake_sigstore: object,
    github_actions: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """The store, every node signed with Sigstore in a GitHub Actions job with its ambient
    identity; the trust config of the instance."""
    config = fake_sigstore.write_trust_config(tmp_path / "trust.json")  # type: ignore[attr-defined]
    code, out, err = invoke(
        capsys, "attest", "--store", store.base, "--sigstore", "--trust-config", str(config)
    )
    assert code == 0, err
    assert err == f"signed 2 nodes as {WORKFLOW} (issuer {ISSUER}) with Sigstore\n"
    assert all("/_attestations/sigstore-" in line for line in out.splitlines())
    assert len(out.splitlines()) == 2
    return config


def verify(capsys: pytest.CaptureFixture[str], store: Store, *args: str) -> tuple[int, str, str]:
    return invoke(capsys, "verify", "--store", store.base, *args)


def test_a_bundle_verifies_as_the_workflow_that_signed_it(
    store: Store, signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = ("--trust-config", str(signed))
    code, out, err = verify(capsys, store, "--identity", WORKFLOW, "--issuer", ISSUER, *trust)
    assert (code, out) == (0, ""), err
    assert err == (
        "2 nodes verified: every file matches its manifest and signed by 1 Sigstore identity\n"
    )

    # Another identity, or the same one vouched for by another issuer: nothing is signed.
    other = WORKFLOW.replace("example/audits", "attacker/audits")
    for identity, issuer in [(other, ISSUER), (WORKFLOW, "https://accounts.google.com")]:
        code, out, _ = verify(capsys, store, "--identity", identity, "--issuer", issuer, *trust)
        assert code == 1
        assert [line.split(": ")[1] for line in out.splitlines()] == ["unsigned", "unsigned"]
        assert f"no attestation signed by {identity} ({issuer})" in out


def test_what_was_signed_cannot_change(
    store: Store, signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = ("--identity", WORKFLOW, "--issuer", ISSUER, "--trust-config", str(signed))
    case = "method/case/" + "c" * 20
    # An edited manifest whose digests still match the files: only the signature sees it.
    manifest_file = Path(store.path(case, "_manifest.json"))
    manifest = json.loads(manifest_file.read_text())
    manifest["rows"] = 999
    manifest_file.write_text(json.dumps(manifest))
    code, out, _ = verify(capsys, store, *trust)
    assert code == 1
    [line] = out.splitlines()
    assert line.startswith(f"{case}/_attestations/sigstore-") and ": bad-attestation: " in line
    assert "the node's files are not what was signed: _manifest.json" in line

    # A changed byte of the signed statement inside the bundle.
    dataset = "dataset/d/" + "d" * 20
    [bundle_file] = Path(store.path(dataset, "_attestations")).iterdir()
    bundle = json.loads(bundle_file.read_text())
    payload = bytearray(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload[payload.index(b"part-00000")] ^= 0x01
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
    bundle_file.write_text(json.dumps(bundle))
    code, out, _ = verify(capsys, store, *trust)
    assert code == 1
    hit = next(line for line in out.splitlines() if line.startswith(dataset))
    assert "bad-attestation: the Sigstore bundle does not verify" in hit


def test_a_bundle_of_another_sigstore_instance_does_not_verify(
    store: Store,
    signed: Path,
    another_sigstore: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stranger = another_sigstore.write_trust_config  # type: ignore[attr-defined]
    config = stranger(tmp_path / "stranger.json")
    trust = ("--identity", WORKFLOW, "--issuer", ISSUER, "--trust-config", str(config))
    code, out, _ = verify(capsys, store, *trust)
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2 and all(": bad-attestation: " in line for line in lines)
    assert all("certificate chain" in line for line in lines), lines


def test_securesystemslib_verifies_the_envelope_with_the_certified_key(
    store: Store, signed: Path
) -> None:
    case = "method/case/" + "c" * 20
    [bundle_file] = Path(store.path(case, "_attestations")).iterdir()
    bundle = json.loads(bundle_file.read_text())
    der = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    certified = x509.load_der_x509_certificate(der).public_key()
    key = SSlibKey.from_crypto(certified, keyid="fulcio")  # type: ignore[arg-type]

    def envelope(payload: bytes) -> Envelope:
        signatures = bundle["dsseEnvelope"]["signatures"]
        return Envelope.from_dict(
            {
                "payload": base64.b64encode(payload).decode(),
                "payloadType": bundle["dsseEnvelope"]["payloadType"],
                "signatures": [{"keyid": "fulcio", "sig": s["sig"]} for s in signatures],
            }
        )

    signed_payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    assert list(envelope(signed_payload).verify([key], 1)) == ["fulcio"]
    statement = json.loads(signed_payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert {s["name"] for s in statement["subject"]} == {
        "part-00000.parquet",
        "_case/scores.json",
        "_manifest.json",
    }
    changed = bytearray(signed_payload)
    changed[changed.index(b"part-00000")] ^= 0x01
    with pytest.raises(VerificationError):
        envelope(bytes(changed)).verify([key], 1)


def test_who_signed_is_listed_without_checking_and_checked_with_the_identity(
    store: Store, signed: Path
) -> None:
    from compiler import SigstoreIdentity

    case = "method/case/" + "c" * 20
    [unchecked] = list_attestations(store, case)
    assert (unchecked.kind, unchecked.signer, unchecked.issuer) == ("sigstore", WORKFLOW, ISSUER)
    assert (unchecked.subjects, unchecked.verified) == (3, None)
    assert unchecked.describe() == f"{WORKFLOW} (Sigstore, issuer {ISSUER})"
    [checked] = list_attestations(
        store, case, identities=[SigstoreIdentity(WORKFLOW, ISSUER, signed)]
    )
    assert checked.verified is True and checked.problem is None


def test_usage_errors(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(store.base).parent / "not-a-trust-config.json"
    config.write_text("{}")
    code, _, err = invoke(
        capsys, "attest", "--store", store.base, "--sigstore", "--trust-config", str(config)
    )
    assert code == 2 and "not a Sigstore client trust config" in err
    code, _, err = invoke(capsys, "attest", "--store", store.base)
    assert code == 2 and "give one way to sign: --key PRIVATE or --sigstore" in err
    code, _, err = invoke(
        capsys, "verify", "--store", store.base, "--identity", WORKFLOW, "--issuer", ISSUER,
        "--issuer", ISSUER,
    )  # fmt: skip
    assert code == 2 and "1 --identity and 2 --issuer" in err


def test_a_token_in_the_environment_signs_outside_ci(
    store: Store,
    fake_sigstore: object,
    github_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", github_token)
    config = fake_sigstore.write_trust_config(tmp_path / "trust.json")  # type: ignore[attr-defined]
    trust = ("--trust-config", str(config))
    code, _, err = invoke(capsys, "attest", "--store", store.base, "--sigstore", *trust)
    assert code == 0 and "signed 2 nodes as" in err
    code, _, err = verify(capsys, store, "--identity", WORKFLOW, "--issuer", ISSUER, *trust)
    assert code == 0, err


def test_signing_without_an_identity_token(
    store: Store,
    fake_sigstore: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("SIGSTORE_IDENTITY_TOKEN", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE"):
        monkeypatch.delenv(name, raising=False)
    config = fake_sigstore.write_trust_config(tmp_path / "trust.json")  # type: ignore[attr-defined]
    attest = ("attest", "--store", store.base, "--sigstore", "--trust-config", str(config))
    code, _, err = invoke(capsys, *attest)
    assert code == 2
    assert "no OIDC identity to sign with" in err and "id-token: write" in err
    # A GitHub Actions job without `id-token: write` has no token endpoint.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    code, _, err = invoke(capsys, *attest)
    assert code == 2 and "cannot get the CI's OIDC identity token" in err
    assert "ACTIONS_ID_TOKEN_REQUEST_TOKEN" in err
    assert not list(Path(store.base).rglob("*.sigstore.json"))


def test_without_the_sigstore_extra_the_commands_say_what_to_install(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "sigstore", None)
    code, _, err = verify(capsys, store, "--identity", WORKFLOW, "--issuer", ISSUER)
    assert code == 2
    assert "auditc verify --identity needs the 'sigstore' extra" in err
    assert "pip install 'auditc[sigstore]'" in err
    code, _, err = invoke(capsys, "attest", "--store", store.base, "--sigstore")
    assert code == 2 and "needs the 'sigstore' extra" in err


def test_offline_the_public_instances_root_does_not_vouch_for_a_private_instance(
    store: Store,
    signed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The public-good instance's trusted root, as sigstore-python ships it: no network.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, out, err = verify(capsys, store, "--identity", WORKFLOW, "--issuer", ISSUER, "--offline")
    assert code == 1, err
    lines = out.splitlines()
    assert len(lines) == 2 and all(": bad-attestation: " in line for line in lines)
    assert all("certificate chain" in line for line in lines), lines
    code, _, err = verify(capsys, store, "--offline")
    assert code == 2 and "--offline go with --identity" in err
