"""The verdict step (validators.verdict): a route's attempts and what decides besides them in, one
verdict out; and the one SNR (exporters.snr) that the budget and the reduced-precision retries take."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from graphmint.exporters.base import ExportState, Precision
from graphmint.exporters.snr import SNR_EXACT_DB, snr_db
from graphmint.validators.budget import budget_values
from graphmint.validators.results import ArtifactCheck, Diagnosis, RouteResult, Stage, Status
from graphmint.validators.verdict import Attempt, Judging, route_verdict


def _check(runner: str, status: Status, reason: str = "") -> ArtifactCheck:
    return ArtifactCheck(runner=runner, runtime="", status=status, stage=Stage.COMPARE, reason=reason)


def test_a_fallback_that_passes_names_the_strategy_rejected_before_it(tmp_path: Path) -> None:
    attempts = [
        Attempt("dynamo", ExportState.FAILED, f"wrote {tmp_path}/onnx/model.onnx then raised"),
        Attempt("legacy", ExportState.EXPORTED, checks=[_check("onnxruntime", Status.PASSED)]),
    ]
    verdict = route_verdict(attempts, Judging(route="onnx", root=tmp_path))
    assert (verdict.status, verdict.stage, verdict.diagnosis) == (Status.PASSED, "", Diagnosis.NONE)
    assert verdict.reason == "fallback used: dynamo rejected at export: wrote onnx/model.onnx then raised"
    result = verdict.onto(RouteResult(route="onnx", status=Status.ERROR))
    assert result.status == Status.PASSED and [r.exporter for r in result.rejected] == ["dynamo"]


def test_a_fallback_that_does_not_apply_leaves_the_earlier_failure_standing() -> None:
    """tf2onnx fails, and Keras's own exporter does not apply to a plain tf.Module: the route is the
    failure, not a skip; a chain whose first strategy does not apply is skipped."""
    failed = Attempt("tf2onnx", ExportState.FAILED, "no conversion for Lgamma")
    keras = Attempt("keras-export", ExportState.SKIPPED, "not a Keras model")
    verdict = route_verdict([failed, keras], Judging(route="onnx"))
    assert (verdict.status, verdict.stage, verdict.reason) == (
        Status.ERROR,
        Stage.EXPORT,
        "no conversion for Lgamma",
    )
    assert [r.exporter for r in verdict.rejected] == ["tf2onnx"]
    skipped = route_verdict([keras], Judging(route="onnx"))
    assert (skipped.status, skipped.reason) == (Status.SKIPPED, "not a Keras model")


def test_a_cross_check_that_disagrees_is_a_warning_unless_strict() -> None:
    checks = [_check("onnxruntime", Status.PASSED), _check("onnxruntime-noopt", Status.FAILED, "off by 1")]
    attempt = Attempt("dynamo", ExportState.EXPORTED, checks=checks)
    lenient = route_verdict([attempt], Judging(route="onnx"))
    assert lenient.status == Status.PASSED and lenient.excused == ["onnxruntime-noopt"]
    assert lenient.warnings == ["onnxruntime-noopt (cross-check) failed where onnxruntime passed: off by 1"]
    strict = route_verdict([attempt], Judging(route="onnx", strict_runtimes=True))
    assert (strict.status, strict.stage, strict.diagnosis) == (
        Status.FAILED,
        Stage.COMPARE,
        Diagnosis.NUMBERS,
    )
    assert strict.reason == "onnxruntime-noopt: off by 1" and not strict.warnings


def test_a_reduced_file_with_nothing_reduced_is_unsupported() -> None:
    attempt = Attempt(
        "quantize", ExportState.EXPORTED, checks=[_check("onnxruntime", Status.PASSED)], reduced_tensors=0
    )
    judging = Judging(route="onnx-int8-dynamic", precision=Precision.INT8, unreduced="no MatMul to quantize")
    verdict = route_verdict([attempt], judging)
    assert (verdict.status, verdict.stage, verdict.diagnosis) == (
        Status.UNSUPPORTED,
        Stage.EXPORT,
        Diagnosis.EXPORT,
    )
    assert verdict.reason.endswith("the file holds no int8 tensor (no MatMul to quantize)")


def test_a_default_route_that_cannot_export_is_unsupported_a_named_one_an_error() -> None:
    attempts = [Attempt("trace", ExportState.FAILED, "Unsupported: op foo", overran=False)]
    named = route_verdict(attempts, Judging(route="torch-export", required=True))
    assert (named.status, named.stage, named.diagnosis) == (Status.ERROR, Stage.EXPORT, Diagnosis.EXPORT)
    default = route_verdict(attempts, Judging(route="torch-export", required=False))
    assert default.status == Status.UNSUPPORTED
    assert default.reason == "torch-export cannot be produced for this model here: Unsupported: op foo"
    known = route_verdict(attempts, Judging(route="torch-export", known_failure="foo has no kernel"))
    assert known.status == Status.SKIPPED
    assert known.reason == "known limitation: foo has no kernel (observed at export: Unsupported: op foo)"


def test_a_branch_on_a_value_is_the_diagnosis_and_a_vacuous_pass_fails_under_strict() -> None:
    failed = Attempt("trace", ExportState.EXPORTED, checks=[_check("torchscript", Status.FAILED, "off")])
    log = "TracerWarning: Converting a tensor to a Python boolean might be wrong (net.py:10)\n"
    verdict = route_verdict([failed], Judging(route="torchscript-trace"), log)
    assert verdict.diagnosis == Diagnosis.DATA_DEPENDENT
    assert verdict.reason.startswith("data-dependent control flow: the forward branches on a tensor's value")
    assert verdict.reason.endswith("; torchscript: off")
    passed = Attempt("trace", ExportState.EXPORTED, checks=[_check("torchscript", Status.PASSED)])
    vacuous = {"y": "zero for every input"}
    warned = route_verdict([passed], Judging(route="torchscript-trace", vacuous=vacuous))
    assert warned.status == Status.PASSED and "is vacuous" in warned.warnings[0]
    strict = route_verdict([passed], Judging(route="torchscript-trace", vacuous=vacuous, strict=True))
    assert (strict.status, strict.stage) == (Status.FAILED, Stage.COMPARE) and strict.reason.endswith(
        "(--strict)"
    )


def test_the_budget_and_the_retries_take_one_snr() -> None:
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((4, 10))
    actual = expected + 0.01 * rng.standard_normal((4, 10))
    ratio = 10 * math.log10(np.sum(expected**2) / np.sum((actual - expected) ** 2))
    assert math.isclose(snr_db(expected, actual), ratio, rel_tol=1e-12)
    assert budget_values(actual, expected).snr_db == snr_db(expected, actual)
    assert math.isclose(snr_db([expected[:2], expected[2:]], [actual[:2], actual[2:]]), ratio, rel_tol=1e-12)
    assert snr_db(expected, expected) == SNR_EXACT_DB
    assert snr_db(np.zeros(3), np.zeros(3)) == SNR_EXACT_DB  # nothing to lose: not short of any target
    assert snr_db(expected, np.where(expected > 0, np.nan, actual)) == -math.inf
    assert snr_db(expected, actual[:2]) == -math.inf
    huge = expected * 1e300  # squares past float64's range: measured on values scaled to at most 1
    assert math.isclose(snr_db(huge, actual * 1e300), ratio, rel_tol=1e-9)


def test_an_output_with_no_finite_error_is_judged_not_raised() -> None:
    from graphmint.validators.compare import compare_output
    from graphmint.validators.tolerance import Criterion, Rule, Tolerance

    nan = np.array([np.nan], dtype=np.float32)
    for judge in (Tolerance(1e-5, 1e-4), Criterion(Rule.SCALED, Tolerance(1e-5, 1e-4))):
        result = compare_output("y", nan, np.ones(1, dtype=np.float32), judge)
        assert not result.passed and result.worst_index is None
        assert (
            "1 NaN and 0 Inf values" in result.message and "no element has a finite error" in result.message
        )
