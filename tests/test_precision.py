"""Precision selection (deterministic, faked CPU flags) and fast-path quality (real model)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tpd_qa.errors import ConfigError
from tpd_qa.precision import (
    ENV_VAR,
    MEASURED_COSINE,
    PRECISIONS,
    QUALITY_THRESHOLD,
    CpuFeatures,
    Precision,
    available_precisions,
    choose_precision,
    normalise_precision,
)

ZEN3 = CpuFeatures.from_flags(["sse4_2", "avx", "avx2", "fma", "f16c"])  # this machine's kind
SAPPHIRE = CpuFeatures.from_flags(["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"])
OLD = CpuFeatures.from_flags(["sse4_2", "avx"])
EVERYTHING = list(PRECISIONS)


def test_cpu_flags_are_read_as_features() -> None:
    assert SAPPHIRE.native_bf16 and SAPPHIRE.int8_dot and SAPPHIRE.avx2
    assert not ZEN3.native_bf16 and not ZEN3.int8_dot and ZEN3.avx2
    assert CpuFeatures.from_flags(["AVX_VNNI"]).int8_dot
    assert not OLD.avx2


def test_availability_follows_cpu_and_installation() -> None:
    assert available_precisions(OLD, torch_int8=True, onnxruntime=True) == ["float32"]
    assert available_precisions(ZEN3, torch_int8=True, onnxruntime=False) == ["float32", "int8"]
    assert available_precisions(ZEN3, torch_int8=True, onnxruntime=True) == [
        "float32",
        "int8",
        "onnx-int8",
        "onnx-float32",
    ]
    assert "bf16" in available_precisions(SAPPHIRE, torch_int8=False, onnxruntime=False)
    assert "bf16" not in available_precisions(ZEN3, torch_int8=True, onnxruntime=True)


def test_auto_picks_the_fastest_that_passes_the_quality_bar() -> None:
    env: dict[str, str] = {}
    assert choose_precision(cpu=ZEN3, available=EVERYTHING, env=env) == "onnx-int8"
    assert choose_precision(cpu=SAPPHIRE, available=EVERYTHING, env=env) == "bf16"
    assert choose_precision(cpu=SAPPHIRE, available=["float32", "int8"], env=env) == "float32"
    # without onnxruntime the choice skips it; torch int8 stays below the bar (0.981)
    assert choose_precision(cpu=ZEN3, available=["float32", "int8"], env=env) == "float32"
    assert choose_precision(cpu=OLD, available=["float32"], env=env) == "float32"
    for cpu in (ZEN3, SAPPHIRE, OLD):
        chosen = choose_precision(cpu=cpu, available=EVERYTHING, env=env)
        assert MEASURED_COSINE[chosen] >= QUALITY_THRESHOLD


def test_a_precision_below_the_threshold_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    import tpd_qa.precision as precision

    monkeypatch.setitem(precision.MEASURED_COSINE, "onnx-int8", 0.95)
    monkeypatch.setitem(precision.MEASURED_COSINE, "int8", 0.98)
    assert choose_precision(cpu=ZEN3, available=EVERYTHING, env={}) == "float32"
    monkeypatch.setitem(precision.MEASURED_COSINE, "int8", 0.995)
    assert choose_precision(cpu=ZEN3, available=EVERYTHING, env={}) == "int8"


def test_unmeasured_models_keep_to_float32_and_bf16() -> None:
    assert choose_precision(cpu=ZEN3, available=EVERYTHING, measured_model=False, env={}) == (
        "float32"
    )
    assert choose_precision(cpu=SAPPHIRE, available=EVERYTHING, measured_model=False, env={}) == (
        "bf16"
    )


def test_env_var_and_argument_force_a_precision() -> None:
    assert choose_precision(cpu=ZEN3, available=["float32"], env={ENV_VAR: "onnx-int8"}) == (
        "onnx-int8"
    )
    assert choose_precision("float32", cpu=SAPPHIRE, env={ENV_VAR: "bf16"}) == "float32"
    assert choose_precision("bfloat16", cpu=ZEN3, env={}) == "bf16"
    assert choose_precision(cpu=ZEN3, available=["float32"], env={ENV_VAR: "auto"}) == "float32"
    with pytest.raises(ConfigError, match="unknown precision"):
        choose_precision(cpu=ZEN3, env={ENV_VAR: "fp8"})
    with pytest.raises(ConfigError, match="unknown precision"):
        normalise_precision("half")


def test_questions_run_in_onnx_where_passages_run_in_torch_float() -> None:
    """One short question at a time runs several times faster in ONNX Runtime than in
    torch, so where passages run in torch's float32 or bf16 questions run in
    onnx-float32; the int8 engines, unmeasured models, a machine without onnxruntime and
    a forced precision keep questions in the passages' precision."""
    env: dict[str, str] = {}

    def pick(
        cpu: CpuFeatures, available: Sequence[Precision] = EVERYTHING, measured: bool = True
    ) -> str:
        return choose_precision(
            cpu=cpu, available=available, env=env, queries=True, measured_model=measured
        )

    assert choose_precision(cpu=SAPPHIRE, available=EVERYTHING, env=env) == "bf16"
    assert pick(SAPPHIRE) == "onnx-float32"
    assert pick(ZEN3) == "onnx-int8"  # as its passages
    assert pick(ZEN3, ["float32", "int8", "onnx-float32"]) == "onnx-float32"
    assert pick(SAPPHIRE, ["float32", "bf16"]) == "bf16"
    assert pick(OLD, ["float32"]) == "float32"
    assert pick(SAPPHIRE, measured=False) == "bf16"
    assert choose_precision("bf16", cpu=SAPPHIRE, env=env, queries=True) == "bf16"
    assert choose_precision(cpu=SAPPHIRE, env={ENV_VAR: "float32"}, queries=True) == "float32"
    assert normalise_precision("onnx-fp32") == "onnx-float32"


def test_cpu_features_of_this_machine_parse() -> None:
    from tpd_qa.precision import cpu_features

    features = cpu_features()
    text = (
        Path("/proc/cpuinfo").read_text(errors="ignore") if Path("/proc/cpuinfo").exists() else ""
    )
    assert features.avx2 == (" avx2" in text)


# -- quality of the chosen fast path against float32, real model --------------------------

SCIFACT = (
    Path(
        os.environ.get("TPD_QA_SCIFACT")
        or Path(__file__).resolve().parents[2] / "shared/data/scifact"
    )
    / "corpus.jsonl"
)


def _passages(count: int) -> list[str]:
    """SciFact abstracts when present (cut in ~600-char passages), else the seed document."""
    texts: list[str] = []
    if SCIFACT.exists():
        with SCIFACT.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                body = record["text"]
                texts += [
                    record["title"] + "\n" + body[i : i + 600] for i in range(0, len(body), 600)
                ]
                if len(texts) >= count:
                    break
    else:
        seed = Path(__file__).resolve().parents[1] / "corpus"
        body = " ".join(p.read_text(encoding="utf-8") for p in sorted(seed.glob("*.txt")))
        texts = [body[i : i + 600] for i in range(0, len(body), 600)]
    return texts[:count]


@pytest.mark.model
def test_auto_fast_path_matches_float32(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tpd_qa.embedding import SentenceTransformerEmbedder

    monkeypatch.setenv("TPD_QA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv(ENV_VAR, raising=False)
    texts = _passages(64)
    fast = SentenceTransformerEmbedder()
    reference = SentenceTransformerEmbedder(precision="float32")
    cosine = np.sum(fast.embed_batch(texts) * reference.embed_batch(texts), axis=1)
    assert cosine.mean() >= QUALITY_THRESHOLD, (fast.precision, cosine.mean())
    assert cosine.min() >= 0.95, (fast.precision, cosine.min())
    assert fast.name == reference.name  # precision does not change the index's model name
    # order of the inputs does not matter (length-sorted batching puts rows back); at low
    # precision a different batch mix pads (and, for int8, scales activations) differently:
    # the same text in another batch stays within the quality threshold of itself
    again = fast.embed_batch(texts[::-1])[::-1]
    assert np.sum(again * fast.embed_batch(texts), axis=1).min() >= QUALITY_THRESHOLD
    # Dynamic int8 quantises each batch's activations with one scale, so a text's vector
    # depends a little on its batch-mates: embedded alone it stays as close as to float32.
    alone = np.concatenate([fast.embed_batch([text]) for text in texts[:8]])
    together = fast.embed_batch(texts[:8])
    assert np.sum(alone * together, axis=1).min() >= QUALITY_THRESHOLD


@pytest.mark.model
def test_cached_onnx_export_loads_without_torch_and_gives_the_same_vectors(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the int8 export exists, the bundled model starts without importing torch or
    sentence-transformers (the ``tokenizers`` library reads tokenizer.json), and its
    word-pieces, token counts and vectors are exactly those of the full path."""
    import subprocess
    import sys

    from tpd_qa.embedding import SentenceTransformerEmbedder

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("TPD_QA_CACHE_DIR", str(cache))
    full = SentenceTransformerEmbedder(precision="onnx-int8")  # no export yet: makes one
    assert full._model is not None and full._onnx is not None
    light = SentenceTransformerEmbedder(precision="onnx-int8")
    assert light._model is None and light._onnx is not None
    texts = [
        *_passages(40),
        "Which Japanese ministry works on telecommunications?",
        "日米技術繁栄ディール。量子技術の協力を進める。①～",
        "café naïve Zürich — “quotes” … " * 60,  # longer than the window: truncated alike
        "x",
        " \t ",
    ]
    assert np.array_equal(light.embed_batch(texts), full.embed_batch(texts))
    assert [light.count_tokens(t) for t in texts] == [full.count_tokens(t) for t in texts]
    assert (light.dimension, light.max_tokens) == (full.dimension, full.max_tokens)
    probe = (
        "import sys; from tpd_qa.embedding import SentenceTransformerEmbedder as E; "
        "e = E(precision='onnx-int8'); e.embed_batch(['a question']); "
        "print(e._model is None, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    env = {**os.environ, "TPD_QA_CACHE_DIR": str(cache)}
    shown = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert shown.stdout.split() == ["True", "False", "False"], shown.stderr
    # automatic precision: where questions run in ONNX Runtime (any AVX2 CPU with
    # onnxruntime), asking one loads neither torch nor sentence-transformers, even where
    # passages are embedded in torch's bf16 (the export above wrote both ONNX files)
    if choose_precision("auto", env={}, queries=True) in ("onnx-int8", "onnx-float32"):
        probe = (
            "import sys; from tpd_qa.embedding import SentenceTransformerEmbedder as E; "
            "e = E(); e.embed_queries(['a question']); "
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
        )
        env.pop(ENV_VAR, None)
        shown = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        )
        assert shown.stdout.split() == ["False", "False"], shown.stderr


@pytest.mark.model
def test_questions_run_in_their_own_engine_close_to_the_passages_one(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where questions and passages differ in precision, questions run in their own
    engine; each engine opens on first use (asking never opens the passage engine,
    counting tokens and embedding passages never the question engine); the two engines'
    vectors of a text agree, and the model's shape is known before either opens.
    With one precision ``embed_queries`` is ``embed_batch`` itself."""
    import tpd_qa.embedding as embedding
    from tpd_qa.embedding import SentenceTransformerEmbedder, embed_queries

    monkeypatch.setenv("TPD_QA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv(ENV_VAR, raising=False)
    questions = [
        "Which Japanese ministry works on telecommunications?",
        "Does the memorandum commit any money?",
        "How many key areas does the deal name?",
    ]
    forced = SentenceTransformerEmbedder(precision="float32")
    assert forced.query_precision == "float32" and forced._queries is None  # forced: both
    assert np.array_equal(embed_queries(forced, questions), forced.embed_batch(questions))

    def choose(requested: str, *, measured_model: bool, queries: bool = False) -> str:
        if requested != "auto":
            return requested
        return "onnx-float32" if queries else "float32"  # as auto on a bf16 CPU

    monkeypatch.setattr(embedding, "choose_precision", choose)
    split = SentenceTransformerEmbedder()
    assert (split.precision, split.query_precision) == ("float32", "onnx-float32")
    assert split._queries is None and split._model is None  # neither engine open yet
    assert (split.dimension, split.max_tokens) == (forced.dimension, forced.max_tokens)
    asked = np.concatenate([embed_queries(split, [q]) for q in questions])
    engine = split._queries
    assert engine is not None and engine.precision == "onnx-float32"
    assert split._model is None  # asking never opened the passage engine
    embed_queries(split, questions[:1])
    assert split._queries is engine  # opened once
    indexer = SentenceTransformerEmbedder()
    assert [indexer.count_tokens(q) for q in questions] == [
        forced.count_tokens(q) for q in questions
    ]
    passages = indexer.embed_batch(questions)
    assert indexer._model is not None and indexer._queries is None  # indexing: one engine
    assert np.allclose(passages, forced.embed_batch(questions), atol=1e-5)
    cosine = np.sum(asked * passages, axis=1)
    assert cosine.min() >= 0.99999, cosine  # the same float32 arithmetic, another runtime


@pytest.mark.model
def test_the_passage_engine_exports_the_question_engine_from_float32_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a bf16 passage engine writes the question engine's ONNX files first, from
    the float32 weights (before the cast), so the first question loads nothing more."""
    import onnx

    import tpd_qa.embedding as embedding

    monkeypatch.setenv("TPD_QA_CACHE_DIR", str(tmp_path))

    def choose(requested: str, *, measured_model: bool, queries: bool = False) -> str:
        if requested != "auto":
            return requested
        return "onnx-float32" if queries else "bf16"  # auto on an AVX-512 BF16 CPU

    monkeypatch.setattr(embedding, "choose_precision", choose)
    indexer = embedding.SentenceTransformerEmbedder()
    assert not list(tmp_path.rglob("*.onnx"))
    indexer.count_tokens("opens the passage engine")  # no bf16 arithmetic is run
    assert indexer._model is not None and indexer._queries is None
    (exported,) = tmp_path.rglob("model.float32.onnx")
    assert len(list(tmp_path.rglob("model.int8.onnx"))) == 1
    types = {t.data_type for t in onnx.load(str(exported)).graph.initializer}
    assert onnx.TensorProto.BFLOAT16 not in types and onnx.TensorProto.FLOAT in types
    first = list(tmp_path.rglob("*.onnx"))
    mtimes = [p.stat().st_mtime_ns for p in first]
    asked = embedding.embed_queries(indexer, ["Which ministry handles telecoms?"])
    assert indexer._queries is not None and indexer._queries._model is None  # light path
    assert [p.stat().st_mtime_ns for p in first] == mtimes  # nothing exported again
    assert asked.shape == (1, indexer.dimension)
