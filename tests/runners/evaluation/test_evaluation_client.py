"""The evaluation client against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from evaluation_support import (
    ThreadServer,
    assert_exactly_once,
    config,
    echo,
    json_response,
    read_output,
    service,
    write_dataset,
)

import runners.evaluation
from runners.adapters import AdapterError
from runners.evaluation import EvaluationConfig, infer_row, parse_retry_after, run_evaluation
from schemas import EvaluationError, InferenceError, InferenceService

REPO = Path(__file__).resolve().parents[3]


def test_public_api() -> None:
    assert sorted(runners.evaluation.__all__) == sorted(
        n for n in dir(runners.evaluation) if not n.startswith("_")
    )


def test_every_row_and_replication_exactly_once(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 60, parts=3)
    with ThreadServer(echo) as server:
        result = run_evaluation(
            config(server.url, dataset, tmp_path / "out", replications=3, concurrency=8)
        )
    assert (result.status, result.rows, result.errors, result.requests, result.retries) == (
        "complete",
        180,
        0,
        180,
        0,
    )
    assert (
        result.resumed_rows == 0
        and result.in_flight_s > 0
        and result.duration_s >= result.in_flight_s
    )
    rows = read_output(tmp_path / "out")
    assert_exactly_once(rows, range(60), 3)
    assert all(r["score"] == r["_index_"] / 2 and r["label"] == f"row-{r['_index_']}" for r in rows)
    assert all(r["_error_"] is None and r["_error_type_"] is None for r in rows)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name != "_digests"] == [
        "part-0-000000.parquet"
    ]


def test_output_schema_and_large_row_groups(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    dataset = write_dataset(tmp_path / "d", 30)
    with ThreadServer(echo) as server:
        run_evaluation(config(server.url, dataset, tmp_path / "out", part_rows=25))
    files = sorted((tmp_path / "out").glob("*.parquet"))
    assert [f.name for f in files] == ["part-0-000000.parquet", "part-0-000001.parquet"]
    metadata = pq.ParquetFile(files[0]).metadata
    assert (metadata.num_row_groups, metadata.num_rows) == (1, 25)
    assert str(pq.read_schema(files[0])) == (
        "_index_: int64 not null\n_replication_: int32 not null\nscore: double\nlabel: string\n"
        "_error_: string\n_error_type_: string"
    )


def test_batching_sends_lists(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 23)
    with ThreadServer(echo) as server:
        result = run_evaluation(
            config(
                server.url,
                dataset,
                tmp_path / "out",
                service_spec=service(batching=True),
                batch_size=5,
                replications=2,
            )
        )
    assert (result.status, result.rows, result.requests) == ("complete", 46, 10)
    rows = read_output(tmp_path / "out")
    assert_exactly_once(rows, range(23), 2)
    assert all(r["score"] == r["_index_"] / 2 for r in rows)


def test_batch_size_needs_interface_batching(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 3)
    with pytest.raises(
        EvaluationError,
        match="batch_size is 4 but InferenceService/svc does not set interface.batching",
    ):
        run_evaluation(config("http://127.0.0.1:9", dataset, tmp_path / "out", batch_size=4))


def test_a_batch_answer_of_the_wrong_length_is_a_row_error(tmp_path: Path) -> None:
    async def long(request: web.Request) -> web.Response:
        return json_response([{"score": 1.0}] * (len(orjson.loads(await request.read())) + 1))

    dataset = write_dataset(tmp_path / "d", 4)
    with ThreadServer(long) as server:
        result = run_evaluation(
            config(
                server.url,
                dataset,
                tmp_path / "out",
                service_spec=service(batching=True),
                batch_size=2,
                errors={"max_error_fraction": 1.0},
            )
        )
    assert (result.rows, result.errors, result.status) == (4, 4, "complete")
    # Split down to single rows (the answer might have come from one bad row), still wrong.
    assert {r["_error_"] for r in read_output(tmp_path / "out")} == {
        "expected a JSON list of 1 results, got a list of 2"
    }


def test_shards_are_disjoint_and_cover_the_dataset(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 50, parts=2)
    with ThreadServer(echo) as server:
        results = [
            run_evaluation(
                config(server.url, dataset, tmp_path / "out", shard_index=i, shard_count=3)
            )
            for i in range(3)
        ]
    assert [r.rows for r in results] == [17, 17, 16]
    rows = read_output(tmp_path / "out")
    assert_exactly_once(rows, range(50))
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != "_digests")
    assert names == ["part-0-000000.parquet", "part-1-000000.parquet", "part-2-000000.parquet"]
    import pyarrow.parquet as pq

    shard1 = pq.read_table(tmp_path / "out" / "part-1-000000.parquet").column("_index_").to_pylist()
    assert sorted(shard1) == list(range(1, 50, 3))  # rows are written as they are answered


def test_adapter_schema_and_http_errors_are_row_errors(tmp_path: Path) -> None:
    async def varied(request: web.Request) -> web.Response:
        i = orjson.loads(await request.read())["i"]
        if i == 1:
            return json_response({"result": {"p": "not a number"}})  # does not fit float64
        if i == 2:
            return json_response({"other": 1})  # the response template's path is missing
        if i == 3:
            return json_response({"error": "prompt too long"}, status=400)  # not retried
        if i == 4:
            return json_response({"result": {}})  # a missing output column is null
        return json_response({"result": {"p": i / 10}})

    spec = service(
        {"score": "float64"},
        request={"i": "$._index_", "first": "$.tags[0]"},
        response={"score": "$.result.p"},
    )
    spec["spec"]["interface"]["response"] = [
        {"kind": "TransformJSON", "template": {"result": "$.result"}},
        {"kind": "FlattenHierarchy", "add_prefix": False},
        {"kind": "Rename", "fields": {"p": "score"}},
    ]
    tags = [["a"], ["b"], ["c"], ["d"], ["e"], [], ["g"]]
    dataset = write_dataset(tmp_path / "d", 7, tags=tags)
    with ThreadServer(varied) as server:
        result = run_evaluation(
            config(
                server.url,
                dataset,
                tmp_path / "out",
                service_spec=spec,
                errors={"max_error_fraction": 1.0},
            )
        )
        assert server.requests == 6  # row 5's request could not be built: nothing sent
    rows = {r["_index_"]: r for r in read_output(tmp_path / "out")}
    assert (result.rows, result.errors, result.status) == (7, 4, "complete")
    assert rows[0]["score"] == 0.0 and rows[6]["score"] == pytest.approx(0.6)
    assert rows[4] == {
        "_index_": 4,
        "_replication_": 0,
        "score": None,
        "_error_": None,
        "_error_type_": None,
    }
    assert rows[1]["_error_type_"] == "schema"
    assert (
        rows[1]["_error_"]
        == "output column 'score': 'not a number' does not fit the declared type double"
    )
    assert rows[2]["_error_type_"] == "adapter"
    assert rows[2]["_error_"] == (
        "interface.response.0 (TransformJSON).template.result: path '$.result' matched nothing: "
        "$ is an object with keys 'other', with no key 'result'"
    )
    assert (rows[3]["_error_type_"], rows[3]["_error_"]) == (
        "http-400",
        "HTTP 400: prompt too long",
    )
    assert rows[5]["_error_type_"] == "adapter"
    assert "path '$.tags[0]' matched nothing: $.tags is an empty list" in rows[5]["_error_"]


def test_abort_on_the_first_failed_row(tmp_path: Path) -> None:
    async def fail_ten(request: web.Request) -> web.Response:
        i = orjson.loads(await request.read())["i"]
        return json_response({"error": "bad"}, status=422) if i == 10 else await echo_value(i)

    dataset = write_dataset(tmp_path / "d", 40)
    with ThreadServer(fail_ten) as server:
        result = run_evaluation(
            config(
                server.url, dataset, tmp_path / "out", concurrency=1, errors={"on_error": "abort"}
            )
        )
    assert result.status == "failed"
    assert result.message == (
        "row _index_=10 _replication_=0 failed (http-422: HTTP 422: bad) and errors.on_error is 'abort'"
    )
    rows = read_output(tmp_path / "out")
    assert [r["_index_"] for r in rows] == list(range(10))  # the rows before it are kept
    assert result.rows == 10 and result.errors == 0


async def echo_value(i: int) -> web.Response:
    return json_response({"score": i / 2, "label": f"row-{i}"})


def test_max_error_fraction_fails_after_writing_every_row(tmp_path: Path) -> None:
    async def third_fails(request: web.Request) -> web.Response:
        i = orjson.loads(await request.read())["i"]
        return json_response({"error": "no"}, status=404) if i % 3 == 0 else await echo_value(i)

    dataset = write_dataset(tmp_path / "d", 30)
    with ThreadServer(third_fails) as server:
        result = run_evaluation(
            config(server.url, dataset, tmp_path / "out", errors={"max_error_fraction": 0.2})
        )
    assert result.status == "failed"
    assert result.message == (
        "10 of 30 rows (33.3%) failed, more than errors.max_error_fraction (0.2); every row is written"
    )
    assert_exactly_once(read_output(tmp_path / "out"), range(30))


def test_total_timeout_stops_and_a_rerun_resumes(tmp_path: Path) -> None:
    import asyncio

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return await echo(request)

    dataset = write_dataset(tmp_path / "d", 100)
    with ThreadServer(slow) as server:
        first = run_evaluation(
            config(server.url, dataset, tmp_path / "out", concurrency=2, timeouts={"total": 0.6})
        )
        assert first.status == "failed"
        assert first.message is not None and first.message.startswith(
            "the evaluation ran past timeouts.total (0.6 s)"
        )
        assert 0 < first.rows < 100
        second = run_evaluation(config(server.url, dataset, tmp_path / "out", concurrency=16))
    assert (second.status, second.rows, second.resumed_rows) == ("complete", 100, first.rows)
    assert second.requests == 100 - first.rows
    assert_exactly_once(read_output(tmp_path / "out"), range(100))


def test_api_key_from_the_environment_is_sent_and_never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def guarded(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer s3cret-key":
            return json_response({"error": "unauthorized"}, status=401)
        return await echo(request)

    dataset = write_dataset(tmp_path / "d", 5)
    monkeypatch.setenv("TEST_API_KEY", "s3cret-key")
    caplog.set_level(logging.DEBUG)
    with ThreadServer(guarded) as server:
        ok = run_evaluation(
            config(server.url, dataset, tmp_path / "ok", api_key_env="TEST_API_KEY")
        )
        denied = run_evaluation(config(server.url, dataset, tmp_path / "no"))
    assert (ok.errors, denied.errors) == (0, 5)
    assert {r["_error_type_"] for r in read_output(tmp_path / "no")} == {"http-401"}
    assert "s3cret-key" not in caplog.text
    monkeypatch.delenv("TEST_API_KEY")
    with pytest.raises(
        EvaluationError, match="environment variable TEST_API_KEY \\(api_key_env\\) is not set"
    ):
        run_evaluation(config(server.url, dataset, tmp_path / "x", api_key_env="TEST_API_KEY"))


def test_unreachable_service_records_connection_errors(tmp_path: Path) -> None:
    from runners.inference import free_port

    dataset = write_dataset(tmp_path / "d", 4)
    result = run_evaluation(
        config(
            f"http://127.0.0.1:{free_port()}",
            dataset,
            tmp_path / "out",
            retries={"max_attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.02},
        )
    )
    assert (result.rows, result.errors, result.requests, result.retries) == (4, 4, 8, 4)
    rows = read_output(tmp_path / "out")
    assert {r["_error_type_"] for r in rows} == {"connect"}
    assert all(r["_error_"].endswith("(after 2 attempts)") for r in rows)


def test_missing_dataset_is_a_store_error(tmp_path: Path) -> None:
    from schemas import StoreError

    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="holds no data parts"):
        run_evaluation(config("http://127.0.0.1:9", tmp_path / "empty", tmp_path / "out"))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="shard_index 3 is out of range for shard_count 3"):
        config("http://127.0.0.1:9", Path("/d"), Path("/o"), shard_index=3, shard_count=3)
    with pytest.raises(ValueError, match="extra"):
        EvaluationConfig.model_validate(
            {**config("http://x", Path("/d"), Path("/o")).model_dump(), "nope": 1}
        )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-2", 0.0),
        ("Thu, 26 Nov 2026 00:00:10 GMT", 10.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime("Thu, 26 Nov 2026 00:00:00 GMT").timestamp()
    assert parse_retry_after(header, now=now) == seconds


def test_progress_bar_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = write_dataset(tmp_path / "d", 10)
    with ThreadServer(echo) as server:
        run_evaluation(config(server.url, dataset, tmp_path / "out", progress=True))
    err = capsys.readouterr().err
    assert "Evaluation/ev" in err and "10/10" in err and "errors" in err


# ------------------------------------------------------------------ infer_row


def test_infer_row(tmp_path: Path) -> None:
    svc = InferenceService.model_validate(service())
    with ThreadServer(echo) as server:
        assert infer_row(svc, server.url, {"_index_": 4, "text": "x"}) == {
            "score": 2.0,
            "label": "row-4",
        }
        with pytest.raises(AdapterError, match="path '\\$._index_' matched nothing"):
            infer_row(svc, server.url, {"text": "x"})
    with pytest.raises(
        InferenceError, match="InferenceService/svc: cannot reach http://127.0.0.1:"
    ):
        infer_row(svc, server.url, {"_index_": 1})


def test_infer_row_reports_http_errors_and_sends_the_key() -> None:
    async def guarded(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer k":
            return json_response({"error": "unauthorized"}, status=401)
        return await echo(request)

    svc = InferenceService.model_validate(service())
    with ThreadServer(guarded) as server:
        assert infer_row(svc, server.url, {"_index_": 2}, api_key="k")["score"] == 1.0
        with pytest.raises(InferenceError, match="answered HTTP 401: unauthorized"):
            infer_row(svc, server.url, {"_index_": 2})


# ------------------------------------------------------------------ entry point


def run_main(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runners.evaluation", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_entry_point_shard_and_result(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 10)
    with ThreadServer(echo) as server:
        cfg = tmp_path / "cfg.json"
        cfg.write_text(config(server.url, dataset, tmp_path / "out").model_dump_json())
        done = run_main([str(cfg), "--shard", "1/2", "--result", str(tmp_path / "r.json")])
    assert done.returncode == 0, done.stderr
    assert "evaluation complete: 5 rows (0 resumed), 0 errors, 5 requests" in done.stderr
    result: dict[str, Any] = json.loads((tmp_path / "r.json").read_text())
    assert (result["rows"], result["status"]) == (5, "complete")
    assert [r["_index_"] for r in read_output(tmp_path / "out")] == [1, 3, 5, 7, 9]


def test_entry_point_exit_codes(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 3)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"evaluation": {}}))
    invalid = run_main([str(cfg)])
    assert invalid.returncode == 2
    assert "not a valid EvaluationConfig (7 errors):" in invalid.stderr
    assert "\n  evaluation.kind: Field required\n" in invalid.stderr
    cfg.write_text(config("http://127.0.0.1:9", dataset, tmp_path / "o").model_dump_json())
    bad_shard = run_main([str(cfg), "--shard", "2"])
    assert bad_shard.returncode == 2 and "expected i/n, got '2'" in bad_shard.stderr
    cfg.write_text(
        config(
            "http://127.0.0.1:9",
            dataset,
            tmp_path / "o",
            errors={"on_error": "abort"},
            retries={"max_attempts": 1},
        ).model_dump_json()
    )
    failed = run_main([str(cfg)])
    assert failed.returncode == 1
    assert "error: row _index_=" in failed.stderr and "errors.on_error is 'abort'" in failed.stderr
    for done in (invalid, bad_shard, failed):
        assert "Traceback" not in done.stderr
