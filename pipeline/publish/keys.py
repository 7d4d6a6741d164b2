"""Keys: the pairs `graphmint keygen` makes (ECDSA P-256 for Sigstore bundles, Ed25519 for
graphmint's earlier detached manifest signatures), and reading them back, each kind checked."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.sigstore_bundle import generate_ec_key_pair, is_ec_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["TrustError", "generate_key_pair", "key_id", "load_private_key", "load_public_key", "short"]


class TrustError(UsageError):
    """A signature or key that does not check out: missing, unreadable, another key's, or not matching."""


# --- keys -------------------------------------------------------------------------------------------


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The sha256 of the key's raw public bytes, in hex: the id a signature file names its key by."""
    return hashlib.sha256(_public_bytes(key)).hexdigest()


def short(kid: str) -> str:
    return kid[:16]


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a file that must not exist yet (O_EXCL: never replaces one), with `mode`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise UsageError(f"{path} exists: graphmint never overwrites a key file; move it away") from None
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def generate_key_pair(private_path: Path, public_path: Path, ed25519: bool = False) -> None:
    """Write a new key pair as PEM files: the private key with mode 0600, the public key 0644. An
    ECDSA P-256 pair signs folders into Sigstore bundles (publish.sigstore_bundle); with `ed25519`,
    a pair for graphmint's earlier detached manifest signatures.

    Raises UsageError where either file exists (neither is written then) or cannot be created.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if private_path.resolve() == public_path.resolve():
        raise UsageError(f"the private and the public key must be two files, both are {private_path}")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path} exists: graphmint never overwrites a key file; move it away")
    if ed25519:
        private = Ed25519PrivateKey.generate()
        private_pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        private_pem, public_pem = generate_ec_key_pair()
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except UsageError:
        private_path.unlink()
        raise


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TrustError(f"cannot read the {what} {path}: {exc.strerror}") from None


def load_private_key(path: Path) -> Any:
    """An Ed25519 or ECDSA private key (which one decides how it signs)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise TrustError(
            f"cannot read the signing key {path}: not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey) and not is_ec_key(key):
        raise TrustError(
            f"the signing key {path} is neither an ECDSA nor an Ed25519 key: make one with graphmint keygen"
        )
    return key


def load_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key_file(path, "verify key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise TrustError(f"cannot read the verify key {path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey) and not is_ec_key(key):
        raise TrustError(f"the verify key {path} is neither an ECDSA nor an Ed25519 public key")
    return key
