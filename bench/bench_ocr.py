"""OCR quality and speed on generated scans: character accuracy and seconds per page.

    .venv/bin/python bench/bench_ocr.py [--pages 3] [--workers 2] [--languages eng+jpn]

English pages carry lines of the memorandum in corpus/; Japanese pages carry sentences
written for this benchmark. Each page is drawn with Pillow (IPA Gothic, 300 dpi, about
11 pt), saved as an image-only PDF and read through ``tpd_qa.ingest.parse`` without a
cache, i.e. rendered with pypdfium2 and read by Tesseract, pages in parallel. Also
measured: pages turned upside down and sideways (orientation by OSD), and unreadable
pages (noise, heavy blur), whose mean confidence sets ``ocr.MIN_CONFIDENCE``.

Character accuracy = 1 - Levenshtein distance / length of the source text, after
collapsing whitespace (removing it for Japanese). Writes bench/results/ocr.json.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from typing import Any

from _common import CORPUS, write_results
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tpd_qa.errors import IngestError
from tpd_qa.ingest import OcrOptions, parse
from tpd_qa.ingest.ocr import MIN_CONFIDENCE, tesseract_version

JAPANESE = [
    "日米両国は、技術による繁栄を共に目指すことで合意した。",
    "人工知能の安全な開発と利用について、研究者が定期的に意見を交わす。",
    "量子計算機の試験装置を相互に利用できるよう、手続きを簡素化する。",
    "核融合エネルギーの実証に向けて、那珂の研究施設での共同実験を続ける。",
    "半導体の供給網を強くするため、不足しやすい材料の情報を共有する。",
    "宇宙探査では、月面での活動計画を両国の機関が調整する。",
    "次世代の通信網について、標準化の場で協力して提案を行う。",
    "生命科学の分野では、若手研究者の交流事業を拡大する。",
    "研究データの管理と保護について、共通の指針を作る。",
    "この覚書は署名の日から効力を生じ、五年ごとに見直される。",
    "両国の担当省庁は、年に一度、進捗を確認する会合を開く。",
    "協力の成果は、可能な限り公開し、社会に還元する。",
]
_FONT_SIZE = 46  # about 11 pt at 300 dpi
_LINE = 70
_PAGE = (2480, 3508)  # A4 at 300 dpi


def _font() -> ImageFont.FreeTypeFont:
    listing = subprocess.run(["fc-list", ":lang=ja", "file"], capture_output=True, text=True)
    files = sorted(line.split(":")[0] for line in listing.stdout.splitlines() if line.strip())
    if files:
        return ImageFont.truetype(files[0], _FONT_SIZE)
    sys.exit("no Japanese font: apt-get install fonts-ipafont-gothic")


def english_lines() -> list[str]:
    """Lines of the memorandum, wrapped to fit a page width."""
    import textwrap

    words = " ".join(
        (CORPUS / "us-japan-technology-prosperity-deal.txt").read_text(encoding="utf-8").split()
    )
    return textwrap.wrap(words, 78)


def draw_page(lines: list[str], font: ImageFont.FreeTypeFont) -> Image.Image:
    image = Image.new("L", _PAGE, 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((200, 250 + number * _LINE), line, font=font, fill=0)
    return image


def image_pdf(pages: list[Image.Image]) -> bytes:
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", resolution=300, save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def accuracy(source: str, read: str, *, japanese: bool) -> float:
    joiner = "" if japanese else " "
    want, got = joiner.join(source.split()), joiner.join(read.split())
    return max(0.0, 1 - levenshtein(want, got) / max(1, len(want)))


def run_set(
    name: str, pages: list[list[str]], rotate: int, options: OcrOptions, font: Any
) -> dict[str, Any]:
    images = [draw_page(lines, font) for lines in pages]
    if rotate:
        images = [image.rotate(rotate, expand=True, fillcolor=255) for image in images]
    started = time.perf_counter()
    document = parse(image_pdf(images), f"{name}.pdf", ocr=options)
    seconds = time.perf_counter() - started
    japanese = name.startswith("japanese")
    scores = []
    for number, lines in enumerate(pages):
        start = document.page_starts[number]
        end = document.page_starts[number + 1] if number + 1 < len(pages) else len(document.text)
        scores.append(accuracy("\n".join(lines), document.text[start:end], japanese=japanese))
    confidences = [c for c in document.page_ocr if c is not None]
    return {
        "set": name,
        "pages": len(pages),
        "rotation": rotate,
        "char_accuracy": round(sum(scores) / len(scores), 4),
        "min_page_accuracy": round(min(scores), 4),
        "mean_confidence": round(sum(confidences) / len(confidences), 1),
        "seconds_per_page": round(seconds / len(pages), 2),
    }


def unreadable(options: OcrOptions) -> list[dict[str, Any]]:
    """Mean confidences of pages that should not be trusted (they set the threshold)."""
    noise = Image.effect_noise((1240, 1754), 100).point(lambda v: 255 if v > 140 else 0)
    blurred = draw_page(english_lines()[:30], _font()).resize((620, 877))
    blurred = blurred.filter(ImageFilter.GaussianBlur(4))
    rows = []
    for name, image in (("noise", noise.convert("L")), ("blurred", blurred)):
        try:
            document = parse(image_pdf([image]), f"{name}.pdf", ocr=options)
            rows.append({"set": name, "mean_confidence": document.page_ocr[0]})
        except IngestError as exc:
            rows.append({"set": name, "refused": exc.reason})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3, help="pages per set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--languages", default="eng+jpn")
    args = parser.parse_args()
    if tesseract_version() is None:
        sys.exit("Tesseract is not installed: scripts/setup.sh installs it")
    font = _font()
    options = OcrOptions(languages=args.languages, workers=args.workers)
    english = english_lines()
    per_page = 40
    english_pages = [english[i * per_page : (i + 1) * per_page] for i in range(args.pages)]
    japanese_pages = [
        [JAPANESE[(i * 7 + n) % len(JAPANESE)] for n in range(20)] for i in range(args.pages)
    ]
    rows = [
        run_set("english", english_pages, 0, options, font),
        run_set("japanese", japanese_pages, 0, options, font),
        run_set("english-upside-down", english_pages[:1], 180, options, font),
        run_set("japanese-sideways", japanese_pages[:1], 90, options, font),
    ]
    bad = unreadable(options)
    command = "PYTHONPATH=src .venv/bin/python bench/bench_ocr.py " + " ".join(sys.argv[1:])
    print(f"$ {command.strip()}")
    print(f"{tesseract_version()}, languages {args.languages}, {args.workers} workers")
    print(f"{'set':<22}{'pages':>6}{'char acc':>10}{'min page':>10}{'conf':>7}{'s/page':>8}")
    for row in rows:
        print(
            f"{row['set']:<22}{row['pages']:>6}{row['char_accuracy']:>10.3f}"
            f"{row['min_page_accuracy']:>10.3f}{row['mean_confidence']:>7.1f}"
            f"{row['seconds_per_page']:>8.2f}"
        )
    for row in bad:
        print(f"{row['set']:<22} {row}")
    print(f"threshold (ocr.MIN_CONFIDENCE): {MIN_CONFIDENCE}")
    write_results(
        "ocr",
        {
            "command": command,
            "tesseract": tesseract_version(),
            "languages": args.languages,
            "workers": args.workers,
            "sets": rows,
            "unreadable": bad,
        },
    )


if __name__ == "__main__":
    main()
