"""OCR of scanned PDFs and images: generated scans (English, Japanese, a page upside down
and one sideways), a mixed PDF, a PNG; the page cache; Tesseract missing; --no-ocr."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from documents import image_pdf, page_image, pdf_bytes
from tpd_qa import api
from tpd_qa.index import Index
from tpd_qa.ingest import OCR_CACHE_DIR_NAME, OcrOptions, parse, sniff
from tpd_qa.ingest import ocr as ocr_module
from tpd_qa.records import OCR_LABEL, BuildReport, FileOutcome

ENGLISH = [
    "Memorandum of Cooperation on Fusion Energy",
    "The participants will exchange researchers between",
    "the Naka tokamak and national laboratories.",
]
JAPANESE = [
    "日米技術繁栄協定について",
    "両国は人工知能の研究開発で協力する。",
    "量子技術の人材交流を進める。",
]
SIDEWAYS = [
    "Annex on Semiconductor Supply Chains",
    "Both governments will monitor shortages of",
    "rare gases used by lithography tools.",
]
PHOTO = [
    "Letter on Space Exploration",
    "The agencies plan joint lunar surface operations",
    "under the Artemis program.",
]
MIXED_SCAN = [
    "Scanned signature page",
    "Signed at Tokyo by the authorised representatives",
    "of both governments on the date above.",
]


def mixed_pdf(text: str, scan: Image.Image) -> bytes:
    """Page 1 with a text layer, page 2 a scanned image."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data in (pdf_bytes([[text]]), image_pdf([scan])):
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def ocr_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts pages actually read by Tesseract (cache misses)."""
    calls: list[int] = []
    real = ocr_module._read

    def counting(image: Image.Image, languages: str) -> ocr_module.PageReading:
        calls.append(1)
        return real(image, languages)

    monkeypatch.setattr(ocr_module, "_read", counting)
    return calls


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("scans")
    (corpus / "memo-scan.pdf").write_bytes(
        image_pdf(
            [page_image(ENGLISH), page_image(JAPANESE, rotate=180), page_image(SIDEWAYS, rotate=90)]
        )
    )
    (corpus / "mixed.pdf").write_bytes(
        mixed_pdf(
            "Cover note: the deal covers biotechnology and 6G networks.", page_image(MIXED_SCAN)
        )
    )
    page_image(PHOTO).save(corpus / "letter.png")
    return corpus


@pytest.fixture(scope="module")
def built(
    scans: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, BuildReport]]:
    index_dir = tmp_path_factory.mktemp("index")
    report = api.build_index(scans, index_dir, model="hash")
    yield index_dir, report


def _outcome(report: BuildReport, source: str) -> FileOutcome:
    return next(o for o in report.outcomes if o.source == source)


def test_scans_are_indexed_with_pages(built: tuple[Path, BuildReport]) -> None:
    _, report = built
    assert {o.source: o.status for o in report.outcomes} == {
        "letter.png": "added",
        "memo-scan.pdf": "added",
        "mixed.pdf": "added",
    }, report.outcomes


@pytest.mark.parametrize(
    ("question", "source", "page", "expected"),
    [
        ("researchers Naka tokamak", "memo-scan.pdf", 1, "Naka tokamak"),
        ("人工知能の研究開発", "memo-scan.pdf", 2, "人工知能"),  # upside down
        ("rare gases lithography", "memo-scan.pdf", 3, "lithography"),  # sideways
        ("lunar surface Artemis", "letter.png", 1, "Artemis"),
        ("signed at Tokyo representatives", "mixed.pdf", 2, "Tokyo"),
    ],
)
def test_questions_find_the_scanned_passage(
    built: tuple[Path, BuildReport], question: str, source: str, page: int, expected: str
) -> None:
    index = Index.load(built[0])
    best = index.search(question, 3, mode="keyword")[0]
    assert (best.source, best.page) == (source, page)
    assert expected in best.text
    assert best.ocr is True
    assert best.ocr_confidence is not None and best.ocr_confidence > ocr_module.MIN_CONFIDENCE
    assert best.citation.endswith(f" · {OCR_LABEL}")
    assert best.to_dict()["ocr"] is True


def test_mixed_pdf_reads_only_its_scanned_page(built: tuple[Path, BuildReport]) -> None:
    index = Index.load(built[0])  # the per-page flags survived save and load
    document = index.document("mixed.pdf")
    assert document.page_ocr[0] is None and document.page_ocr[1] is not None
    best = index.search("biotechnology 6G networks", 1, mode="keyword")[0]
    assert (best.page, best.ocr, best.ocr_confidence) == (1, False, None)
    assert OCR_LABEL not in best.citation


def test_cache_survives_rebuilds_renames_and_model_changes(
    built: tuple[Path, BuildReport], scans: Path, ocr_calls: list[int], tmp_path: Path
) -> None:
    index_dir, _ = built
    cache = index_dir / OCR_CACHE_DIR_NAME
    entries = list(cache.glob("*/*.json"))
    assert len(entries) == 5  # 3 + 1 + 1 scanned pages
    record = json.loads(entries[0].read_text(encoding="utf-8"))
    assert set(record) == {"text", "confidence", "rotation"}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in scans.iterdir():
        (corpus / f"renamed-{path.name}").write_bytes(path.read_bytes())
    api.build_index(corpus, index_dir, model="hash", full=True)  # renamed, full rebuild
    api.build_index(corpus, index_dir, model="hash:32")  # another model: full rebuild
    assert ocr_calls == []
    index = Index.load(index_dir)
    best = index.search("lunar surface Artemis", 1, mode="keyword")[0]
    assert (best.source, best.ocr) == ("renamed-letter.png", True)
    assert len(list(cache.glob("*/*.json"))) == 5


def test_tesseract_missing_skips_scans_with_the_package_to_install(
    scans: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    report = api.build_index(scans, tmp_path / "index", model="hash")
    for source in ("memo-scan.pdf", "letter.png"):
        outcome = _outcome(report, source)
        assert outcome.status == "skipped"
        assert "Tesseract is not installed" in outcome.reason
        assert ocr_module.INSTALL_HINT in outcome.reason
    mixed = _outcome(report, "mixed.pdf")  # its text page is still indexed
    assert mixed.status == "added" and ocr_module.INSTALL_HINT in mixed.reason


def test_no_ocr_flag_skips_scans(scans: Path, tmp_path: Path, ocr_calls: list[int]) -> None:
    command = [sys.executable, "-m", "tpd_qa", "index", "--corpus", str(scans)]
    command += ["--index", str(tmp_path / "index"), "--no-ocr", "--json"]
    env = {"TPD_QA_MODEL": "hash", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    report = json.loads(result.stdout)
    outcomes = {o["source"]: o for o in report["files"]}
    assert outcomes["letter.png"]["status"] == "skipped"
    assert "OCR is off" in outcomes["letter.png"]["reason"]
    assert outcomes["memo-scan.pdf"]["status"] == "skipped"
    assert outcomes["mixed.pdf"]["status"] == "added"
    report_api = api.build_index(scans, tmp_path / "index2", model="hash", ocr=False)
    assert _outcome(report_api, "letter.png").status == "skipped"
    assert ocr_calls == []


def test_unreadable_page_is_reported_with_its_confidence(tmp_path: Path) -> None:
    noise = Image.effect_noise((900, 600), 120).point(lambda v: 255 if v > 150 else 0)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "mixed.pdf").write_bytes(
        mixed_pdf("A clean page about hydrogen energy research.", noise.convert("L"))
    )
    report = api.build_index(corpus, tmp_path / "index", model="hash")
    outcome = _outcome(report, "mixed.pdf")
    assert outcome.status == "added"
    assert "p. 2: unreadable by OCR (mean confidence" in outcome.reason


def test_images_are_sniffed_by_their_magic_bytes() -> None:
    png = io.BytesIO()
    Image.new("L", (8, 8), 255).save(png, "PNG")
    jpeg = io.BytesIO()
    Image.new("L", (8, 8), 255).save(jpeg, "JPEG")
    tiff = io.BytesIO()
    Image.new("L", (8, 8), 255).save(tiff, "TIFF")
    assert [sniff(b.getvalue()) for b in (png, jpeg, tiff)] == ["png", "jpeg", "tiff"]
    with pytest.raises(Exception, match="not a PNG image"):
        parse(jpeg.getvalue(), "photo.png", ocr=OcrOptions(enabled=False))
    with pytest.raises(Exception, match="OCR is off"):
        parse(png.getvalue(), "photo.png", ocr=OcrOptions(enabled=False))


def test_uploads_accept_scans_without_reading_them(ocr_calls: list[int]) -> None:
    from tpd_qa import uploads

    png = io.BytesIO()
    page_image(PHOTO).save(png, "PNG")
    uploads.check_content(png.getvalue(), "letter.png")  # the rebuild reads it, once
    uploads.check_content(image_pdf([page_image(ENGLISH)]), "memo.pdf")
    assert ocr_calls == []


def test_web_card_marks_ocr_passages() -> None:
    from markup import parse as parse_markup
    from markup import passage
    from tpd_qa.web import views

    scanned = passage("Signed at Tokyo.", page=2, ocr=True, ocr_confidence=91.4)
    plain = passage("Typed text.", page=1)
    answer = views.Answer("q", "hybrid", (views.Card(scanned), views.Card(plain)), ())
    markup = views.render_answer(answer)
    assert markup.count(OCR_LABEL) == 2  # the label and the copied citation of one card
    assert "confidence 91/100" in markup
    assert OCR_LABEL in views.citation_text(scanned)
    assert OCR_LABEL not in views.citation_text(plain)
    assert OCR_LABEL in "".join(parse_markup(markup).text)
