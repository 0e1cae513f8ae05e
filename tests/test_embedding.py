"""Tests of the embedders that need no model: HashEmbedder, model names, token counts."""

from __future__ import annotations

import numpy as np
import pytest

from tpd_qa.embedding import (
    DEFAULT_MODEL,
    Embedder,
    HashEmbedder,
    canonical_model_name,
    make_embedder,
)
from tpd_qa.errors import ConfigError
from tpd_qa.text import estimate_tokens


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_hash_embedder_gives_unit_float32_rows() -> None:
    embedder = HashEmbedder(32)
    vectors = embedder.embed_batch(["fusion energy research", "lunar rovers", ""])
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors.flags["C_CONTIGUOUS"]
    assert embedder.embed_batch([]).shape == (0, 32)


def test_hash_embedder_is_deterministic_and_ignores_case() -> None:
    first = HashEmbedder(64).embed_batch(["The Tokamak in Naka"])
    again = HashEmbedder(64).embed_batch(["the tokamak in naka"])
    assert np.array_equal(first, again)
    assert not np.array_equal(first, HashEmbedder(64).embed_batch(["the tokamak in mito"]))


def test_hash_embedder_puts_shared_words_close() -> None:
    embedder = HashEmbedder(256)
    query, same, near, far = embedder.embed_batch(
        [
            "superconducting tokamak magnets",
            "Magnets, superconducting tokamak!",
            "tokamak magnets are superconducting",
            "lunar rover",
        ]
    )
    assert cosine(query, same) == pytest.approx(1.0)  # same words, other order and case
    assert cosine(query, near) > cosine(query, far)


def test_text_without_words_gets_a_fixed_vector() -> None:
    vectors = HashEmbedder(8).embed_batch(["", "!!! ..."])
    assert vectors[0].tolist() == [1.0] + [0.0] * 7
    assert np.array_equal(vectors[0], vectors[1])


def test_hash_embedder_describes_itself() -> None:
    embedder = HashEmbedder(48, max_tokens=100)
    assert (embedder.name, embedder.dimension, embedder.max_tokens) == ("hash:48", 48, 100)
    assert isinstance(embedder, Embedder)
    with pytest.raises(ConfigError):
        HashEmbedder(1)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("word", 2),
        ("one two three", 4),
        ("a b c d e f g h i j", 13),
        ("  spaced \n out ", 3),
    ],
)
def test_token_count_is_the_shared_estimate(text: str, tokens: int) -> None:
    assert HashEmbedder().count_tokens(text) == tokens == estimate_tokens(text)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (None, DEFAULT_MODEL),
        ("", DEFAULT_MODEL),
        ("default", DEFAULT_MODEL),
        ("  Default ", DEFAULT_MODEL),
        ("all-MiniLM-L6-v2", DEFAULT_MODEL),
        (DEFAULT_MODEL.upper(), DEFAULT_MODEL),
        ("hash", "hash:64"),
        ("hash:32", "hash:32"),
        ("/models/my-encoder", "/models/my-encoder"),
        (" org/other-model ", "org/other-model"),
    ],
)
def test_canonical_model_name(given: str | None, canonical: str) -> None:
    assert canonical_model_name(given) == canonical


@pytest.mark.parametrize("name", ["hash", "hash:16", "hash:128"])
def test_make_embedder_builds_hash_embedders_by_name(name: str) -> None:
    embedder = make_embedder(name)
    assert isinstance(embedder, HashEmbedder)
    assert embedder.name == canonical_model_name(name)


@pytest.mark.parametrize("name", ["hash:x", "hash:1", "hash:-4"])
def test_make_embedder_refuses_bad_hash_specs(name: str) -> None:
    with pytest.raises(ConfigError):
        make_embedder(name)
