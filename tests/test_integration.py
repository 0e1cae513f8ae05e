"""End-to-end tests with the real bundled model (all-MiniLM-L6-v2) over the real corpus.

Marked ``model``: they load the model once per session (a few seconds). The index is
built once per module and extended in copies, so each test sees a known state.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, make_pdf
from tpd_qa import api, retrieve
from tpd_qa.embedding import DEFAULT_MODEL, SentenceTransformerEmbedder
from tpd_qa.index import read_manifest
from tpd_qa.records import BuildReport

pytestmark = pytest.mark.model

SEED_NAME = "us-japan-technology-prosperity-deal.txt"
PDF_PAGES = [
    "Annual review of regional research centres. This overview describes how the "
    "prefectural laboratories coordinate their budgets, share equipment and publish "
    "their yearly results for the public. " * 2,
    "The Kagoshima photonics testbed opened in April. It lets engineers test silicon "
    "photonic chips that move data with light instead of copper wires, and it hosts "
    "forty visiting researchers from partner universities each year. " * 2,
    "Governance and next steps. The steering committee meets twice a year to review "
    "safety rules, data sharing agreements and the schedule for future calls. " * 2,
]
JAPANESE = (
    "日米の研究協力について。\n\n"
    "新しい施設「量子研究所」は筑波に建設され、超伝導量子ビットの研究を行う。\n\n"
    "両国は半導体の供給網を強化する。\n"
)


@dataclass
class Built:
    corpus: Path
    index: Path
    report: BuildReport
    embedded: list[str]


def copy_state(source: Built, target: Path) -> tuple[Path, Path]:
    shutil.copytree(source.corpus, target / "corpus")
    shutil.copytree(source.index, target / "index", ignore=shutil.ignore_patterns(".lock"))
    return target / "corpus", target / "index"


def build(corpus: Path, index: Path) -> Built:
    """api.build_index with the default model, recording every text embedded."""
    embedded: list[str] = []
    original = SentenceTransformerEmbedder.embed_batch

    def recording(self, texts):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return original(self, texts)

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TPD_QA_MODEL", raising=False)
        patch.setattr(SentenceTransformerEmbedder, "embed_batch", recording)
        report = api.build_index(corpus, index, model="default")
    return Built(corpus, index, report, embedded)


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("seed")
    (root / "corpus").mkdir()  # the English memorandum only (corpus/ja/ has its own tests)
    shutil.copy(ROOT / "corpus" / SEED_NAME, root / "corpus" / SEED_NAME)
    return build(root / "corpus", root / "index")


@pytest.fixture(scope="module")
def with_pdf(seed: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    corpus, index = copy_state(seed, tmp_path_factory.mktemp("pdf"))
    make_pdf(corpus / "regional-research.pdf", PDF_PAGES)
    return build(corpus, index)


@pytest.fixture(scope="module")
def with_formats(seed: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    import docx

    corpus, index = copy_state(seed, tmp_path_factory.mktemp("formats"))
    (corpus / "japan-sjis.txt").write_bytes(JAPANESE.encode("shift_jis"))
    (corpus / "marine.html").write_text(
        "<!doctype html><html><head><title>Ocean notes</title><style>p{color:red}</style>"
        "</head><body><nav>Home | About</nav><h1>Marine robotics</h1><p>The Sendai "
        "underwater drone fleet maps coral reefs along the coast every summer.</p>"
        "<script>var secret = 'do not index';</script></body></html>",
        encoding="utf-8",
    )
    document = docx.Document()
    document.add_heading("Hydrogen buses", 1)
    document.add_paragraph(
        "The Fukuoka hydrogen pipeline pilot will deliver fuel to city buses from 2028."
    )
    document.save(str(corpus / "hydrogen.docx"))
    return build(corpus, index)


@pytest.fixture(autouse=True)
def _no_model_override(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TPD_QA_MODEL", raising=False)
    yield


# ---------------------------------------------------------------------------------------


def test_seed_build(seed: Built) -> None:
    assert seed.report.counts()["added"] == 1
    manifest = read_manifest(seed.index)
    assert manifest["model"] == {"name": DEFAULT_MODEL, "dimension": 384}
    assert seed.report.embedded_chunks == seed.report.chunks == manifest["counts"]["chunks"]
    assert len(seed.embedded) == seed.report.chunks + seed.report.embedded_sentences


def test_fusion_question_finds_item_7(seed: Built) -> None:
    passages = retrieve("Which facility will help commercialize fusion?", k=3, index_dir=seed.index)
    first = passages[0]
    assert first.source == SEED_NAME
    assert first.section == "item 7"
    assert "JT-60SA" in first.text
    assert first.citation == f"{SEED_NAME} · item 7 · chars {first.start}–{first.end}"


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_money_question_finds_no_financial_commitments(seed: Built, mode: str) -> None:
    passages = retrieve("Does the deal commit any money?", k=3, index_dir=seed.index, mode=mode)
    assert "does not involve financial commitments" in passages[0].text
    assert passages[0].section is None


def test_dense_mode_ranks_fusion_item_first(seed: Built) -> None:
    passages = retrieve(
        "Which facility will help commercialize fusion?", k=2, index_dir=seed.index, mode="dense"
    )
    assert passages[0].section == "item 7"
    assert 0.3 < api.load_index(seed.index).similarity("fusion facility", passages[:1])[0] <= 1.0


def test_adding_a_pdf_embeds_only_the_pdf(seed: Built, with_pdf: Built) -> None:
    report = with_pdf.report
    counts = report.counts()
    assert counts["added"] == 1 and counts["unchanged"] == 1
    assert not report.full
    assert {o.source: o.status for o in report.outcomes}[SEED_NAME] == "unchanged"
    added = next(o for o in report.outcomes if o.status == "added")
    assert added.source == "regional-research.pdf"
    # only the PDF's chunks were embedded; the seed was not
    assert added.chunks == report.embedded_chunks
    assert len(with_pdf.embedded) == added.chunks + report.embedded_sentences
    assert not any("JT-60SA" in text or "Tokyo" in text for text in with_pdf.embedded)
    pdf_info = next(d for d in api.list_documents(with_pdf.index) if d.kind == "pdf")
    assert pdf_info.pages == 3


def test_pdf_page_2_fact_is_cited_by_page(with_pdf: Built) -> None:
    passages = retrieve(
        "Where can engineers test silicon photonic chips?", k=3, index_dir=with_pdf.index
    )
    first = passages[0]
    assert first.source == "regional-research.pdf"
    assert first.page == 2
    assert "Kagoshima photonics testbed" in first.text
    assert "p. 2" in first.citation
    assert first.citation.startswith("regional-research.pdf · p. 2 · ")
    # the seed answers are unchanged after the update
    fusion = retrieve(
        "Which facility will help commercialize fusion?", k=1, index_dir=with_pdf.index
    )
    assert fusion[0].section == "item 7"


def test_other_formats_are_indexed_and_answerable(with_formats: Built) -> None:
    report = with_formats.report
    statuses = {o.source: o.status for o in report.outcomes}
    assert statuses == {
        SEED_NAME: "unchanged",
        "japan-sjis.txt": "added",
        "marine.html": "added",
        "hydrogen.docx": "added",
    }
    index = with_formats.index

    japanese = retrieve("量子研究所", k=2, index_dir=index, mode="bm25")
    assert japanese and japanese[0].source == "japan-sjis.txt"
    assert "筑波" in japanese[0].text  # decoded from Shift_JIS correctly
    natural = retrieve("筑波の量子ビット研究", k=1, index_dir=index)
    assert natural[0].source == "japan-sjis.txt"

    marine = retrieve("Which drones map coral reefs?", k=2, index_dir=index)
    assert marine[0].source == "marine.html"
    assert "Sendai" in marine[0].text
    assert "secret" not in marine[0].text and "color" not in marine[0].text
    assert marine[0].section == "Marine robotics"

    hydrogen = retrieve("How will buses get hydrogen fuel?", k=2, index_dir=index)
    assert hydrogen[0].source == "hydrogen.docx"
    assert "Fukuoka" in hydrogen[0].text
    assert hydrogen[0].section == "Hydrogen buses"


def test_real_chunks_fit_the_model_window(with_formats: Built) -> None:
    index = api.load_index(with_formats.index)
    embedder = index.embedder
    for chunk in index.chunks():
        assert embedder.count_tokens(chunk.text) <= embedder.max_tokens - 32
