"""The python runner: a callable from an installed package, and from a Module directory."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from inference_support import Running, model, service

import runners.inference
from runners.inference import ServerConfig


def test_public_api() -> None:
    assert sorted(runners.inference.__all__) == sorted(
        n for n in dir(runners.inference) if not n.startswith("_")
    )


def test_server_config_forbids_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        ServerConfig.model_validate(
            {
                "service": service("s", {"kind": "python"}, {"score": "float64"}),
                "port": 1,
                "workers": 2,
            }
        )


@pytest.fixture
def profanity(start_server: Callable[..., Running]) -> Running:
    return start_server(
        {
            "service": service("filter", {"kind": "python"}, {"score": "float64"}, batching=True),
            "model": model(
                {
                    "python": {
                        "callable": "profanity_check:predict_prob",
                        "package": "alt-profanity-check==1.9.1",
                        "argument": "text",
                        "output": "score",
                    }
                }
            ),
        }
    )


def test_profanity_check_single_and_batch(profanity: Running) -> None:
    url = profanity.base_url
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    single = httpx.post(f"{url}/predict", json={"text": "you are a fucking idiot"})
    assert single.status_code == 200
    assert single.headers["content-type"] == "application/json"
    assert single.json()["score"] > 0.9
    batch = httpx.post(f"{url}/predict", json=[{"text": "have a nice day"}, {"text": "shit"}])
    scores = [item["score"] for item in batch.json()]
    assert len(scores) == 2 and scores[0] < 0.5 < scores[1]
    assert all(isinstance(s, float) for s in scores)  # numpy float64 became JSON numbers
    assert httpx.post(f"{url}/predict", json=[]).json() == []


def test_bad_requests_get_400_with_a_message(profanity: Running) -> None:
    url = profanity.base_url
    missing = httpx.post(f"{url}/predict", json={"txt": "x"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "request has no field 'text' (the model's argument)"}
    garbage = httpx.post(f"{url}/predict", content=b"{not json")
    assert garbage.status_code == 400
    assert garbage.json()["error"].startswith("the request body is not JSON")
    assert httpx.get(f"{url}/nope").status_code == 404
    assert httpx.get(f"{url}/predict").status_code == 405


MODULE = textwrap.dedent(
    """
    import time
    import numpy as np

    CALLS = []

    def predict(texts):
        if "boom" in texts:
            raise ValueError("cannot score boom")
        time.sleep(0.05)  # so concurrent requests gather into the next batch
        CALLS.append(len(texts))
        return np.array([len(t) for t in texts], dtype=np.int32)

    def describe(requests):
        return [{"length": np.int64(len(r["text"])), "batch": len(requests), "calls": list(CALLS)}
                for r in requests]
    """
)


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mymodule"
    directory.mkdir()
    (directory / "lengths.py").write_text(MODULE)
    return directory


def test_callable_from_a_module_with_numpy_outputs(
    start_server: Callable[..., Running], module_dir: Path
) -> None:
    server = start_server(
        {
            "service": service("lengths", {"kind": "python"}, {"n": "int64"}, endpoint="/v1/score"),
            "model": model(
                {
                    "python": {
                        "callable": "lengths:predict",
                        "module": "mod",
                        "argument": "text",
                        "output": "n",
                    }
                }
            ),
            "python_paths": [str(module_dir)],
        }
    )
    assert httpx.post(f"{server.base_url}/v1/score", json={"text": "abcd"}).json() == {"n": 4}
    assert httpx.post(f"{server.base_url}/predict", json={"text": "abcd"}).status_code == 404

    # Concurrent requests are merged into model calls; a failing one fails alone.
    texts = [f"{'x' * i}" for i in range(1, 25)] + ["boom"]
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(
            pool.map(
                lambda t: httpx.post(f"{server.base_url}/v1/score", json={"text": t}, timeout=30),
                texts,
            )
        )
    assert [a.json()["n"] for a in answers[:-1]] == list(range(1, 25))
    assert answers[-1].status_code == 500
    assert answers[-1].json() == {"error": "the model raised ValueError: cannot score boom"}


def test_whole_requests_without_argument_or_output(
    start_server: Callable[..., Running], module_dir: Path
) -> None:
    server = start_server(
        {
            "service": service("describe", {"kind": "python"}, {"length": "int64"}),
            "model": model({"python": {"callable": "lengths:describe"}}),
            "python_paths": [str(module_dir)],
        }
    )
    answer = httpx.post(f"{server.base_url}/predict", json=[{"text": "ab"}, {"text": "abc"}]).json()
    assert [(a["length"], a["batch"]) for a in answer] == [(2, 2), (3, 2)]


def test_unimportable_callable_exits_with_a_clear_error(
    start_server: Callable[..., Running], module_dir: Path
) -> None:
    server = start_server(
        {
            "service": service("s", {"kind": "python"}, {"n": "int64"}),
            "model": model({"python": {"callable": "lengths:nope", "argument": "text"}}),
            "python_paths": [str(module_dir)],
        },
        ready_timeout=None,
    )
    assert server.process.wait(30) == 1
    log = server.log.read_text()
    assert "error: cannot load 'lengths:nope': AttributeError" in log
    assert "Traceback" not in log
    assert json.loads(json.dumps({"ok": True}))  # the log is text, not a crash dump
