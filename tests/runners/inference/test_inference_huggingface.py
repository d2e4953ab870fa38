"""The huggingface runner on tiny models the test makes: one in a Hugging Face cache
layout loaded offline through `snapshot_download(repo, revision)`, one from a local path.

torch is slow to import, so both servers start once for the module, in parallel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from inference_support import REPO, Running, launch, model, service

from runners.evaluation import EvaluationConfig, run_evaluation
from runners.inference import free_port, wait_ready

REVISION = "0123456789abcdef0123456789abcdef01234567"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "good", "bad"]


def make_models(root: Path) -> tuple[Path, Path]:
    """A tiny BERT classifier in `<root>/hub` (cache layout) and a tiny GPT-2 in `<root>/gpt`."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
        GPT2Config,
        GPT2LMHeadModel,
    )

    torch.manual_seed(0)
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    repo = root / "hub" / "models--org--tiny-bert"
    snapshot = repo / "snapshots" / REVISION
    bert = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    BertForSequenceClassification(bert).save_pretrained(snapshot)
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)

    gpt = root / "gpt"
    config = GPT2Config(
        vocab_size=len(VOCAB), n_layer=1, n_embd=16, n_head=2, n_positions=64,
        pad_token_id=0, bos_token_id=2, eos_token_id=3,
    )  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(gpt)
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    tokenizer.padding_side = "left"  # decoder-only models pad on the left
    tokenizer.save_pretrained(gpt)
    return root / "hub", gpt


def offline_env(hub: Path) -> dict[str, str]:
    return {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub), "HF_HOME": str(hub.parent / "hf-home")}


CLASSIFIER = service(
    "tiny-classifier",
    {"kind": "huggingface", "task": "text-classification"},
    {"label": "string", "score": "float64"},
    request={"inputs": "$.text"},
    batching=True,
)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Running, Path]]:
    root = tmp_path_factory.mktemp("hf")
    hub, gpt = make_models(root)
    env = offline_env(hub)
    classifier = launch(
        root,
        {
            "service": CLASSIFIER,
            "model": model({"huggingface": {"repo": "org/tiny-bert", "revision": REVISION}}),
        },
        env=env,
        ready_timeout=None,
    )
    generator = launch(
        root,
        {
            "service": service(
                "tiny-gpt",
                {
                    "kind": "huggingface",
                    "task": "text-generation",
                    "device": "cpu",
                    "generate_kwargs": {"max_new_tokens": 3, "do_sample": False},
                },
                {"generated_text": "string"},
            ),
            "model": model({"path": "models/gpt"}),
            "model_dir": str(gpt),
        },
        env=env,
        ready_timeout=None,
    )
    try:
        for running in (classifier, generator):
            wait_ready(running.base_url, 120, running.process, log=running.log)
        yield classifier, generator, hub
    finally:
        classifier.stop()
        generator.stop()


def test_text_classification_from_the_offline_cache(servers: tuple[Running, Running, Path]) -> None:
    url = servers[0].base_url
    assert (
        "transformers text-classification pipeline of org/tiny-bert@0123456789ab"
        in servers[0].log.read_text()
    )
    single = httpx.post(f"{url}/predict", json={"inputs": "hello world"}).json()
    assert single["label"] in ("negative", "positive") and 0.0 <= single["score"] <= 1.0
    batch = httpx.post(f"{url}/predict", json=[{"inputs": "good"}, {"inputs": "bad bad"}]).json()
    assert len(batch) == 2 and all(set(item) == {"label", "score"} for item in batch)
    every = httpx.post(
        f"{url}/predict", json={"inputs": "good", "parameters": {"top_k": None}}
    ).json()
    assert sorted(item["label"] for item in every["labels"]) == ["negative", "positive"]
    assert sum(item["score"] for item in every["labels"]) == pytest.approx(1.0, abs=1e-5)


def test_huggingface_bad_requests(servers: tuple[Running, Running, Path]) -> None:
    answer = httpx.post(f"{servers[0].base_url}/predict", json={"text": "hello"})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": 'request must be {"inputs": "<text>"} (a string field "inputs")'
    }


def test_text_generation_from_a_local_path(servers: tuple[Running, Running, Path]) -> None:
    url = servers[1].base_url
    single = httpx.post(f"{url}/predict", json={"inputs": "hello world"}).json()
    assert isinstance(single["generated_text"], str) and single["generated_text"].startswith(
        "hello world"
    )
    batch = httpx.post(
        f"{url}/predict", json=[{"inputs": "good"}, {"inputs": "bad good bad"}]
    ).json()
    assert [
        item["generated_text"].split()[: len(p.split())]
        for item, p in zip(batch, ["good", "bad good bad"], strict=True)
    ] == [
        ["good"],
        ["bad", "good", "bad"],
    ]
    several = httpx.post(
        f"{url}/predict",
        json={"inputs": "hello", "parameters": {"do_sample": True, "num_return_sequences": 2}},
    ).json()
    assert isinstance(several["generated_text"], list) and len(several["generated_text"]) == 2


def test_evaluation_through_the_classifier(
    servers: tuple[Running, Running, Path], tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    texts = ["hello", "world", "good", "bad", "hello good"] * 4
    pq.write_table(
        pa.table({"_index_": pa.array(range(len(texts)), pa.int64()), "text": texts}),
        dataset / "part-000000.parquet",
    )
    config = EvaluationConfig.model_validate(
        {
            "evaluation": {
                "kind": "Evaluation",
                "name": "tiny",
                "spec": {
                    "service": "tiny-classifier",
                    "dataset": "d",
                    "batch_size": 4,
                    "concurrency": 2,
                },
            },
            "service": CLASSIFIER,
            "base_url": servers[0].base_url,
            "dataset_uri": str(dataset),
            "output_uri": str(tmp_path / "out"),
            "progress": False,
        }
    )
    result = run_evaluation(config)
    assert (result.status, result.rows, result.errors, result.requests) == ("complete", 20, 0, 5)
    table = pq.read_table(tmp_path / "out").sort_by("_index_")
    assert table.column("_index_").to_pylist() == list(range(20))
    assert set(table.column("label").to_pylist()) <= {"negative", "positive"}


def test_revision_missing_from_the_offline_cache(
    servers: tuple[Running, Running, Path], tmp_path: Path
) -> None:
    missing = "f" * 40
    path = tmp_path / "server.json"
    path.write_text(
        json.dumps(
            {
                "service": CLASSIFIER,
                "model": model({"huggingface": {"repo": "org/tiny-bert", "revision": missing}}),
                "port": free_port(),
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "runners.inference", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **offline_env(servers[2])},
    )
    assert done.returncode == 1
    assert (
        f"error: cannot get model org/tiny-bert@{missing} (HF_HUB_OFFLINE is set: is it in the cache?)"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
