"""Input specs, dim and value ranges, the shape grid, seeded inputs and tolerances as data."""

from __future__ import annotations

import numpy as np
import pytest

from graphmint.pipeline.errors import SpecError
from graphmint.pipeline.spec.inputs import make_inputs, shape_grid
from graphmint.pipeline.spec.specs import InputSpec, make_model_spec, parse_dim, parse_input_spec, parse_range
from graphmint.validators.compare import compare_output
from graphmint.validators.tolerance import Tolerance, TolerancePolicy


def test_parse_input_spec() -> None:
    assert parse_input_spec("ids:int64[batch, seq]") == InputSpec("ids", "int64", ("batch", "seq"))
    assert parse_input_spec("x:float32[batch,3,32,32]").dims == ("batch", 3, 32, 32)
    assert parse_input_spec("s:float32[]").dims == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x:float32", "does not parse"),
        ("x[1,2]", "does not parse"),
        ("x:complex7[1]", "unknown dtype"),
        ("x:float32[0,3]", ">= 1"),
        ("x:float32[b-1]", "neither a size nor a name"),
    ],
)
def test_bad_input_specs_say_what_to_do(text: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        parse_input_spec(text)


def test_dim_and_value_ranges() -> None:
    assert parse_dim("batch=1..64") == ("batch", 1, 64, None)
    assert parse_dim("seq=1..128@16") == ("seq", 1, 128, 16)
    assert parse_range("ids=0..999").high == 999
    for bad in ("batch=4..2", "batch=0..3", "batch=1..8@9", "batch", "batch=1-8"):
        with pytest.raises(SpecError):
            parse_dim(bad)


def test_model_spec_cross_checks() -> None:
    with pytest.raises(SpecError, match="no input uses"):
        make_model_spec(name="m", ref="a:b", inputs=["x:float32[batch,4]"], dims=["seq=1..4"])
    with pytest.raises(SpecError, match="not an input"):
        make_model_spec(name="m", ref="a:b", inputs=["x:int64[batch]"], ranges=["y=0..3"])
    with pytest.raises(SpecError, match="not an integer"):
        make_model_spec(name="m", ref="a:b", inputs=["x:float32[batch]"], ranges=["x=0..3"])
    with pytest.raises(SpecError, match="declared twice"):
        make_model_spec(name="m", ref="a:b", inputs=["x:float32[2]", "x:float32[3]"])


def test_a_spec_without_inputs_takes_the_models_and_checks_its_deferred_flags_then() -> None:
    """Inputs read off the model bind the --dim / --range texts kept for them, to the spec that
    declaring them would have made (every other field kept); a text they do not fit is a SpecError."""
    tolerances = TolerancePolicy(model={"atol": 1e-3})
    pieces = dict(name="m", ref="a:b", dims=["seq=2..9@5"], ranges=["ids=3..4"], seed=7, data="samples")
    deferred = make_model_spec(inputs=[], routes=["onnx"], tolerances=tolerances, **pieces)
    assert deferred.inputs == () and deferred.dims == {}
    bound = deferred.with_inputs(["ids:int64[batch,seq]", "x:float32[batch,seq,3]"])
    declared = make_model_spec(
        inputs=["ids:int64[batch,seq]", "x:float32[batch,seq,3]"],
        routes=["onnx"],
        tolerances=tolerances,
        **pieces,
    )
    assert bound == declared
    assert (
        bound.dims["seq"].example == 5 and bound.value_range("ids") == (3, 4) and bound.deferred == ((), ())
    )
    with pytest.raises(SpecError, match="not an integer"):
        deferred.with_inputs(["ids:float32[batch,seq]"])
    with pytest.raises(SpecError, match="no input uses"):
        deferred.with_inputs(["ids:int64[batch]"])


def test_example_sizes_are_distinct_and_avoid_fixed_sizes() -> None:
    spec = make_model_spec(name="m", ref="a:b", inputs=["x:float32[batch,seq,2,3]"])
    examples = [spec.dims[d].example for d in ("batch", "seq")]
    assert len(set(examples)) == 2 and not set(examples) & {0, 1, 2, 3}


def test_shape_grid_covers_min_max_one_and_a_prime() -> None:
    spec = make_model_spec(name="m", ref="a:b", inputs=["x:float32[batch,seq]"], dims=["seq=4..40@8"])
    grid = shape_grid(spec)
    assert grid[0].label == "example"
    seq_sizes = sorted(p.sizes["seq"] for p in grid if p.varied == "seq")
    assert seq_sizes[0] == 4 and seq_sizes[-1] == 40  # 1 is out of range, so not tried
    assert any(n in seq_sizes for n in (19, 17, 13, 11, 7))
    assert all(p.sizes["batch"] == spec.dims["batch"].example for p in grid if p.varied == "seq")


def test_inputs_are_seeded_and_respect_value_ranges() -> None:
    spec = make_model_spec(
        name="m", ref="a:b", inputs=["ids:int64[batch,5]", "m:bool[batch]"], ranges=["ids=3..4"], seed=7
    )
    point = shape_grid(spec)[1]
    a, b = make_inputs(spec, point, 1), make_inputs(spec, point, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["ids"].dtype == np.int64 and set(np.unique(a["ids"])) <= {3, 4}
    assert a["m"].dtype == np.bool_
    other = make_model_spec(
        name="m", ref="a:b", inputs=["ids:int64[batch,5]", "m:bool[batch]"], ranges=["ids=0..1000"], seed=8
    )
    assert not np.array_equal(make_inputs(other, point, 1)["ids"], a["ids"])


def test_compare_output_rules() -> None:
    e = np.array([1.0, 2.0, -3.0], dtype=np.float32)
    tol = Tolerance(atol=1e-5, rtol=1e-4)
    assert compare_output("y", e + 1e-6, e, tol).passed
    off = compare_output("y", e + np.array([0, 0, 1e-2], dtype=np.float32), e, tol)
    assert not off.passed and off.mismatch_fraction == pytest.approx(1 / 3)
    assert off.max_abs_error == pytest.approx(1e-2, rel=1e-3)
    nan = compare_output("y", np.array([1.0, np.nan, -3.0], dtype=np.float32), e, tol)
    assert not nan.passed and nan.nan_count == 1 and "NaN" in nan.message
    shape = compare_output("y", e[:2], e, tol)
    assert not shape.passed and "shape" in shape.message
    dtype = compare_output("y", e.astype(np.float64), e, tol)
    assert not dtype.passed and "dtype" in dtype.message


def test_tolerance_policy_precedence() -> None:
    policy = TolerancePolicy(
        model={"atol": 1e-4},
        routes={"onnx": {"rtol": 1e-2}},
        outputs={"logits": {"atol": 1e-3}},
    )
    assert policy.resolve("trace", "y", "float32") == Tolerance(1e-4, 1e-4)
    assert policy.resolve("onnx", "y", "float32") == Tolerance(1e-4, 1e-2)
    assert policy.resolve("onnx", "logits", "float32") == Tolerance(1e-3, 1e-2)
    assert policy.resolve("onnx", "ids", "int64") == Tolerance(1e-4, 1e-2)
    assert TolerancePolicy().resolve("x", "ids", "int64") == Tolerance(0.0, 0.0)
    assert (
        TolerancePolicy().resolve("x", "y", "float16").atol
        > TolerancePolicy().resolve("x", "y", "float32").atol
    )
