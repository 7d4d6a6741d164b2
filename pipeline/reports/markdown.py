"""report.md: a summary table, then for every failure what failed and what to try next."""

from __future__ import annotations

from collections.abc import Sequence

from graphmint.pipeline.reports import layer_plot_name
from graphmint.pipeline.reports.summary import judged
from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.validators.results import NUMBERED, Diagnosis, Status

__all__ = ["markdown_report", "next_step"]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


#: what to try next, by the kind of failure (Diagnosis); NUMBERS is also the advice for any other kind
ADVICE: dict[Diagnosis, str] = {
    Diagnosis.FROZEN_DIM: (
        "The exported graph fixed a dimension you declared dynamic. For tracing, avoid turning sizes "
        "into Python ints (int(x.shape[i]), .item(), .tolist()); use another route (torch-export, "
        "onnx) or, if the size really is fixed, declare it as a number in --input."
    ),
    Diagnosis.RUNTIME_FUSION: (
        "The ONNX file is right and an ONNX Runtime fusion shifts the numbers. Serve with "
        "graph_optimization_level below ORT_ENABLE_ALL, or accept the error with a route tolerance "
        "([models.tolerance.routes.onnx] in the config) if it is small."
    ),
    Diagnosis.EXPORT: (
        "The exporter rejected the model. Read the reason above; rewrite the unsupported construct, "
        "or list the route under [models.known_failures] with why it cannot work."
    ),
    Diagnosis.LOAD: (
        "The runtime could not load the file the exporter wrote. The route's log in logs/ has the "
        "runtime's own output; the manifest's versions say which exporter and runtime met."
    ),
    Diagnosis.RUN: (
        "The artifact loads but fails to run on some inputs: the shapes named above are the ones to try."
    ),
    Diagnosis.TIMEOUT: (
        "A stage did not finish within its bound (the reason names it). Raise --export-timeout for an "
        "export or a compile, --timeout for a runtime's load or one inference, or leave the route to "
        "the models it suits."
    ),
    Diagnosis.SHAPE: (
        "An output has another shape than eager's: the axis and the input dim named above are where "
        "the graph computes a size differently (a size read as a Python number, a map over the wrong "
        "axis). Check the layer that makes that output, or the toolchain's handling of that dim."
    ),
    Diagnosis.DATA_DEPENDENT: (
        "The forward branches on a tensor's value (the line named above). A trace keeps one branch and "
        "torch.export cannot decide it: express the branch as a tensor op (torch.where, torch.cond), or "
        "move the decision out of forward."
    ),
    Diagnosis.UNRUNNABLE: (
        "The file holds ops that no runtime here can run (a TFLite file's Select TF ops need the Flex "
        "delegate, which no interpreter pip offers links): deploy it where that runtime exists, or "
        "change the model so the converter needs no such op (a builtin-only layer, a static dim)."
    ),
    Diagnosis.NUMBERS: (
        "The artifact runs but its numbers differ from the eager model by more than the eager model's own "
        'float32 error against a float64 copy allows (or, with rule = "tolerance", by more than '
        "atol/rtol). Compare the runtimes in report.json to see which one diverges, and the worst "
        "element named above; a large multiple of the noise is a real difference, not rounding."
    ),
}


def next_step(route: RouteResult) -> str:
    """A suggestion for the reader of a failure, from the kind of failure."""
    return ADVICE.get(route.diagnosis, ADVICE[Diagnosis.NUMBERS])


def markdown_report(results: Sequence[ModelResult]) -> str:
    lines = ["# graphmint report", ""]
    total = [r for m in results for r in m.routes]
    verdict = "all routes passed" if all(m.ok for m in results) else "some routes failed"
    lines += [f"{len(results)} model(s), {len(total)} route(s): {verdict}.", ""]
    lines += [
        "| model | framework | route | status | runtimes passed | max abs | max rel | time | exporter "
        "| judged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in results:
        for r in m.routes:
            ran = [c for c in r.checks if c.status != Status.SKIPPED]
            runtimes = f"{sum(c.status == 'passed' for c in ran)}/{len(ran)}" if ran else "-"
            status = r.status + (" (allowed)" if r.allowed_failure else "")
            numbered = r.status in NUMBERED
            max_abs, max_rel = (r.max_abs_error, r.max_rel_error) if numbered else (None, None)
            lines.append(
                f"| {m.name} | {m.framework} | {r.route} | {status} | {runtimes} | {_num(max_abs)} | "
                f"{_num(max_rel)} | {r.seconds:.1f}s | {_escape(r.exporter or '-')} | {judged(r)} |"
            )
    failures = [(m, r) for m in results for r in m.routes if r.status in (Status.FAILED, Status.ERROR)]
    if failures:
        lines += ["", "## Failures", ""]
        for m, r in failures:
            lines += [f"### {m.name} × {r.route}: {r.status} at {r.stage or 'check'}", ""]
            lines += [f"- What failed: {_escape(r.reason)}"]
            for check in r.checks:
                bad = [p for p in check.points if p.status != Status.PASSED]
                if bad:
                    labels = ", ".join(p.label for p in bad)
                    lines.append(f"- {check.runner}: {check.status} at {labels}")
            divergence = r.details.divergence
            if divergence and not divergence.reproduced:
                lines.append(
                    "- Where it starts: unknown. The model exported again with every layer as an output "
                    "computes what eager computes, so the failure needs the whole graph as the route "
                    "exported it"
                )
            elif divergence and divergence.first:
                held = divergence.last_matching
                lines.append(
                    f"- Where it starts: layer `{divergence.first}` is the first whose output differs"
                    + (f"; `{held}` is the last that matched" if held else "")
                    + f" (per-layer errors: plots/{layer_plot_name(m.name, r.route)})"
                )
            trace = divergence.runtime_trace if divergence else None
            if trace is not None:
                lines.append(f"- Inside the runtime: {_escape(trace.line())}")
            lines += [f"- Try next: {next_step(r)}", ""]
    for status, title in ((Status.UNSUPPORTED, "Unsupported here"), (Status.SKIPPED, "Skipped")):
        listed = [(m, r) for m in results for r in m.routes if r.status == status]
        if listed:
            lines += ["", f"## {title}", ""]
            lines += [f"- {m.name} × {r.route}: {_escape(r.reason)}" for m, r in listed]
    lines += ["", "## Noise floors", ""]
    lines += [
        "Each float output is judged against a float64 copy of the model: a route passes when its error "
        "(RMSE) is within a multiple of the eager float32 model's own, below.",
        "",
    ]
    for m in results:
        floors = ", ".join(f"{name} {value:.2e}" for name, value in m.noise.items()) or "-"
        why = f" (no float64 reference: {_escape(m.float64_reason)})" if m.float64_reason else ""
        lines.append(f"- {m.name}: rule {m.rule}{why}; eager error against float64: {floors}")
    lines += _budget_lines(results)
    warned = [(m, r, w) for m in results for r in m.routes for w in r.warnings]
    if warned:
        lines += ["", "## Warnings", ""]
        lines += [f"- {m.name} × {r.route}: {_escape(w)}" for m, r, w in warned]
    lines += ["", "Full exporter and runtime output per route: `logs/<model>/<route>.log`."]
    return "\n".join(lines).rstrip() + "\n"


def _budget_lines(results: Sequence[ModelResult]) -> list[str]:
    """Reduced-precision routes: each output's budget and what it reached over the grid."""
    rows = [
        (m, r, name, b)
        for m in results
        for r in m.routes
        if r.check is not None
        for name, b in r.check.budgets.items()
    ]
    if not rows:
        return []
    lines = ["", "## Accuracy budgets (reduced precision)", ""]
    lines += [
        "| model | route | precision | output | cosine | SNR dB | max abs / max abs(eager) | top-k "
        "| within |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, r, name, b in rows:
        need = b.budget
        topk_text = _num(b.topk_agreement)
        if need.topk_agreement is not None:
            topk_text = f"{b.topk_agreement or 0:.3f} (≥ {need.topk_agreement:g})"
        lines.append(
            f"| {m.name} | {r.route} | {r.precision} | {name} | "
            f"{b.cosine or 0:.6f} (≥ {need.cosine:g}) | "
            f"{b.snr_db or 0:.1f} (≥ {need.snr_db:g}) | "
            f"{_num(b.max_abs)} (≤ {need.max_abs:g}) | {topk_text} | "
            f"{'yes' if b.passed else 'no'} |"
        )
    for m in results:
        for r in m.routes:
            found = r.details.reduced_precision
            if found and found.kept:
                why = _escape(found.why or "")
                lines.append(f"- {m.name} × {r.route}: kept in float: {', '.join(found.kept)} ({why})")
    return lines
