"""The Milvus backend: passages, vectors and a BM25 field in a Milvus collection.

Each save writes a whole new collection *generation* (``<alias>_gen_...``) holding one
entity per chunk row: the citation fields (source, title, page, section, start, end),
the chunk's text, its keyword text (analysed by Milvus's own BM25 function into a sparse
field) and its dense vector. The index folder keeps what ``sync`` needs (documents,
chunk spans, vectors, file stats) as a generation without FAISS or bm25s files.

Commit order, so that no reader ever sees half old and half new:

1. stage the folder generation (not referenced by anything yet);
2. create, fill and flush the new collection (not referenced by anything yet);
3. switch the alias to it (what outside readers of the collection follow);
4. replace ``manifest.json`` (what tpd_qa readers follow: it names the collection);
5. drop every other generation of this alias.

A crash before 3 leaves the alias and the manifest on the old generation (the new one is
debris, dropped by the next save); between 3 and 4 the alias is new and the manifest old,
each naming a complete generation. A tpd_qa reader searches the collection its manifest
names, so its rows and the collection's rows are always of the same generation.

``pymilvus`` is imported only here, and only when a Milvus index is used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from tpd_qa.errors import ConfigError, IndexCorruptError
from tpd_qa.index.state import IndexState, Snapshot
from tpd_qa.index.store import DirectoryStore, read_manifest
from tpd_qa.sparse import SparseSettings, analyse

__all__ = ["MilvusCandidates", "MilvusStore", "connect", "milvus_uri"]

log = logging.getLogger(__name__)

_BATCH = 1000
_TEXT_LIMIT = 65535  # Milvus VARCHAR maximum (bytes)
# Collections up to this many rows are searched exactly (FLAT); larger ones by HNSW.
_EXACT_ROWS = 50_000
# The keyword field holds tpd_qa's own analysed tokens (sparse.analyse: lower-cased, stop
# words dropped, stemmed, CJK pairs) joined by spaces, and queries are analysed the same
# way, so Milvus's BM25 sees the very terms bm25s does. Milvus Lite has no whitespace
# tokenizer, and its standard one would cut CJK pairs and "_" apart: every token that is
# not plain [a-z0-9] is spelled as "u" + its UTF-8 in hex, one word to any tokenizer.
_ANALYZER = {"tokenizer": "standard"}
_PLAIN = re.compile(r"[a-z0-9]+")

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def milvus_uri(uri: str | None) -> str | None:
    """``uri`` or ``$TPD_QA_MILVUS_URI``; a local Milvus Lite file path made absolute."""
    uri = uri or os.environ.get("TPD_QA_MILVUS_URI") or None
    if uri is not None and "://" not in uri:
        uri = str(Path(uri).expanduser().resolve())
    return uri


def connect(uri: str) -> Any:
    """A client for the Milvus at ``uri`` (one per URI per process); ConfigError if unreachable.

    ``uri`` is a server address (``http://host:19530``) or a Milvus Lite file (``*.db``).
    """
    with _clients_lock:
        client = _clients.get(uri)
        if client is not None:
            return client
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise ConfigError(
                "the Milvus backend needs pymilvus: pip install 'tpd-qa[milvus]'"
            ) from exc
        if "://" not in uri and not uri.endswith(".db"):
            raise ConfigError(f"Milvus URI {uri} is neither http(s)://host:port nor a .db file")
        if "://" not in uri:
            # Milvus Lite serves gRPC inside this process and logs a traceback for each call
            # it does not implement (pymilvus asks AllocTimestamp while creating an index,
            # then carries on): noise on the CLI's stderr, not an error.
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        try:
            client = MilvusClient(uri=uri, timeout=10)
            client.list_collections()
        except Exception as exc:  # pymilvus raises several unrelated types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot reach Milvus at {uri} ({first[:200]})") from exc
        _clients[uri] = client
        return client


def _alias_for(directory: Path) -> str:
    digest = hashlib.sha256(str(directory.resolve()).encode("utf-8", "surrogatepass"))
    return f"tpdqa_{digest.hexdigest()[:12]}"


def _collection_name(alias: str, generation: str) -> str:
    return f"{alias}_{generation.replace('-', '_')}"


class MilvusStore:
    """An index whose search data lives in Milvus and whose sync data lives in a folder."""

    def __init__(self, directory: str | Path, uri: str) -> None:
        self.folder = DirectoryStore(directory)
        self.directory = self.folder.directory
        self.uri = uri

    @property
    def manifest_path(self) -> Path:
        return self.folder.manifest_path

    def exists(self) -> bool:
        return self.folder.exists()

    def model(self) -> tuple[str, int]:
        return self.folder.model()

    def lock(self, *, wait: float = 0.0) -> AbstractContextManager[None]:
        return self.folder.lock(wait=wait)

    def _alias(self) -> str:
        try:
            backend = read_manifest(self.directory).get("backend", {})
            alias = backend.get("alias") if isinstance(backend, dict) else None
        except Exception:
            alias = None
        return str(alias) if alias else _alias_for(self.directory)

    def save(self, snapshot: Snapshot) -> None:
        _check_bm25_parameters(self.uri, snapshot.settings.sparse)
        client = connect(self.uri)
        alias = self._alias()
        generation, files = self.folder.stage(snapshot, search_files=False)
        collection = _collection_name(alias, generation)
        try:
            _create(client, collection, snapshot.state, snapshot.settings.sparse)
            self._switch(client, alias, collection)
        except BaseException:
            self.folder.discard(generation)
            try:
                client.drop_collection(collection)
            except Exception:  # the next save drops it
                log.warning("could not drop unfinished collection %s", collection)
            raise
        backend = {"kind": "milvus", "uri": self.uri, "alias": alias, "collection": collection}
        self.folder.commit(snapshot, generation, files, backend)
        for name in client.list_collections():
            if name.startswith(f"{alias}_gen_") and name != collection:
                client.drop_collection(name)

    def _switch(self, client: Any, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` (one atomic step in Milvus)."""
        names = client.list_aliases().get("aliases", [])
        if alias in names:
            client.alter_alias(collection_name=collection, alias=alias)
        else:
            client.create_alias(collection_name=collection, alias=alias)

    def load(self, *, verify: bool = True) -> Snapshot:
        manifest = read_manifest(self.directory)
        backend = manifest.get("backend")
        if not isinstance(backend, dict) or backend.get("kind") != "milvus":
            raise IndexCorruptError(
                f"index at {self.directory} is not a Milvus index", remedy="rebuild_full"
            )
        snapshot = self.folder.load_manifest(manifest, verify=verify)
        collection = str(backend["collection"])
        client = connect(self.uri)
        if not client.has_collection(collection):
            raise IndexCorruptError(
                f"Milvus collection {collection} at {self.uri} is missing",
                remedy="rebuild_full",
            )
        _ensure_loaded(client, collection)
        state = snapshot.state
        state.candidates = MilvusCandidates(
            client, collection, state.row_doc, len(state.chunks), snapshot.settings.sparse
        )
        return snapshot


def _ensure_loaded(client: Any, collection: str) -> None:
    """Load ``collection`` into the query nodes unless it is already: a Milvus (Lite) server
    started afresh holds every collection released, and a released one cannot be searched."""
    try:
        state = client.get_load_state(collection).get("state")
        if getattr(state, "name", None) != "Loaded":
            client.load_collection(collection)
    except Exception as exc:  # pymilvus raises several unrelated types
        raise IndexCorruptError(
            f"cannot load Milvus collection {collection} ({str(exc).splitlines()[0][:200]})",
            remedy="rebuild_full",
        ) from exc


def _check_bm25_parameters(uri: str, sparse: SparseSettings) -> None:
    """ConfigError for BM25 k1 / b other than the defaults in a Milvus Lite file.

    Milvus Lite ignores the ``bm25_k1`` / ``bm25_b`` index parameters (measured with
    milvus-lite 3.2: identical scores for k1 from 0.5 to 3 and b from 0.1 to 0.75), so
    its keyword ranking would silently disagree with the settings the index records.
    """
    default = SparseSettings()
    if "://" not in uri and (sparse.k1, sparse.b) != (default.k1, default.b):
        raise ConfigError(
            f"Milvus Lite ignores BM25 k1={sparse.k1:g} / b={sparse.b:g}: keep the defaults "
            f"({default.k1:g} / {default.b:g}) or use a Milvus server (http://host:19530)"
        )


def _create(client: Any, collection: str, state: IndexState, sparse: SparseSettings) -> None:
    """A new collection holding ``state``'s rows, indexed, flushed and loaded."""
    from pymilvus import DataType, Function, FunctionType

    dimension = int(state.vectors.shape[1]) if state.vectors.ndim == 2 else 0
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("doc", DataType.INT64)
    schema.add_field("sha256", DataType.VARCHAR, max_length=64)
    schema.add_field("source", DataType.VARCHAR, max_length=_TEXT_LIMIT)
    schema.add_field("title", DataType.VARCHAR, max_length=_TEXT_LIMIT)
    schema.add_field("page", DataType.INT64)  # -1: no page
    schema.add_field("section", DataType.VARCHAR, max_length=_TEXT_LIMIT)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=_TEXT_LIMIT)
    schema.add_field(
        "keywords",
        DataType.VARCHAR,
        max_length=_TEXT_LIMIT,
        enable_analyzer=True,
        analyzer_params=_ANALYZER,
    )
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=max(dimension, 1))
    schema.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["keywords"],
            output_field_names=["bm25"],
        )
    )
    params = client.prepare_index_params()
    if len(state.chunks) <= _EXACT_ROWS:
        params.add_index("vector", index_type="FLAT", metric_type="COSINE")
    else:
        params.add_index(
            "vector",
            index_type="HNSW",
            metric_type="COSINE",
            params={"M": 32, "efConstruction": 200},
        )
    params.add_index(
        "bm25",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": sparse.k1, "bm25_b": sparse.b},
    )
    client.create_collection(
        collection, schema=schema, index_params=params, consistency_level="Strong"
    )
    rows: list[dict[str, Any]] = []
    for row, chunk in enumerate(state.chunks):
        if row % _BATCH == 0:
            texts = [
                state.keyword_text(n) for n in range(row, min(row + _BATCH, len(state.chunks)))
            ]
            tokens = analyse(texts, sparse)
        doc_number = int(state.row_doc[row])
        document = state.docs[doc_number].document
        rows.append(
            {
                "row": row,
                "doc": doc_number,
                "sha256": document.sha256,
                "source": _clip(document.source),
                "title": _clip(document.title),
                "page": -1 if chunk.page is None else int(chunk.page),
                "section": _clip(chunk.section or ""),
                "start": chunk.start,
                "end": chunk.end,
                "text": _clip(chunk.text),
                "keywords": _clip(_terms(tokens[row % _BATCH])),
                "vector": state.vectors[row].tolist(),
            }
        )
        if len(rows) == _BATCH:
            client.insert(collection, rows)
            rows = []
    if rows:
        client.insert(collection, rows)
    client.flush(collection)


def _terms(tokens: list[str]) -> str:
    """Analysed tokens as the text of the keyword field (see ``_ANALYZER``)."""
    return " ".join(
        token if _PLAIN.fullmatch(token) else "u" + token.encode("utf-8", "replace").hex()
        for token in tokens
    )


def _clip(text: str) -> str:
    """``text`` as valid UTF-8 cut to fit a VARCHAR field (whole characters)."""
    data = text.encode("utf-8", "replace")
    return data[:_TEXT_LIMIT].decode("utf-8", "ignore")


class MilvusCandidates:
    """Dense and BM25 candidates from one collection generation (rows as in the state)."""

    def __init__(
        self,
        client: Any,
        collection: str,
        row_doc: np.ndarray,
        size: int,
        sparse: SparseSettings | None = None,
    ) -> None:
        self.sparse = sparse or SparseSettings()
        self.client = client
        self.collection = collection
        self.row_doc = row_doc
        self.size = size

    def _filter(self, allowed: np.ndarray | None) -> str:
        if allowed is None:
            return ""
        docs = np.unique(self.row_doc[allowed]).tolist()
        return f"doc in [{', '.join(str(int(d)) for d in docs)}]"

    def _search(
        self, data: Any, field: str, depth: int, allowed: np.ndarray | None, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        limit = min(depth, self.size, 16384)
        if limit < 1:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        try:
            hits = self.client.search(
                self.collection,
                data=[data],
                anns_field=field,
                limit=limit,
                filter=self._filter(allowed),
                output_fields=["row"],
                search_params=params,
            )[0]
        except Exception as exc:
            raise IndexCorruptError(
                f"Milvus search in {self.collection} failed ({str(exc).splitlines()[0][:200]})",
                remedy="rebuild_full",
            ) from exc
        ids = np.asarray([int(hit["entity"]["row"]) for hit in hits], dtype=np.int64)
        scores = np.asarray([float(hit["distance"]) for hit in hits], dtype=np.float32)
        return scores, ids

    def dense(
        self, vector: np.ndarray, depth: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        params: dict[str, Any] = {"metric_type": "COSINE", "params": {"ef": max(depth, 128)}}
        query = np.asarray(vector, dtype=np.float32).tolist()
        return self._search(query, "vector", depth, allowed, params)

    def keyword(
        self, question: str, depth: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        terms = _terms(analyse([question], self.sparse)[0])
        if not terms:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores, ids = self._search(terms, "bm25", depth, allowed, {"metric_type": "BM25"})
        if len(scores) and scores[0] < 0:  # Milvus Lite reports BM25 scores negated
            scores = -scores
        # Milvus's BM25 has Robertson's (k1 + 1) factor in each term, bm25s's Lucene variant
        # not: on this scale a score reads as it would from the default backend.
        scores = scores / np.float32(self.sparse.k1 + 1)
        keep = scores > 0
        return scores[keep], ids[keep]
