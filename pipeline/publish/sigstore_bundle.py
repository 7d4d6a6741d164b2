"""Signatures in the field's format: a Sigstore bundle (`model.sig`) over a whole published folder,
written and checked by the OpenSSF `model_signing` library, so that `model_signing verify` and model
registries verify what graphmint publishes.

The bundle covers every file of the folder but itself (model_signing's own manifest of names and
hashes, signed with an ECDSA key: P-256, P-384 or P-521, the curves Sigstore's key signer takes), so
a changed byte anywhere, an added or a removed file is refused. A folder is signed with a local key;
`model_signing sign sigstore` (Sigstore's keyless flow) can sign the same folder where a user has an
identity for it, and `graphmint validate` reads either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.staging import OWNER_FILE

__all__ = ["BUNDLE_NAME", "generate_ec_key_pair", "is_ec_key", "sign_folder", "verify_folder"]

#: the bundle's file in each signed folder (model_signing's default name)
BUNDLE_NAME = "model.sig"


class BundleError(UsageError):
    """A Sigstore bundle that is missing, unreadable, another key's, or does not match its folder."""


def is_ec_key(key: Any) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec

    return isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey))


def generate_ec_key_pair() -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair as PEM (private PKCS#8 unencrypted, public SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def _hashing(folder: Path) -> Any:
    """Every file but the bundle itself, and the owner file of a staging folder (which it holds while
    it is signed, and loses when it is published)."""
    from model_signing import hashing

    ignored = [folder / BUNDLE_NAME, folder / OWNER_FILE]
    return hashing.Config().set_ignored_paths(paths=ignored, ignore_git_paths=False)


def sign_folder(folder: Path, private_key_path: Path) -> Path:
    """Sign every file of `folder` into `folder/model.sig` (replaced where it exists); its path."""
    from model_signing import signing

    folder = folder.resolve()
    bundle = folder / BUNDLE_NAME
    bundle.unlink(missing_ok=True)
    # model_signing 1.0's Config() sets up Sigstore's keyless signer first, which fetches Sigstore's
    # trust root over the network; 1.1 sets it up lazily, as only a keyless signature needs it. The
    # configuration is built without that step: every setting the key signer uses is set below.
    config = signing.Config.__new__(signing.Config)
    config.use_elliptic_key_signer(private_key=private_key_path)
    config.set_hashing_config(_hashing(folder)).sign(folder, bundle)
    return bundle


def verify_folder(folder: Path, public_key_path: Path) -> None:
    """BundleError, one line, where `folder` has no bundle, or its bundle is not signed by the key's
    private half, or a file was changed, added or removed since it was signed."""
    from model_signing import verifying

    folder = folder.resolve()
    bundle = folder / BUNDLE_NAME
    if not bundle.is_file():
        raise BundleError(f"{folder} is not signed: there is no {BUNDLE_NAME} (Sigstore bundle) in it")
    config = verifying.Config().use_elliptic_key_verifier(public_key=public_key_path)
    try:
        config.set_hashing_config(_hashing(folder)).verify(folder, bundle)
    except Exception as exc:  # model_signing raises ValueError, and its protobuf and crypto errors
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BundleError(
            f"{folder} does not match the signature in its Sigstore bundle {BUNDLE_NAME} (key "
            f"{public_key_path}): {text}"
        ) from None
