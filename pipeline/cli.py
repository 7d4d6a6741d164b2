"""The `graphmint` command: a thin layer over pipeline.run, pipeline.config and exporters."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from graphmint.pipeline.arguments import build_parser, csv_names
from graphmint.pipeline.errors import UsageError

if TYPE_CHECKING:
    from graphmint.pipeline.reports.console import Console
    from graphmint.pipeline.run.progress import Progress
    from graphmint.pipeline.run.results import ModelResult
    from graphmint.pipeline.run.stages import RunOptions

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _report(results: Sequence[ModelResult], args: argparse.Namespace, console: Console) -> int:
    from graphmint.pipeline.reports import write_reports
    from graphmint.pipeline.reports.summary import summary_table

    print(summary_table(results), file=console.out)
    folder = args.report_dir or args.out
    written = write_reports(results, folder)
    print(
        f"\nreports: {', '.join(str(p) for p in written if p.parent == folder)} (+ plots/, logs/)",
        file=console.err,
    )
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _run_options(args: argparse.Namespace, explain: bool = False) -> RunOptions:
    from graphmint.pipeline.run.executors import available_cores
    from graphmint.pipeline.run.stages import RunOptions

    if getattr(args, "ray_address", None) and args.executor != "ray":
        raise UsageError(f"--ray-address {args.ray_address} needs --executor ray")
    # explain: one cell after the other (the per-layer comparison is the point, not the time)
    args.jobs = 1 if explain else getattr(args, "jobs", None) or available_cores()

    return RunOptions(
        explain=explain,
        out=args.out,
        routes=args.routes,
        allow_fail=csv_names(args.allow_fail),
        timeout_s=args.timeout,
        export_timeout_s=args.export_timeout,
        strict_runtimes=args.strict_runtimes,
        strict=args.strict,
        signing_key=getattr(args, "signing_key", None),
        cache=not getattr(args, "no_cache", False),
        jobs=args.jobs,
        executor=getattr(args, "executor", "local"),
        ray_address=getattr(args, "ray_address", None),
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
    from graphmint.pipeline.reports.console import native_output_to
    from graphmint.pipeline.run.progress import ConsoleProgress

    _writable_folder(args.out, "--out")
    if args.report_dir:
        _writable_folder(args.report_dir, "--report-dir")
    folder = args.report_dir or args.out
    parallel = args.jobs > 1 or getattr(args, "executor", "local") != "local"
    with native_output_to(folder / "logs" / "run.log") as console:
        results = run(ConsoleProgress(console.err, parallel=parallel))
        return _report(results, args, console)


def cmd_explain(args: argparse.Namespace) -> int:
    return cmd_export(args, explain=True)


def cmd_export(args: argparse.Namespace, explain: bool = False) -> int:
    from graphmint.pipeline.run.executors import run_models
    from graphmint.pipeline.spec.sources import default_name, parse_arg
    from graphmint.pipeline.spec.specs import make_model_spec
    from graphmint.validators.tolerance import Rule, TolerancePolicy

    given = {k: v for k, v in (("atol", args.atol), ("rtol", args.rtol)) if v is not None}
    tolerances = TolerancePolicy(model=given, rule=Rule(args.rule) if args.rule else None)
    spec = make_model_spec(
        name=args.name if args.name is not None else default_name(args.ref),
        ref=args.ref,
        inputs=args.input,
        dims=args.dim,
        ranges=args.range,
        seed=args.seed,
        generator=args.generator,
        tolerances=tolerances,
        data=str(args.data) if args.data is not None else None,
        args=dict(parse_arg(a) for a in args.arg),
        weights=args.weights,
        custom_objects=args.custom_objects,
        trust=args.trust,
    )
    options = _run_options(args, explain)
    return _run_quietly(args, lambda progress: run_models([spec], options, progress))


def cmd_run(args: argparse.Namespace) -> int:
    from graphmint.pipeline.run.executors import run_models
    from graphmint.pipeline.run.shards import Shard, write_shard
    from graphmint.pipeline.spec.config import load_config

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
    if args.shard is None:
        return _run_quietly(args, lambda progress: run_models(specs, options, progress))
    shard = Shard(*args.shard)
    mine = shard.select(specs)

    def run_shard(progress: Progress) -> list[ModelResult]:
        results = run_models(mine, options, progress)
        write_shard(args.report_dir or args.out, shard, [s.name for s in specs], results)
        return results

    return _run_quietly(args, run_shard)


def cmd_merge(args: argparse.Namespace) -> int:
    from graphmint.pipeline.reports.console import Console
    from graphmint.pipeline.run.shards import merge_shards

    _writable_folder(args.out, "--out")
    results = merge_shards(args.shards, args.out)
    return _report(results, args, Console(sys.stdout, sys.stderr))


def cmd_validate(args: argparse.Namespace) -> int:
    from graphmint.pipeline.reports.summary import validation_table
    from graphmint.pipeline.validate import TrustOptions, validate_path

    trust = TrustOptions(trust=args.trust, verify_key=args.verify_key)
    results = [validate_path(path, args.atol, args.rtol, args.timeout, trust) for path in args.paths]
    print(validation_table(results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_package(args: argparse.Namespace) -> int:
    from graphmint.pipeline.serving.bundle import package_bundle

    print(f"serving bundle written to {package_bundle(args.artifacts, args.out, args.signing_key)}")
    return EXIT_OK


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from graphmint.pipeline.serving.bundle import verify_bundle

    check = verify_bundle(args.bundle, args.verify_key)
    for kind in ("changed", "missing", "added"):
        for path in getattr(check, kind):
            print(f"{kind}: {path}")
    print(f"signature: {check.signature or 'not checked (no verify key configured)'}")
    print(f"{args.bundle}: {'intact' if check.ok else 'differs from its MANIFEST.json'}")
    return EXIT_OK if check.ok else EXIT_FAILED


def cmd_serve_check(args: argparse.Namespace) -> int:
    from graphmint.pipeline.serving.servecheck import serve_check

    check = serve_check(args.bundle, args.timeout, args.verify_key)
    for case in check.results:
        print(f"{case.model:<28} {case.data_set:<18} {'passed' if case.passed else 'failed: ' + case.reason}")
    print(f"{check.passed} passed, {len(check.results) - check.passed} failed")
    return EXIT_OK if check.ok else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    from graphmint.pipeline.serving.server import serve

    serve(args.bundle, args.port, verify_key=args.verify_key)
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    from graphmint.pipeline.publish.trust import generate_key_pair

    generate_key_pair(args.private, args.public, ed25519=args.ed25519)
    print(
        f"private key: {args.private} (keep it secret)\npublic key: {args.public} (give it to who verifies)"
    )
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from graphmint.pipeline.bench.command import run_bench
    from graphmint.pipeline.bench.measure import StabilityRule
    from graphmint.pipeline.bench.results import BenchOptions
    from graphmint.pipeline.bench.run import published_models
    from graphmint.pipeline.reports.console import native_output_to

    options = BenchOptions(
        batches=args.batch,
        threads=args.threads,
        rule=StabilityRule(max_s=args.max_seconds),
        timeout_s=args.timeout,
        trust=args.trust,
        verify_key=args.verify_key,
    )
    published_models(args.artifacts, args.models)  # bad input is one line before anything is written
    folder = args.report_dir or args.artifacts
    _writable_folder(folder, "--report-dir" if args.report_dir else "ARTIFACTS")
    with native_output_to(folder / "logs" / "bench.log") as console:  # the frameworks' banners

        def echo(line: str) -> None:
            console.out.write(f"{line}\n")

        benches = run_bench(args.artifacts, args.models, options, args.report_dir, args.signing_key, echo)
    failed = [f"{b.name} {s.name}" for b in benches for s in b.errors]
    if failed:
        print(f"could not measure: {', '.join(failed)} (see bench.json)")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from graphmint.pipeline.run.cache import cache_info, clear_cache

    if args.action == "clear":
        print(clear_cache())
    else:
        print(cache_info())
    return EXIT_OK


def cmd_train_check(args: argparse.Namespace) -> int:
    from graphmint.pipeline.reports.console import native_output_to
    from graphmint.pipeline.train.command import TrainOptions, plan_train_check, train_check_command
    from graphmint.pipeline.train.report import console_table, write_train_reports

    options = TrainOptions(
        config=args.config,
        models=args.models,
        inputs=tuple(args.input),
        dims=tuple(args.dim),
        ranges=tuple(args.range),
        target=args.target,
        loss=args.loss,
        optimizer=args.optimizer,
        lr=args.lr,
        epsilon=args.epsilon,
        steps=args.steps,
        seed=args.seed,
        name=args.name,
        forms=args.forms,
        timeout_s=args.timeout,
    )
    plan = plan_train_check(options)  # bad input is one line before anything is written
    _writable_folder(args.report_dir, "--report-dir")
    with native_output_to(args.report_dir / "logs" / "train.log") as console:
        results = train_check_command(plan, options, lambda line: print(line, file=console.err, flush=True))
        print(console_table(results), file=console.out)
        written = write_train_reports(results, args.report_dir)
        print(f"reports: {', '.join(str(p) for p in written[:3])} (+ plots/)", file=console.err)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_parity(args: argparse.Namespace) -> int:
    from graphmint.pipeline.reports.console import native_output_to
    from graphmint.pipeline.train.command import (
        ParityOptions,
        parity_command,
        plan_parity,
        write_parity_report,
    )

    options = ParityOptions(config=args.config, pairs=args.pairs, steps=args.steps, timeout_s=args.timeout)
    plan = plan_parity(options)
    _writable_folder(args.report_dir, "--report-dir")
    with native_output_to(args.report_dir / "logs" / "parity.log") as console:
        results = parity_command(plan, options, lambda line: print(line, file=console.out, flush=True))
        print(f"report: {write_parity_report(results, args.report_dir)}", file=console.err)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_list(args: argparse.Namespace) -> int:
    from graphmint.exporters import ROUTE_GROUPS, ROUTE_MODULES, get_route
    from graphmint.pipeline.spec.config import load_config

    print("routes:")
    for framework, name in ROUTE_MODULES:
        route = get_route(framework, name)
        flag = "" if route.default else " (opt-in)"
        print(f"  {framework:<10} {name:<20} {route.description}{flag}")
    print("route groups (wherever routes are named):")
    for group, what in ROUTE_GROUPS.items():
        print(f"  {group:<31} {what}")
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
        if args.command in (
            "export",
            "explain",
            "run",
            "validate",
            "bench",
            "train-check",
            "parity",
        ):  # what killed runs left in the temp folder
            from graphmint.pipeline.run.isolation import sweep_stale_temp

            sweep_stale_temp()
        handler = {
            "export": cmd_export,
            "explain": cmd_explain,
            "run": cmd_run,
            "validate": cmd_validate,
            "package": cmd_package,
            "verify-bundle": cmd_verify_bundle,
            "serve-check": cmd_serve_check,
            "serve": cmd_serve,
            "list": cmd_list,
            "keygen": cmd_keygen,
            "bench": cmd_bench,
            "cache": cmd_cache,
            "merge": cmd_merge,
            "train-check": cmd_train_check,
            "parity": cmd_parity,
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
