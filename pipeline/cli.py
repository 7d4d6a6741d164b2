"""The `graphmint` command: a thin layer over pipeline.run, pipeline.config and exporters."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphmint.pipeline.errors import UsageError

if TYPE_CHECKING:
    from graphmint.pipeline.console import Console
    from graphmint.pipeline.progress import Progress
    from graphmint.pipeline.results import ModelResult
    from graphmint.pipeline.run import RunOptions

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _names(text: str) -> tuple[str, ...]:
    names = _csv(text)
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing: give comma-separated names")
    return names


def _parse(kind: type[int] | type[float], text: str, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def _seconds(text: str) -> float:
    value = _parse(float, text, "a positive number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _tolerance(text: str) -> float:
    value = _parse(float, text, "a non-negative number")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number")
    return value


def _port(text: str) -> int:
    value = _parse(int, text, "a port number (1..65535)")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1..65535)")
    return value


def _seed(text: str) -> int:
    from graphmint.pipeline.specs import MAX_SEED

    value = _parse(int, text, f"a seed in 0..{MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed in 0..{MAX_SEED}")
    return value


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


def _add_timeout_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="stop a runtime that takes longer to load or run one input (default 300)",
    )


def _allowed(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for value in values for name in _csv(value))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="graphmint", description="Export eager models to static graphs and prove they match."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    export = sub.add_parser("export", help="export and check one model given as module:callable")
    export.add_argument("ref", help="module:callable returning the eager model")
    export.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="SPEC",
        help="an input, name:dtype[d0,d1,...] (repeat for several; optional for Keras "
        "models with known input shapes)",
    )
    export.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="N=A..B",
        help="range of a dynamic dim, inclusive; N=A..B@E also picks the traced size",
    )
    export.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="N=A..B",
        help="value range of an integer input, inclusive",
    )
    export.add_argument("--routes", type=_names, help="comma-separated routes (default: the framework's)")
    export.add_argument("--name", help="folder name under --out (default: the callable's name)")
    export.add_argument(
        "--generator",
        metavar="MODULE:CALLABLE",
        help="makes inputs that need structure: fn(shapes, rng) -> dict",
    )
    export.add_argument("--seed", type=_seed, default=0, help="seed for weights and inputs (default 0)")
    export.add_argument(
        "--out", type=Path, default=Path("artifacts"), help="output folder (default artifacts/)"
    )
    _add_report_flags(export)
    _add_signing_flag(export)

    run = sub.add_parser("run", help="run every model of a config (default graphmint.toml)")
    run.add_argument("config", nargs="?", type=Path, default=Path("graphmint.toml"))
    run.add_argument("--models", type=_names, help="comma-separated model names (default: all)")
    run.add_argument("--routes", type=_names, help="comma-separated routes, replacing each model's own")
    run.add_argument("--out", type=Path, default=Path("artifacts"), help="output folder (default artifacts/)")
    _add_report_flags(run)
    _add_signing_flag(run)

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
    validate.add_argument("--atol", type=_tolerance, help="absolute tolerance for every output")
    validate.add_argument("--rtol", type=_tolerance, help="relative tolerance for every output")
    _add_timeout_flag(validate)
    _add_verify_flags(validate)

    package = sub.add_parser(
        "package", help="build the serving bundle (Triton, TF Serving) from published models"
    )
    package.add_argument(
        "artifacts",
        nargs="?",
        type=Path,
        default=Path("artifacts"),
        help="the folder models were published to (default artifacts/)",
    )
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
        "--timeout", type=_seconds, default=120.0, help="seconds to wait for the server (default 120)"
    )

    serve = sub.add_parser(
        "serve", help="serve a bundle's ONNX models (KServe v2 over HTTP) in the foreground"
    )
    serve.add_argument("bundle", type=Path, metavar="DIR")
    serve.add_argument("--port", type=_port, default=8000, help="port on 127.0.0.1 (default 8000)")
    _add_verify_flags(serve, trust=False)

    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair to sign and verify manifests with")
    keygen.add_argument("private", type=Path, metavar="PRIVATE_PEM", help="where the private key goes (0600)")
    keygen.add_argument("public", type=Path, metavar="PUBLIC_PEM", help="where the public key goes")

    lst = sub.add_parser("list", help="list a config's models and every framework's routes")
    lst.add_argument("config", nargs="?", type=Path, default=Path("graphmint.toml"))
    return parser


def _report(results: Sequence[ModelResult], args: argparse.Namespace, console: Console) -> int:
    from graphmint.pipeline.reports import write_reports
    from graphmint.pipeline.summary import summary_table

    print(summary_table(results), file=console.out)
    folder = args.report_dir or args.out
    written = write_reports(results, folder)
    print(
        f"\nreports: {', '.join(str(p) for p in written if p.parent == folder)} (+ plots/, logs/)",
        file=console.err,
    )
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _run_options(args: argparse.Namespace) -> RunOptions:
    from graphmint.pipeline.run import RunOptions

    return RunOptions(
        out=args.out,
        routes=args.routes,
        allow_fail=_allowed(args.allow_fail),
        timeout_s=args.timeout,
        strict_runtimes=args.strict_runtimes,
        signing_key=args.signing_key,
    )


def _writable_folder(path: Path, flag: str) -> None:
    """UsageError when `path`, or a folder above it, exists as something other than a folder."""
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            raise UsageError(f"{flag} {path}: {place} is a file, not a folder: pass a folder")
        if place.exists():
            return


def _run_quietly(args: argparse.Namespace, run: Callable[[Progress], list[ModelResult]]) -> int:
    """Run with the frameworks' own output (banners, warnings, native logs) in the report folder's
    logs/run.log, and graphmint's progress and summary on the console."""
    from graphmint.pipeline.console import native_output_to
    from graphmint.pipeline.progress import ConsoleProgress

    _writable_folder(args.out, "--out")
    if args.report_dir:
        _writable_folder(args.report_dir, "--report-dir")
    folder = args.report_dir or args.out
    with native_output_to(folder / "logs" / "run.log") as console:
        results = run(ConsoleProgress(console.err))
        return _report(results, args, console)


def cmd_export(args: argparse.Namespace) -> int:
    from graphmint.pipeline.run import run_model
    from graphmint.pipeline.specs import make_model_spec

    name = args.name if args.name is not None else args.ref.partition(":")[2].split(".")[-1] or "model"
    spec = make_model_spec(
        name=name,
        ref=args.ref,
        inputs=args.input,
        dims=args.dim,
        ranges=args.range,
        seed=args.seed,
        generator=args.generator,
    )
    options = _run_options(args)
    return _run_quietly(args, lambda progress: [run_model(spec, options, progress)])


def cmd_run(args: argparse.Namespace) -> int:
    from graphmint.pipeline.config import load_config
    from graphmint.pipeline.run import run_models

    specs = load_config(args.config)
    if args.models:
        known = {s.name for s in specs}
        unknown = [m for m in args.models if m not in known]
        if unknown:
            raise UsageError(
                f"unknown model(s) {', '.join(unknown)}; the config has: {', '.join(sorted(known))}"
            )
        specs = [s for s in specs if s.name in args.models]
    options = _run_options(args)
    return _run_quietly(args, lambda progress: run_models(specs, options, progress))


def cmd_validate(args: argparse.Namespace) -> int:
    from graphmint.pipeline.summary import validation_table
    from graphmint.pipeline.validate import TrustOptions, validate_path

    trust = TrustOptions(trust=args.trust, verify_key=args.verify_key)
    results = [validate_path(path, args.atol, args.rtol, args.timeout, trust) for path in args.paths]
    print(validation_table(results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_package(args: argparse.Namespace) -> int:
    from graphmint.pipeline.bundle import package_bundle

    print(f"serving bundle written to {package_bundle(args.artifacts, args.out, args.signing_key)}")
    return EXIT_OK


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from graphmint.pipeline.bundle import verify_bundle

    check = verify_bundle(args.bundle, args.verify_key)
    for kind in ("changed", "missing", "added"):
        for path in getattr(check, kind):
            print(f"{kind}: {path}")
    print(f"signature: {check.signature or 'not checked (no verify key configured)'}")
    print(f"{args.bundle}: {'intact' if check.ok else 'differs from its MANIFEST.json'}")
    return EXIT_OK if check.ok else EXIT_FAILED


def cmd_serve_check(args: argparse.Namespace) -> int:
    from graphmint.pipeline.servecheck import serve_check

    check = serve_check(args.bundle, args.timeout, args.verify_key)
    for model, data_set, passed, reason in check.results:
        print(f"{model:<28} {data_set:<18} {'passed' if passed else 'failed: ' + reason}")
    print(f"{sum(r[2] for r in check.results)} passed, {sum(not r[2] for r in check.results)} failed")
    return EXIT_OK if check.ok else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    from graphmint.pipeline.server import serve

    serve(args.bundle, args.port, verify_key=args.verify_key)
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    from graphmint.pipeline.trust import generate_key_pair

    generate_key_pair(args.private, args.public)
    print(
        f"private key: {args.private} (keep it secret)\npublic key: {args.public} (give it to who verifies)"
    )
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from graphmint.exporters import ROUTE_MODULES, get_route
    from graphmint.pipeline.config import load_config

    print("routes:")
    for framework, name in ROUTE_MODULES:
        route = get_route(framework, name)
        flag = "" if route.default else " (opt-in)"
        print(f"  {framework:<10} {name:<20} {route.description}{flag}")
    if args.config.exists():
        print(f"models ({args.config}):")
        for spec in load_config(args.config):
            routes = ",".join(spec.routes) if spec.routes else "default routes"
            print(f"  {spec.name:<18} {spec.ref:<40} {' '.join(map(str, spec.inputs))}  [{routes}]")
    return EXIT_OK


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 passed, 1 a route failed, 2 bad usage or input)."""
    from graphmint.pipeline import interrupts

    interrupts.install()
    try:
        args = build_parser().parse_args(argv)
        if args.command in ("export", "run", "validate"):  # what killed runs left in the temp folder
            from graphmint.pipeline.isolation import sweep_stale_temp

            sweep_stale_temp()
        handler = {
            "export": cmd_export,
            "run": cmd_run,
            "validate": cmd_validate,
            "package": cmd_package,
            "verify-bundle": cmd_verify_bundle,
            "serve-check": cmd_serve_check,
            "serve": cmd_serve,
            "list": cmd_list,
            "keygen": cmd_keygen,
        }[args.command]
        return handler(args)
    except UsageError as exc:
        print(f"graphmint: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`graphmint list | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # the filesystem refused: a path that is not writable, a full disk
        if exc.errno is None:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(
            f"graphmint: error: {exc.strerror}{where}: check that the path is a folder you can write to "
            "and that the disk has space (nothing was published for the model in progress)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("graphmint: interrupted; nothing was published for the model in progress", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
