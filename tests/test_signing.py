"""Signatures others can verify: a folder graphmint publishes and signs with an ECDSA key carries a
Sigstore bundle that the OpenSSF model_signing library's own command line verifies, and a changed
byte is refused by both; a folder signed with an Ed25519 key, as graphmint signed before, still
verifies with that key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.sigstore_bundle import BUNDLE_NAME
from graphmint.pipeline.publish.trust import TrustError, generate_key_pair, sign_manifest, verify_manifest
from graphmint.pipeline.run.results import ModelResult
from tests.conftest import START_ENV

Zoo = tuple[Path, dict[str, ModelResult]]


def _model_signing_verifies(folder: Path, public: Path) -> subprocess.CompletedProcess[str]:
    """`model_signing verify key`, the library's own verifier, in a process of its own."""
    command = [sys.executable, "-m", "model_signing", "verify", "key", str(folder)]
    command += ["--signature", str(folder / BUNDLE_NAME), "--public_key", str(public)]
    return subprocess.run(command, capture_output=True, text=True, env=START_ENV, timeout=120)


def _keys(folder: Path, ed25519: bool = False) -> tuple[Path, Path]:
    folder.mkdir()
    private, public = folder / "signing.pem", folder / "verify.pem"
    generate_key_pair(private, public, ed25519=ed25519)
    return private, public


def test_a_published_folder_is_a_sigstore_bundle_model_signing_verifies(
    torch_zoo: Zoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = torch_zoo
    folder = tmp_path / "art" / "SimpleNet"
    shutil.copytree(out / "SimpleNet", folder)
    private, public = _keys(tmp_path / "keys")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")

    assert sign_manifest(folder / "manifest.json", private) == folder / BUNDLE_NAME
    assert not (folder / "manifest.json.sig").exists()
    verify_manifest(folder / "manifest.json", public)
    proc = _model_signing_verifies(folder, public)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert main(["validate", str(folder), "--verify-key", str(public)]) == 0
    capsys.readouterr()

    # one byte of a golden file, which the manifest lists: refused by both verifiers
    golden = folder / "test_data_set_0" / "output_0.pb"
    data = bytearray(golden.read_bytes())
    data[-1] ^= 1
    golden.write_bytes(bytes(data))
    with pytest.raises(TrustError, match="does not match the signature in its Sigstore bundle"):
        verify_manifest(folder / "manifest.json", public)
    assert _model_signing_verifies(folder, public).returncode != 0

    # and a file the manifest does not list, added after signing
    data[-1] ^= 1
    golden.write_bytes(bytes(data))
    verify_manifest(folder / "manifest.json", public)
    (folder / "notes.txt").write_text("added after signing")
    with pytest.raises(TrustError, match="does not match the signature in its Sigstore bundle"):
        verify_manifest(folder / "manifest.json", public)
    assert _model_signing_verifies(folder, public).returncode != 0


def test_another_key_and_an_unsigned_folder_are_refused(torch_zoo: Zoo, tmp_path: Path) -> None:
    out, _ = torch_zoo
    folder = tmp_path / "SimpleNet"
    shutil.copytree(out / "SimpleNet", folder)
    private, _ = _keys(tmp_path / "mine")
    _, stranger = _keys(tmp_path / "theirs")
    with pytest.raises(TrustError, match=rf"is not signed: there is no {BUNDLE_NAME}"):
        verify_manifest(folder / "manifest.json", stranger)
    sign_manifest(folder / "manifest.json", private)
    with pytest.raises(TrustError, match="does not match the signature in its Sigstore bundle"):
        verify_manifest(folder / "manifest.json", stranger)


def test_folders_signed_with_an_ed25519_key_still_verify(torch_zoo: Zoo, tmp_path: Path) -> None:
    out, _ = torch_zoo
    folder = tmp_path / "SimpleNet"
    shutil.copytree(out / "SimpleNet", folder)
    private, public = _keys(tmp_path / "old", ed25519=True)
    assert sign_manifest(folder / "manifest.json", private) == folder / "manifest.json.sig"
    verify_manifest(folder / "manifest.json", public)
    _, ecdsa = _keys(tmp_path / "new")
    with pytest.raises(TrustError, match=rf"no {BUNDLE_NAME}"):
        verify_manifest(folder / "manifest.json", ecdsa)  # an ECDSA key checks a bundle only
    # signing again with the other kind of key leaves one signature, of the new kind
    ec_private = ecdsa.with_name("signing.pem")
    sign_manifest(folder / "manifest.json", ec_private)
    assert (folder / BUNDLE_NAME).is_file() and not (folder / "manifest.json.sig").exists()
    verify_manifest(folder / "manifest.json", ecdsa)
