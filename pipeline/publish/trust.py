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
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphmint.exporters import ROUTE_MODULES, get_route
from graphmint.exporters.formats import FORMATS, Format
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.keys import (
    TrustError,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
    short,
)
from graphmint.pipeline.publish.sigstore_bundle import (
    BUNDLE_NAME,
    BundleError,
    is_ec_key,
    sign_folder,
    verify_folder,
)
from graphmint.validators.base import UnsafeArtifactError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
    "signature_files",
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
    return _configured_key(explicit, SIGNING_KEY_ENV, "signing key", load_private_key)


def verify_key_path(explicit: Path | None = None) -> Path | None:
    """The public key manifests must verify with: `explicit`, else $GRAPHMINT_VERIFY_KEY, else None.

    Raises UsageError where the one named is not a file, TrustError where it is not an Ed25519 key.
    """
    return _configured_key(explicit, VERIFY_KEY_ENV, "verify key", load_public_key)


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


def signature_files(manifest_path: Path) -> list[Path]:
    """The signature files a manifest's folder may hold: the Sigstore bundle, the detached signature."""
    return [manifest_path.parent / BUNDLE_NAME, signature_path(manifest_path)]


def signature_path(manifest_path: Path) -> Path:
    """Where a manifest's detached signature lives: next to it, with `.sig` appended to its name."""
    return manifest_path.with_name(manifest_path.name + SIGNATURE_SUFFIX)


def sign_manifest(manifest_path: Path, private_key_path: Path) -> Path:
    """Sign what the manifest describes; return the signature file written. An ECDSA key signs the
    manifest's whole folder into a Sigstore bundle (`model.sig`, publish.sigstore_bundle); an Ed25519
    key the manifest file's exact bytes (`manifest.json.sig`, graphmint's earlier format).

    An existing signature file of either kind is replaced (the folder was written again). Raises
    TrustError for a key that cannot be read.
    """
    key = load_private_key(private_key_path)
    for stale in signature_files(manifest_path):
        stale.unlink(missing_ok=True)
    if is_ec_key(key):
        return sign_folder(manifest_path.parent, private_key_path)
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
            f"{manifest_path} is signed by key {short(signature.key_id)}, not by the verify key {key_path} "
            f"(key {short(expected)})"
        )
    try:
        key.verify(signature.signature, manifest_path.read_bytes())
    except InvalidSignature:
        raise TrustError(
            f"{manifest_path} does not match its signature: the manifest changed after it was signed"
        ) from None


def verify_manifest(manifest_path: Path, public_key_path: Path) -> None:
    """Check the manifest's signature with the public key: an ECDSA key checks the folder's Sigstore
    bundle (every file of the folder), an Ed25519 key the manifest's detached signature.

    Raises TrustError, with one line, for a missing or malformed signature file, a signature by another
    key, a manifest (or, for a bundle, any file) that changed after signing, or a key that cannot be read.
    """
    key = load_public_key(public_key_path)
    if not is_ec_key(key):
        _verify(manifest_path, key, public_key_path)
        return
    try:
        verify_folder(manifest_path.parent, public_key_path)
    except BundleError as exc:
        raise TrustError(str(exc)) from None


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
    key = load_public_key(key_path)
    try:
        verify_manifest(manifest_path, key_path)
    except TrustError as exc:
        return trust_decision(verify_key_configured=True, verified=False, trust=False, problem=str(exc))
    if is_ec_key(key):
        return TrustDecision(True, f"the folder's Sigstore bundle is signed by the key in {key_path}")
    return TrustDecision(True, f"the manifest is signed by key {short(key_id(key))} ({key_path})")
