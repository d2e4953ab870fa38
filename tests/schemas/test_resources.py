"""Resource models: defaults, shorthands, and the rules that live in validators."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import AnyResource, Evaluation, InferenceService, Method, ScoreSpec, ScoreValue

RESOURCE = TypeAdapter(AnyResource)


def method(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "implementation": {"notebook": "case.ipynb"},
        "inputs": {"x": "some-eval"},
        "output": {"kind": "SafetyCase"},
    }
    base.update(spec)
    return {"kind": "Method", "name": "m", "spec": base}


def test_evaluation_defaults() -> None:
    e = RESOURCE.validate_python(
        {"kind": "Evaluation", "name": "e", "spec": {"service": "s", "dataset": "d"}}
    )
    assert isinstance(e, Evaluation)
    # No concurrency: `auto` or 64, decided by the service's runner (runners.evaluation).
    assert (e.spec.concurrency, e.spec.replications, e.spec.errors.on_error) == (None, 1, "record")


def test_template_shorthand_becomes_transform_json() -> None:
    s = RESOURCE.validate_python(
        {
            "kind": "InferenceService",
            "name": "s",
            "spec": {
                "model": "m",
                "runner": {"kind": "python"},
                "interface": {"request": {"text": "$.text"}, "output": {"score": "float64"}},
            },
        }
    )
    assert isinstance(s, InferenceService)
    assert s.spec.interface.request[0].kind == "TransformJSON"


def test_input_shorthand() -> None:
    m = RESOURCE.validate_python(method())
    assert isinstance(m, Method)
    assert m.spec.inputs["x"].resource == "some-eval"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"scores": [{"name": "a"}, {"name": "b"}]}, "exactly one score must be primary"),
        ({"scores": [{"name": "a", "primary": True}, {"name": "a"}]}, "duplicate score names"),
        (
            {"implementation": {"python": "m:f"}},
            "python method's output kind must be 'Measurement'",
        ),
        ({"inputs": {"not-an-identifier": "e"}}, "is not a Python identifier"),
        ({"scores": [{"name": "a", "primary": True, "gate": {}}]}, "a gate needs"),
    ],
)
def test_method_rules(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        RESOURCE.validate_python(method(**spec))
    assert fragment in str(info.value)


def test_unknown_fields_are_errors() -> None:
    with pytest.raises(ValidationError) as info:
        RESOURCE.validate_python(
            {
                "kind": "Evaluation",
                "name": "e",
                "spec": {"service": "s", "dataset": "d", "concurency": 3},
            }
        )
    assert info.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("fmt", "fragment"),
    [
        ("{x:.2f}", "may only use the field {value} (found {x})"),
        ("{value.real}", "may only use the field {value}"),
        ("{value!r}", "may only use the field {value}"),
        ("{value:>999999999}", "is not a number format"),
        ("{value:{other}}", "is not a number format"),
        ("no field", "has no {value} field"),
        ("{value:,n}", "cannot format a number"),
    ],
)
def test_score_format_is_checked(fmt: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        ScoreSpec(name="a", format=fmt)
    assert fragment in str(info.value)


@pytest.mark.parametrize("fmt", ["{value:.1%}", "{value:,.0f} rows", "{value:+.2f}", "{value}"])
def test_score_formats_that_render_numbers(fmt: str) -> None:
    assert ScoreSpec(name="a", format=fmt).format == fmt


def test_score_value_gate_and_format() -> None:
    value = ScoreValue(name="gap", value=0.12, format="{value:.1%}", gate_max=0.1)
    assert value.formatted() == "12.0%"
    assert value.passed() is False
    assert ScoreValue(name="gap", value=0.05, gate_max=0.1).passed() is True
    assert ScoreValue(name="gap", value=0.05).passed() is None
