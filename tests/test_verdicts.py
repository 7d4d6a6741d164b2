"""Verdicts: the noise rule against a float64 copy of the model, the elementwise and scaled rules, the
element that breaks the rule, and comparisons that prove nothing (vacuous)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.pipeline.run.stages import RunOptions, run_model
from graphmint.pipeline.spec.specs import make_model_spec
from graphmint.validators.compare import compare_output
from graphmint.validators.tolerance import Criterion, Rule, Tolerance, TolerancePolicy

FLOAT32 = Tolerance(atol=1e-5, rtol=1e-4)


def _noisy(scale: float, size: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A float64 reference of magnitude `scale` and an eager float32 output with its rounding noise."""
    reference = np.random.default_rng(seed).normal(0, scale, size)
    return reference, reference.astype(np.float32)


def test_the_noise_rule_holds_a_route_to_the_eager_models_own_precision() -> None:
    reference, eager = _noisy(scale=30.0)
    noise = float(np.sqrt(np.mean((eager - reference) ** 2)))
    judge = Criterion(Rule.NOISE, FLOAT32)
    # as far from float64 as eager is, in another direction: passes, though outside atol/rtol elementwise
    jitter = np.random.default_rng(1).normal(0, 1.2 * noise, reference.size)
    close = (reference + jitter).astype(np.float32)
    passed = compare_output("logits", close, eager, judge, reference)
    assert passed.passed and passed.rule == "noise", passed.message
    assert passed.eager_float64_error == pytest.approx(noise)
    assert 1.0 < passed.noise_multiple < 2.0
    # logits around 30 whose every element is off by 1e-3: 1000x eager's own error
    off = (reference + 1e-3).astype(np.float32)
    failed = compare_output("logits", off, eager, judge, reference)
    assert not failed.passed and failed.rule == "noise"
    assert failed.noise_multiple > 100
    assert "float64" in failed.message and "noise limit" in failed.message
    # the elementwise verdict is recorded whichever rule judges
    assert failed.within_tolerance is not None and failed.float64_error is not None


def test_without_a_float64_reference_the_noise_rule_falls_back_to_the_outputs_scale() -> None:
    expected = np.array([33.0, -20.0, 0.001, 5.0], dtype=np.float32)
    actual = expected + np.float32(2.9e-4)  # 1e-5 of the output's scale
    scaled = compare_output("logits", actual, expected, Criterion(Rule.NOISE, FLOAT32))
    assert scaled.passed and scaled.rule == "scaled"
    assert scaled.within_tolerance is False  # 2.9e-4 on 0.001 is far outside rtol elementwise
    assert not compare_output("logits", actual, expected, FLOAT32).passed


def test_the_worst_element_named_is_the_one_that_breaks_the_rule() -> None:
    expected = np.array([100.0, 0.001], dtype=np.float32)
    # element 0 has the larger error (5e-3) but is within 1e-5 + 1e-4 * 100; element 1 is not
    actual = np.array([100.005, 0.0015], dtype=np.float32)
    result = compare_output("y", actual, expected, FLOAT32)
    assert not result.passed
    assert result.worst_index == [1]
    assert result.max_abs_error == pytest.approx(5e-3, rel=1e-2)
    assert "worst at [1]" in result.message


def test_the_gating_rule_follows_the_config() -> None:
    assert TolerancePolicy().gating_rule == Rule.NOISE
    assert TolerancePolicy(model={"atol": 1e-3}).gating_rule == Rule.TOLERANCE
    assert TolerancePolicy(model={"atol": 1e-3}, rule=Rule.NOISE).gating_rule == Rule.NOISE
    assert TolerancePolicy().criterion("onnx", "ids", "int64").rule == Rule.TOLERANCE
    assert TolerancePolicy(multiplier=5).criterion("onnx", "y", "float32").multiplier_for(10) == 5
    assert TolerancePolicy().criterion("onnx", "y", "float32").multiplier_for(10) == 3


@pytest.fixture(scope="module")
def constant_spec() -> object:
    return make_model_spec(
        name="Constant",
        ref="tests.real_model_defs:constant_net",
        inputs=["x:float32[batch,4]"],
        dims=["batch=1..4"],
    )


def test_an_output_that_ignores_its_input_is_flagged_vacuous(tmp_path: Path, constant_spec: object) -> None:
    result = run_model(constant_spec, RunOptions(out=tmp_path, routes=("torchscript-trace",)))  # type: ignore[arg-type]
    assert result.ok, [(r.route, r.reason) for r in result.routes]
    assert set(result.vacuous) == {"output_0", "output_1"}
    assert result.vacuous["output_1"] == "zero on every input"
    assert "constant" in result.vacuous["output_0"]
    route = result.routes[0]
    assert route.status == "passed"
    assert any("'output_0' is vacuous" in w for w in route.warnings), route.warnings
    manifest = read_model_manifest(tmp_path / "Constant")
    assert set(manifest.vacuous) == {"output_0", "output_1"}
    assert manifest.routes[0].warnings == route.warnings


def test_strict_fails_a_vacuous_comparison(tmp_path: Path, constant_spec: object) -> None:
    options = RunOptions(out=tmp_path, routes=("torchscript-trace",), strict=True)
    result = run_model(constant_spec, options)  # type: ignore[arg-type]
    assert not result.ok and result.published is None
    route = result.routes[0]
    assert route.status == "failed" and route.stage == "compare"
    assert "vacuous" in route.reason and "--strict" in route.reason


@pytest.mark.parametrize(
    "route", ["tf-function", pytest.param("saved-model", marks=pytest.mark.long, id="saved-model")]
)
def test_a_calibrated_efficientnet_passes_under_the_noise_rule(tmp_path: Path, route: str) -> None:
    """keras.applications EfficientNetB0 with realistic BatchNorm statistics: logits around 30, on which
    float32 itself is off by about 2e-4. The fixed atol/rtol fails it; the noise rule, which measures
    that, passes it, and both verdicts are recorded."""
    spec = make_model_spec(
        name="EfficientNetB0",
        ref="graphmint.models.corpus_keras:efficientnet_b0",
        inputs=["images:float32[2,64,64,3]"],  # one grid point: the rule is the point, not the dims
    )
    result = run_model(spec, RunOptions(out=tmp_path, routes=(route,)))
    assert result.ok and result.rule == "noise" and not result.vacuous, [r.reason for r in result.routes]
    assert result.noise["output"] > 1e-5  # eager float32 is this far from float64: beyond the fixed atol
    entry = read_model_manifest(tmp_path / "EfficientNetB0").routes[0]
    assert entry.status == "passed" and entry.rule == "noise"
    assert entry.within_tolerance is not None  # the fixed atol/rtol's verdict, recorded beside
    assert entry.eager_float64_error == pytest.approx(result.noise["output"])
    assert entry.float64_error is not None and entry.float64_error <= 3 * entry.eager_float64_error


def test_export_takes_atol_and_rtol_and_they_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graphmint.pipeline.cli import main

    args = [
        "tests.real_model_defs:star_args_net",
        "--input",
        "x:float32[batch,4]",
        "--input",
        "y:float32[batch,5]",
    ]
    code = main(
        [
            "export",
            *args,
            "--routes",
            "torchscript-trace",
            "--atol",
            "1e-3",
            "--rtol",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr()
    assert "judged" in capsys.readouterr().out  # the summary's column says how each route was judged
    manifest = read_model_manifest(tmp_path / "star_args_net")
    assert manifest.rule == "tolerance"
    [entry] = manifest.routes
    assert (entry.atol, entry.rtol, entry.rule) == (1e-3, 0.0, "tolerance")
    assert entry.float64_error is not None  # the noise rule's numbers are recorded all the same
