"""The `graphmint` command line: its subcommands and flags (their value types: pipeline.values)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from graphmint.pipeline import values
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.model_flags import add_model_flags

__all__ = ["build_parser", "csv_names"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report-dir",
        type=Path,
        help="where report.json, report.md, junit.xml and plots/ go (default: the --out folder)",
    )
    _add_timeout_flag(parser)
    parser.add_argument(
        "--strict-runtimes",
        action="store_true",
        help="fail a route when a cross-check runtime (ORT without optimizations, the ONNX reference "
        "evaluator) fails where the deployment runtime passes (default: a warning)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail a route whose comparison is vacuous (an output that is zero, or the same for any "
        "input) instead of warning",
    )
    parser.add_argument(
        "--allow-fail",
        action="append",
        default=[],
        metavar="ROUTE",
        help="report this route's failure without failing the run (repeat, or a,b)",
    )


def _add_signing_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--signing-key",
        type=Path,
        metavar="PEM",
        help="Ed25519 private key that signs what is published (default: $GRAPHMINT_SIGNING_KEY; "
        "make one with `graphmint keygen`)",
    )


def _add_verify_flags(parser: argparse.ArgumentParser, trust: bool = True) -> None:
    parser.add_argument(
        "--verify-key",
        type=Path,
        metavar="PEM",
        help="Ed25519 public key that manifests must be signed with (default: $GRAPHMINT_VERIFY_KEY)",
    )
    if trust:
        parser.add_argument(
            "--trust",
            action="store_true",
            help="load artifacts that can run code when loaded (TorchScript, .pt2, AOTInductor, "
            "SavedModel) without a verified signature: only for folders you trust",
        )


def _add_cache_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="run every model even where the cache holds its result (cache: $GRAPHMINT_CACHE, else "
        "~/.cache/graphmint; GRAPHMINT_CACHE=off turns it off)",
    )


def _add_artifacts_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "artifacts",
        nargs="?",
        type=Path,
        default=Path("artifacts"),
        help="the folder models were published to (default artifacts/)",
    )


def _add_timeout_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=values.seconds,
        default=300.0,
        metavar="SECONDS",
        help="stop a runtime that takes longer to load or run one input (default 300)",
    )


def _add_export_timeout_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--export-timeout",
        type=values.seconds,
        default=values.DEFAULT_EXPORT_TIMEOUT_S,
        metavar="SECONDS",
        help="stop an exporter (one strategy of a route, a torch.compile or tf.function compile "
        "included) that takes longer; the route tries its next strategy, or is unsupported (a default "
        f"route) or an error (a named one) (default {values.DEFAULT_EXPORT_TIMEOUT_S:g})",
    )


def _add_parallel_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=values.positive,
        metavar="N",
        help="cells (model × route) run at once (default: the number of cores); 1 runs one at a time",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where cells run: this machine (default), or as tasks of a Ray cluster (pip install "
        "'graphmint[ray]')",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --executor ray: the cluster to join (auto, ray://head:10001; default: start one here)",
    )


def csv_names(given: Sequence[str]) -> tuple[str, ...]:
    """The names of repeated comma-separated flags (`--allow-fail a,b --allow-fail c`), in order."""
    return tuple(name for value in given for name in values.comma_separated(value))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="graphmint", description="Export eager models to static graphs and prove they match."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    export = sub.add_parser("export", help="export and check one model given as module:callable")
    add_model_flags(export)
    export.add_argument(
        "--out", type=Path, default=Path("artifacts"), help="output folder (default artifacts/)"
    )
    _add_report_flags(export)
    _add_export_timeout_flag(export)
    _add_signing_flag(export)
    _add_cache_flag(export)
    _add_parallel_flags(export)

    explain = sub.add_parser(
        "explain",
        help="export a model as `export` does, compare every layer of every route with eager; "
        "publish nothing",
    )
    add_model_flags(explain)
    explain.add_argument(
        "--out",
        type=Path,
        default=Path("graphmint-explain"),
        help="where the reports and per-layer plots go (default graphmint-explain/)",
    )
    _add_report_flags(explain)
    _add_export_timeout_flag(explain)

    run = sub.add_parser("run", help="run every model of a config (default graphmint.toml)")
    run.add_argument("config", nargs="?", type=Path, default=Path("graphmint.toml"))
    run.add_argument("--models", type=values.names, help="comma-separated model names (default: all)")
    run.add_argument("--routes", type=values.names, help="comma-separated routes, replacing each model's own")
    run.add_argument("--out", type=Path, default=Path("artifacts"), help="output folder (default artifacts/)")
    _add_report_flags(run)
    _add_export_timeout_flag(run)
    _add_signing_flag(run)
    _add_cache_flag(run)
    _add_parallel_flags(run)
    run.add_argument(
        "--shard",
        type=values.shard,
        metavar="I/N",
        help="run shard I of N of the config's models (a CI matrix job); `graphmint merge` combines them",
    )

    merge = sub.add_parser(
        "merge", help="combine the folders of `run --shard I/N` into one published folder and report"
    )
    merge.add_argument("shards", nargs="+", type=Path, metavar="DIR", help="every shard's --out folder")
    merge.add_argument(
        "--out", type=Path, default=Path("artifacts"), help="output folder (default artifacts/)"
    )
    merge.add_argument(
        "--report-dir", type=Path, help="where report.json, report.md and junit.xml go (default: --out)"
    )

    validate = sub.add_parser(
        "validate", help="re-run published artifacts (or a model.onnx folder) against golden data"
    )
    validate.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="artifacts/<model>/ or a folder with model.onnx and test_data_set_*/",
    )
    validate.add_argument("--atol", type=values.tolerance, help="absolute tolerance for every output")
    validate.add_argument("--rtol", type=values.tolerance, help="relative tolerance for every output")
    _add_timeout_flag(validate)
    _add_verify_flags(validate)

    package = sub.add_parser(
        "package", help="build the serving bundle (Triton, TF Serving) from published models"
    )
    _add_artifacts_argument(package)
    package.add_argument("--out", type=Path, help="bundle folder (default ARTIFACTS/serving)")
    _add_signing_flag(package)

    verify = sub.add_parser(
        "verify-bundle", help="re-hash a serving bundle: exit 1 on a changed, missing or added file"
    )
    verify.add_argument("bundle", type=Path, metavar="DIR")
    _add_verify_flags(verify, trust=False)

    check = sub.add_parser("serve-check", help="serve a bundle on 127.0.0.1 and check every golden answer")
    check.add_argument("bundle", type=Path, metavar="DIR")
    _add_verify_flags(check, trust=False)
    check.add_argument(
        "--timeout", type=values.seconds, default=120.0, help="seconds to wait for the server (default 120)"
    )

    serve = sub.add_parser(
        "serve", help="serve a bundle's ONNX models (KServe v2 over HTTP) in the foreground"
    )
    serve.add_argument("bundle", type=Path, metavar="DIR")
    serve.add_argument("--port", type=values.port, default=8000, help="port on 127.0.0.1 (default 8000)")
    _add_verify_flags(serve, trust=False)

    keygen = sub.add_parser(
        "keygen", help="make an ECDSA P-256 key pair to sign published folders into Sigstore bundles with"
    )
    keygen.add_argument(
        "--ed25519",
        action="store_true",
        help="an Ed25519 pair instead, for graphmint's earlier detached manifest signatures",
    )
    keygen.add_argument("private", type=Path, metavar="PRIVATE_PEM", help="where the private key goes (0600)")
    keygen.add_argument("public", type=Path, metavar="PUBLIC_PEM", help="where the public key goes")

    bench = sub.add_parser(
        "bench", help="measure every verified artifact against the eager model and recommend the fastest"
    )
    _add_artifacts_argument(bench)
    bench.add_argument("--models", type=values.names, help="comma-separated model names (default: every one)")
    bench.add_argument(
        "--batch",
        type=values.batches,
        default=(1,),
        help="comma-separated batch sizes (default 1); the first decides the recommendation",
    )
    bench.add_argument(
        "--threads", type=values.positive, default=1, help="threads per runtime, pinned (default 1)"
    )
    bench.add_argument(
        "--max-seconds",
        type=values.seconds,
        default=20.0,
        help="longest measurement of one artifact at one batch size, stable or not (default 20)",
    )
    bench.add_argument(
        "--report-dir", type=Path, help="where bench.json, bench.md and plots/ go (default: ARTIFACTS)"
    )
    _add_timeout_flag(bench)
    _add_verify_flags(bench)
    _add_signing_flag(bench)

    cache = sub.add_parser("cache", help="what the cache of published models holds (info), or empty it")
    cache.add_argument("action", choices=("info", "clear"))

    train = sub.add_parser(
        "train-check",
        help="train a model N steps eagerly and in each compiled form of its step; name the first "
        "step and parameter where a form diverges",
    )
    train.add_argument(
        "config",
        nargs="?",
        default="graphmint.toml",
        metavar="REF|CONFIG",
        help="module:callable of one model, or a config whose models have [models.train] recipes "
        "(default graphmint.toml)",
    )
    train.add_argument("--models", type=values.names, help="with a config: comma-separated model names")
    for flag, meta, what in (
        ("--input", "SPEC", "with REF: an input, name:dtype[d0,...] (repeat)"),
        ("--dim", "N=A..B", "with REF: a dynamic dim's range; training runs at its example size"),
        ("--range", "N=A..B", "with REF: an integer input's or the target's value range"),
    ):
        train.add_argument(flag, action="append", default=[], metavar=meta, help=what)
    train.add_argument("--target", metavar="SPEC", help="with REF: the label, e.g. y:int64[batch]")
    train.add_argument("--loss", choices=("cross-entropy", "mse"), help="default cross-entropy")
    train.add_argument("--optimizer", choices=("adam", "sgd"), help="default adam")
    train.add_argument("--lr", type=values.positive_number, help="learning rate (default 0.01)")
    train.add_argument("--epsilon", type=values.positive_number, help="Adam's (default: the framework's)")
    train.add_argument("--steps", type=values.positive, help="training steps (default 20, or the recipe's)")
    train.add_argument("--seed", type=values.seed, default=0, help="with REF: weights and data (default 0)")
    train.add_argument("--name", help="with REF: the model's name in the reports (default: the callable's)")
    train.add_argument("--forms", type=values.names, help="compiled forms to check (default: every one)")
    train.add_argument(
        "--report-dir", type=Path, default=Path("graphmint-train"), help="default graphmint-train/"
    )
    _add_timeout_flag(train)

    parity = sub.add_parser(
        "parity",
        help="copy each torch zoo model's weights into its Keras twin; check they compute, "
        "export and train alike",
    )
    parity.add_argument("config", nargs="?", type=Path, default=Path("graphmint.toml"))
    parity.add_argument(
        "--pairs", type=values.names, help="pairs by a member's name (default: every [[twins]])"
    )
    parity.add_argument("--steps", type=values.positive, help="training steps (default: the recipe's)")
    parity.add_argument(
        "--report-dir", type=Path, default=Path("graphmint-train"), help="where parity.json goes"
    )
    _add_timeout_flag(parity)

    lst = sub.add_parser("list", help="list a config's models and every framework's routes")
    lst.add_argument("config", nargs="?", type=Path, default=Path("graphmint.toml"))
    return parser
