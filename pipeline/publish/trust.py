"""Trust: who signed a manifest, and whether graphmint may load artifact formats that run code.

A manifest's sha256 list proves a folder is intact against accidents, not against someone who can
rewrite it: they rewrite the hashes too. A detached Ed25519 signature over the manifest's exact bytes
(`manifest.json.sig`, `MANIFEST.json.sig`) says who published it; as the manifest lists every file's
sha256, a valid signature covers every artifact byte once the files are re-hashed.

Some formats run code when they are loaded (`executes_code_on_load`, which each format's entry in
exporters.formats answers): a .pt2 may hold pickles, an AOTInductor package a shared library,
TorchScript a pickle archive and code, a SavedModel graph ops that read and write files.
`trust_decision` says whether such a file may be loaded: when the manifest verifies with a key the
user configured (GRAPHMINT_VERIFY_KEY), or when the user passed --trust. ONNX and TFLite files are
data, and load either way.

Keys are PEM files: an unencrypted PKCS#8 private key (mode 0600) and a SubjectPublicKeyInfo public
key. A key's id is the sha256 of its 32 raw public bytes, in hex.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphmint.exporters import ROUTE_MODULES, get_route
from graphmint.exporters.formats import FORMATS, Format
from graphmint.pipeline.errors import UsageError
from graphmint.validators.base import UnsafeArtifactError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALGORITHM",
    "SIGNATURE_SUFFIX",
    "SIGNING_KEY_ENV",
    "VERIFY_KEY_ENV",
    "Signature",
    "TrustDecision",
    "TrustError",
    "UnsafeArtifactError",
    "executes_code_on_load",
    "folder_trust",
    "generate_key_pair",
    "key_id",
    "sign_manifest",
    "signature_path",
    "signing_key_path",
    "trust_decision",
    "verify_key_path",
    "verify_manifest",
]

ALGORITHM = "ed25519"
SIGNATURE_SUFFIX = ".sig"
#: the private key `graphmint run` / `graphmint package` sign with, where no key is passed
SIGNING_KEY_ENV = "GRAPHMINT_SIGNING_KEY"
#: the public key a folder's manifest must verify with before code-executing formats are loaded
VERIFY_KEY_ENV = "GRAPHMINT_VERIFY_KEY"


class TrustError(UsageError):
    """A signature or key that does not check out: missing, unreadable, another key's, or not matching."""


# --- keys -------------------------------------------------------------------------------------------


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The sha256 of the key's raw public bytes, in hex: the id a signature file names its key by."""
    return hashlib.sha256(_public_bytes(key)).hexdigest()


def _short(kid: str) -> str:
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


def generate_key_pair(private_path: Path, public_path: Path) -> None:
    """Write a new Ed25519 key pair as PEM files: the private key with mode 0600, the public key 0644.

    Raises UsageError where either file exists (neither is written then) or cannot be created.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if private_path.resolve() == public_path.resolve():
        raise UsageError(f"the private and the public key must be two files, both are {private_path}")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path} exists: graphmint never overwrites a key file; move it away")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
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


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise TrustError(
            f"cannot read the signing key {path}: not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TrustError(f"the signing key {path} is not an Ed25519 key: generate one with graphmint")
    return key


def _load_public_key(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key_file(path, "verify key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise TrustError(f"cannot read the verify key {path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise TrustError(f"the verify key {path} is not an Ed25519 public key")
    return key


def _configured_key(
    explicit: Path | None, env: str, what: str, load: Callable[[Path], object]
) -> Path | None:
    if explicit is not None:
        path, source = Path(explicit), str(explicit)
    elif os.environ.get(env):
        path, source = Path(os.environ[env]), f"{env}={os.environ[env]}"
    else:
        return None
    if not path.is_file():
        why = "no such file" if not path.exists() else "not a file"
        raise UsageError(f"the {what} {source}: {why}")
    load(path)  # a key that cannot be read fails now, not after the work it was to sign or verify
    return path


def signing_key_path(explicit: Path | None = None) -> Path | None:
    """The private key to sign with: `explicit`, else $GRAPHMINT_SIGNING_KEY, else None (do not sign).

    Raises UsageError where the one named is not a file, TrustError where it is not an Ed25519 key.
    """
    return _configured_key(explicit, SIGNING_KEY_ENV, "signing key", _load_private_key)


def verify_key_path(explicit: Path | None = None) -> Path | None:
    """The public key manifests must verify with: `explicit`, else $GRAPHMINT_VERIFY_KEY, else None.

    Raises UsageError where the one named is not a file, TrustError where it is not an Ed25519 key.
    """
    return _configured_key(explicit, VERIFY_KEY_ENV, "verify key", _load_public_key)


# --- signatures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """The detached signature file's contents: an Ed25519 signature over the manifest's exact bytes."""

    key_id: str
    signature: bytes
    algorithm: str = ALGORITHM

    def to_json(self) -> dict[str, str]:
        return {
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Any) -> Signature:
        """Raises ValueError for anything but the three fields, with an Ed25519 algorithm."""
        if not isinstance(data, dict) or set(data) != {"algorithm", "key_id", "signature"}:
            raise ValueError("expected a JSON object with algorithm, key_id and signature")
        if data["algorithm"] != ALGORITHM:
            raise ValueError(
                f"algorithm {data['algorithm']!r}, graphmint signs and verifies {ALGORITHM} only"
            )
        if not all(isinstance(data[k], str) for k in ("key_id", "signature")):
            raise ValueError("key_id and signature must be strings")
        return cls(key_id=data["key_id"], signature=base64.b64decode(data["signature"], validate=True))


def signature_path(manifest_path: Path) -> Path:
    """Where a manifest's detached signature lives: next to it, with `.sig` appended to its name."""
    return manifest_path.with_name(manifest_path.name + SIGNATURE_SUFFIX)


def sign_manifest(manifest_path: Path, private_key_path: Path) -> Path:
    """Sign the manifest file's exact bytes with the Ed25519 private key; return the `.sig` written.

    An existing signature file is replaced (the manifest was written again). Raises TrustError for a
    key that cannot be read.
    """
    key = _load_private_key(private_key_path)
    data = manifest_path.read_bytes()
    signature = Signature(key_id=key_id(key.public_key()), signature=key.sign(data))
    path = signature_path(manifest_path)
    path.write_text(json.dumps(signature.to_json(), indent=2) + "\n")
    return path


def _read_signature(manifest_path: Path) -> Signature:
    path = signature_path(manifest_path)
    if not path.is_file():
        raise TrustError(f"{manifest_path} is not signed: there is no {path.name} next to it")
    try:
        return Signature.from_json(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:  # JSONDecodeError and binascii.Error are ValueErrors
        raise TrustError(f"{path} is not a graphmint signature file: {exc}") from None


def _verify(manifest_path: Path, key: Ed25519PublicKey, key_path: Path) -> None:
    from cryptography.exceptions import InvalidSignature

    signature = _read_signature(manifest_path)
    expected = key_id(key)
    if signature.key_id != expected:
        raise TrustError(
            f"{manifest_path} is signed by key {_short(signature.key_id)}, not by the verify key {key_path} "
            f"(key {_short(expected)})"
        )
    try:
        key.verify(signature.signature, manifest_path.read_bytes())
    except InvalidSignature:
        raise TrustError(
            f"{manifest_path} does not match its signature: the manifest changed after it was signed"
        ) from None


def verify_manifest(manifest_path: Path, public_key_path: Path) -> None:
    """Check the manifest's detached signature with the Ed25519 public key.

    Raises TrustError, with one line, for a missing or malformed signature file, a signature by another
    key, a manifest that changed after signing, or a key that cannot be read.
    """
    _verify(manifest_path, _load_public_key(public_key_path), public_key_path)


# --- formats that run code, and the decision to load them -------------------------------------------


def _format_of(runner_or_route: str) -> Format | None:
    """The format a runner loads, or a route (of any framework) writes; None for a name neither."""
    fmt = FORMATS.of_runner(runner_or_route)
    if fmt is not None:
        return fmt
    route = next((get_route(fw, n) for fw, n in ROUTE_MODULES if n == runner_or_route), None)
    return FORMATS[route.format] if route is not None else None


def executes_code_on_load(runner_or_route: str) -> str | None:
    """Why files that runner loads (or that route writes) can run code when loaded; None for data.

    The answer is the format's (exporters.formats): ONNX and TFLite are data formats (ONNX external
    data that points outside its folder is refused where the file is loaded), and a route with no file
    is checked in-process on the object the exporter made. A name graphmint does not know is treated
    as able to run code.
    """
    fmt = _format_of(runner_or_route)
    if fmt is not None:
        return fmt.executes_code
    return (
        f"{runner_or_route!r} is not a format graphmint knows to be data only, so it may run code when loaded"
    )


@dataclass(frozen=True)
class TrustDecision:
    """Whether artifacts that run code when loaded may be loaded, and on what grounds."""

    may_execute: bool
    #: allowed: the grounds ("--trust was given", "the manifest is signed by key ..."); refused: why
    #: not and what to do, phrased to follow "<format reason> and "
    basis: str

    def refusal(self, artifact: str, runner: str) -> str | None:
        """The one line that refuses to load `artifact` (e.g. "torch-export/model.pt2") with `runner`,
        or None where it may be loaded: a data format, or code that is trusted. Pass the manifest
        entry's runner, not its route: the runner is what loads the file."""
        reason = executes_code_on_load(runner)
        if reason is None or self.may_execute:
            return None
        return f"refusing to load {artifact}: {reason} and {self.basis}"


def trust_decision(
    *, verify_key_configured: bool, verified: bool, trust: bool, problem: str = ""
) -> TrustDecision:
    """Whether code-executing formats may be loaded.

    Yes with --trust (`trust`), or when a verify key is configured and the manifest's signature
    verified with it. Otherwise no; `problem` is the verification's one-line failure, if it failed.
    """
    if trust:
        return TrustDecision(True, "--trust was given")
    if verify_key_configured and verified:
        return TrustDecision(True, f"the manifest is signed by the key in {VERIFY_KEY_ENV}")
    if verify_key_configured:
        detail = f" ({problem})" if problem else ""
        return TrustDecision(
            False,
            f"the manifest's signature does not verify with the key you trust{detail}; "
            "pass --trust if you trust this folder anyway",
        )
    return TrustDecision(
        False,
        "the manifest is not signed by a key you trust; pass --trust if you trust this folder, "
        f"or configure {VERIFY_KEY_ENV}",
    )


def folder_trust(
    manifest_path: Path, *, trust: bool = False, verify_key: Path | None = None
) -> TrustDecision:
    """The decision for one manifest: verified with `verify_key` (else $GRAPHMINT_VERIFY_KEY) unless
    `trust`. A signature that does not verify is a refusal, not an exception; a configured key that is
    missing or unreadable raises (UsageError / TrustError): the user's configuration is wrong.
    """
    if trust:
        return trust_decision(verify_key_configured=False, verified=False, trust=True)
    key_path = verify_key_path(verify_key)
    if key_path is None:
        return trust_decision(verify_key_configured=False, verified=False, trust=False)
    key = _load_public_key(key_path)
    try:
        _verify(manifest_path, key, key_path)
    except TrustError as exc:
        return trust_decision(verify_key_configured=True, verified=False, trust=False, problem=str(exc))
    return TrustDecision(True, f"the manifest is signed by key {_short(key_id(key))} ({key_path})")
