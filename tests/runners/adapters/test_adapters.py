"""Unit tests of every adapter kind and of the JSONPath subset."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

import runners.adapters
from runners.adapters import AdapterError, compile_path, compile_pipeline
from schemas import Adapter, AuditcError

_ADAPTERS = TypeAdapter(list[Adapter])


def pipeline(*specs: dict[str, Any]) -> runners.adapters.Pipeline:
    return compile_pipeline(_ADAPTERS.validate_python(list(specs)), name="interface.response")


def test_public_api() -> None:
    assert sorted(runners.adapters.__all__) == sorted(
        n for n in dir(runners.adapters) if not n.startswith("_")
    )
    assert issubclass(AdapterError, AuditcError)
    assert AdapterError("x").code == "adapter"


# ---------------------------------------------------------------- JSONPath


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", {"a": {"b": [1, 2, 3]}, "key with spaces": "s", "x.y": 7}),
        ("$.a.b", [1, 2, 3]),
        ("$.a.b[0]", 1),
        ("$.a.b[-1]", 3),
        ('$["key with spaces"]', "s"),
        ("$['key with spaces']", "s"),
        ('$["x.y"]', 7),
        ('$.a["b"][1]', 2),
    ],
)
def test_paths(path: str, expected: Any) -> None:
    obj = {"a": {"b": [1, 2, 3]}, "key with spaces": "s", "x.y": 7}
    assert compile_path(path)(obj) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.a.c", "path '$.a.c' matched nothing: $.a is an object with keys 'b', with no key 'c'"),
        ("$.a.b[3]", "$.a.b is a list of 3 elements, with no position 3"),
        ("$.a.b[-4]", "with no position -4"),
        ("$.a.b.c", "$.a.b is a list of 3 elements, with no key 'c'"),
        ("$.n.x", "$.n is null, with no key 'x'"),
        ("$.s[0]", "$.s is a str ('text'), with no position 0"),
        ("$.missing", "$ is an object with keys 'a', 'n', 's', with no key 'missing'"),
    ],
)
def test_missing_paths_name_the_path_and_what_was_found(path: str, message: str) -> None:
    get = compile_path(path, where="template.prompt")
    with pytest.raises(AdapterError) as info:
        get({"a": {"b": [1, 2, 3]}, "n": None, "s": "text"})
    assert str(info.value).startswith("template.prompt: ")
    assert message in str(info.value)


@pytest.mark.parametrize("path", ["a.b", "$.a[", "$.a[x]", "$a", "$.a..b", '$["unterminated]'])
def test_unparseable_paths_are_rejected_when_compiled(path: str) -> None:
    with pytest.raises(AdapterError, match="JSONPath|not a JSONPath"):
        compile_path(path, where="interface.request.0")


# ---------------------------------------------------------------- TransformJSON


def test_transform_json_nested_templates_lists_escapes_and_literals() -> None:
    run = pipeline(
        {
            "kind": "TransformJSON",
            "template": {
                "model": "tiny",
                "messages": [
                    {"role": "system", "content": "$$5 is a literal"},
                    {"role": "user", "content": "$.text"},
                ],
                "options": {"max_tokens": 64, "stop": ["\n"], "seed": "$.meta.seed"},
                "first": "$.tags[0]",
                "last": "$.tags[-1]",
                "whole": "$",
                "flag": True,
                "nothing": None,
            },
        }
    )
    row = {"text": "hi", "meta": {"seed": 3}, "tags": ["a", "b"]}
    assert run(row) == [
        {
            "model": "tiny",
            "messages": [
                {"role": "system", "content": "$5 is a literal"},
                {"role": "user", "content": "hi"},
            ],
            "options": {"max_tokens": 64, "stop": ["\n"], "seed": 3},
            "first": "a",
            "last": "b",
            "whole": row,
            "flag": True,
            "nothing": None,
        }
    ]


def test_transform_json_missing_path_names_adapter_template_key_and_path() -> None:
    run = pipeline({"kind": "TransformJSON", "template": {"a": {"b": ["$.x.y"]}}})
    with pytest.raises(AdapterError) as info:
        run({"x": {"z": 1}})
    assert str(info.value) == (
        "interface.response.0 (TransformJSON).template.a.b.0: path '$.x.y' matched nothing: "
        "$.x is an object with keys 'z', with no key 'y'"
    )


def test_transform_json_bad_path_fails_at_compile_time() -> None:
    with pytest.raises(AdapterError, match=r"template\.prompt: cannot parse JSONPath '\$\.a\['"):
        pipeline({"kind": "TransformJSON", "template": {"prompt": "$.a["}})


def test_outputs_do_not_share_mutable_state_with_inputs() -> None:
    run = pipeline(
        {"kind": "TransformJSON", "template": {"x": "$.x", "c": [1]}},
        {"kind": "Drop", "fields": ["x"]},
    )
    first = run({"x": 1})[0]
    second = run({"x": 2})[0]
    assert first == second == {"c": [1]}


# ---------------------------------------------------------------- ExplodeCollections


def test_explode_collections_zips_lists_copies_fields_and_adds_index() -> None:
    run = pipeline(
        {
            "kind": "ExplodeCollections",
            "collections": ["text", "score"],
            "index": "_response_index_",
        }
    )
    assert run({"id": 7, "text": ["a", "b"], "score": [0.1, 0.2]}) == [
        {"id": 7, "text": "a", "score": 0.1, "_response_index_": 0},
        {"id": 7, "text": "b", "score": 0.2, "_response_index_": 1},
    ]
    assert run({"id": 7, "text": [], "score": []}) == []


def test_explode_collections_errors() -> None:
    run = pipeline({"kind": "ExplodeCollections", "collections": ["a", "b"]})
    with pytest.raises(AdapterError, match=r"collections have different lengths \(a=2, b=1\)"):
        run({"a": [1, 2], "b": [1]})
    with pytest.raises(AdapterError, match="field 'b' is missing, expected a list"):
        run({"a": [1]})
    with pytest.raises(AdapterError, match="field 'b' is a str .*expected a list"):
        run({"a": [1], "b": "x"})


def test_one_requires_exactly_one_object() -> None:
    run = pipeline({"kind": "ExplodeCollections", "collections": ["a"]})
    assert run.one({"a": [1]}) == {"a": 1}
    with pytest.raises(
        AdapterError, match="interface.response: produced 2 objects, expected exactly one"
    ):
        run.one({"a": [1, 2]})
    with pytest.raises(AdapterError, match="produced 0 objects"):
        run.one({"a": []})


# ---------------------------------------------------------------- FlattenHierarchy


def test_flatten_hierarchy_all_levels_with_prefix() -> None:
    run = pipeline({"kind": "FlattenHierarchy"})
    assert run.one({"a": {"b": {"c": 1}, "d": [1, {"e": 2}]}, "f": 3, "g": {}}) == {
        "a.b.c": 1,
        "a.d": [1, {"e": 2}],  # lists are leaves
        "f": 3,
        "g": {},
    }


def test_flatten_hierarchy_depth_fields_separator_and_leaf_names() -> None:
    obj = {"a": {"b": {"c": 1}}, "x": {"y": 2}}
    assert pipeline({"kind": "FlattenHierarchy", "depth": 1}).one(obj) == {
        "a.b": {"c": 1},
        "x.y": 2,
    }
    assert pipeline({"kind": "FlattenHierarchy", "fields": ["x"], "separator": "__"}).one(obj) == {
        "a": {"b": {"c": 1}},
        "x__y": 2,
    }
    assert pipeline({"kind": "FlattenHierarchy", "add_prefix": False}).one(obj) == {"c": 1, "y": 2}


# ---------------------------------------------------------------- Rename, Drop, Select


def test_rename_drop_select() -> None:
    obj = {"a": 1, "b": 2, "c": 3}
    assert pipeline({"kind": "Rename", "fields": {"a": "x", "zz": "y"}}).one(obj) == {
        "x": 1,
        "b": 2,
        "c": 3,
    }
    assert pipeline({"kind": "Drop", "fields": ["a", "zz"]}).one(obj) == {"b": 2, "c": 3}
    assert pipeline({"kind": "Select", "fields": ["c", "a", "zz"]}).one(obj) == {"c": 3, "a": 1}
    assert obj == {"a": 1, "b": 2, "c": 3}  # inputs are never changed


# ---------------------------------------------------------------- Map


def test_map_applies_an_adapter_to_each_element() -> None:
    run = pipeline(
        {
            "kind": "Map",
            "collections": ["choices"],
            "adapter": {"kind": "TransformJSON", "template": {"text": "$.message.content"}},
        }
    )
    assert run.one(
        {"id": 1, "choices": [{"message": {"content": "a"}}, {"message": {"content": "b"}}]}
    ) == {
        "id": 1,
        "choices": [{"text": "a"}, {"text": "b"}],
    }


def test_map_with_a_one_to_many_adapter_and_errors() -> None:
    run = pipeline(
        {
            "kind": "Map",
            "collections": ["xs"],
            "adapter": {"kind": "ExplodeCollections", "collections": ["v"]},
        }
    )
    assert run.one({"xs": [{"v": [1, 2]}, {"v": [3]}]}) == {"xs": [{"v": 1}, {"v": 2}, {"v": 3}]}
    with pytest.raises(AdapterError, match=r"xs\[1\] is a int .*expected an object"):
        run.one({"xs": [{"v": [1]}, 5]})
    with pytest.raises(AdapterError, match="field 'xs' is missing, expected a list"):
        run.one({})


# ---------------------------------------------------------------- pipelines


def test_openai_chat_completion_pipeline() -> None:
    request = compile_pipeline(
        _ADAPTERS.validate_python(
            [
                {
                    "kind": "TransformJSON",
                    "template": {
                        "model": "m",
                        "messages": [{"role": "user", "content": "$.prompt"}],
                    },
                }
            ]
        ),
        name="interface.request",
    )
    response = pipeline(
        {"kind": "TransformJSON", "template": {"choices": "$.choices"}},
        {"kind": "ExplodeCollections", "collections": ["choices"]},
        {"kind": "FlattenHierarchy", "add_prefix": False},
        {"kind": "Rename", "fields": {"content": "completion"}},
        {"kind": "Select", "fields": ["completion", "finish_reason"]},
    )
    assert request.one({"prompt": "hi", "_index_": 3}) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }
    answer = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop",
            }
        ],
    }
    assert response.one(answer) == {"completion": "hello", "finish_reason": "stop"}
    assert not response.one_to_one


def test_empty_pipeline_is_identity_and_inputs_must_be_objects() -> None:
    run = compile_pipeline([], name="interface.response")
    assert run.one({"a": 1}) == {"a": 1}
    assert run.one_to_one
    with pytest.raises(
        AdapterError, match="interface.response: expected a JSON object, got a list of 2"
    ):
        run.one([1, 2])  # type: ignore[arg-type]
    with pytest.raises(AdapterError, match="expected a JSON object, got null"):
        pipeline({"kind": "Drop", "fields": ["a"]}).one(None)  # type: ignore[arg-type]
