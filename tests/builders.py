"""The one way tests build an index: the hashing embedder over a corpus folder.

``build_test_index(corpus)`` indexes in memory; with ``index_dir`` the index is also
saved there the way ``tpd-qa index`` saves it (folder claimed, under the rebuild lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tpd_qa.chunking import ChunkerSettings
from tpd_qa.embedding import Embedder, HashEmbedder
from tpd_qa.index import Index, IndexSettings, claim_index_dir, index_lock
from tpd_qa.records import BuildReport

#: The model every test index is built with unless a test says otherwise.
HASH_MODEL = "hash:64"


def hash_settings(
    model: str = HASH_MODEL, *, chunker: ChunkerSettings | None = None, sentences: bool = True
) -> IndexSettings:
    """Index settings for the hashing embedder (``model`` is ``hash`` or ``hash:DIM``)."""
    if chunker is None:
        return IndexSettings(model=model, sentences=sentences)
    return IndexSettings(model=model, chunker=chunker, sentences=sentences)


def build_test_index(
    corpus: Path,
    index_dir: Path | None = None,
    *,
    embedder: Embedder | None = None,
    chunker: ChunkerSettings | None = None,
    model: str = HASH_MODEL,
    exclude: Sequence[Path] = (),
    sentences: bool = True,
) -> tuple[Index, BuildReport]:
    """``corpus`` indexed with ``embedder`` (default ``HashEmbedder(64)``), and its report.

    With ``index_dir`` the index is saved there as well. ``embedder`` may be any object
    with the embedder's attributes (e.g. ``conftest.CountingEmbedder``). ``sentences``
    False leaves sentence vectors out (for tests that count passage embeddings alone).
    """
    if embedder is None:
        embedder = HashEmbedder(int(model.partition(":")[2] or 64))
    settings = hash_settings(embedder.name, chunker=chunker, sentences=sentences)
    index, report = Index.build(corpus, settings=settings, embedder=embedder, exclude=exclude)
    if index_dir is not None:
        claim_index_dir(index_dir)
        with index_lock(index_dir):
            index.save(index_dir)
    return index, report
