"""Time to show a highlighted PDF page (boxes + render), cold and cached, on real PDFs.

    PYTHONPATH=src .venv/bin/python bench/bench_pageview.py [--spans 20] [--pdf-root /usr/share/doc]

Parses every PDF found under ``--pdf-root`` (default /usr/share/doc; exits cleanly when
there is none), picks ``--spans`` random 400-character spans of its text (seeded), and
for each one times :func:`tpd_qa.pages.highlight_boxes` plus :func:`tpd_qa.pages.render`
of the span's first page: cold (empty page cache) and cached (the same request again).
Prints p50/p95 in milliseconds; not a timed test.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tpd_qa.errors import IngestError
from tpd_qa.ingest import parse
from tpd_qa.pages import DEFAULT_SCALE, PageCache, highlight_boxes, render


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf-root", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--spans", type=int, default=20, help="spans per PDF (default 20)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    pdfs = sorted(args.pdf_root.rglob("*.pdf")) if args.pdf_root.is_dir() else []
    if not pdfs:
        print(f"no PDFs under {args.pdf_root}: nothing to measure")
        return 0
    rng = random.Random(args.seed)
    print(f"command: {' '.join(sys.argv)}   scale {DEFAULT_SCALE}")
    cold: list[float] = []
    cached: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for path in pdfs:
            t0 = time.perf_counter()
            try:
                document = parse(path.read_bytes(), path.name)
            except IngestError as exc:
                print(f"skip {path}: {exc.reason}")
                continue
            cache = PageCache(Path(scratch) / path.stem)
            print(
                f"{path}: {document.pages} pages, {len(document.text):,} chars "
                f"(parsed in {time.perf_counter() - t0:.2f} s)"
            )
            for _ in range(args.spans):
                start = rng.randrange(0, max(1, len(document.text) - 400))
                end = min(len(document.text), start + 400)
                page = document.page_at(start) or 1
                for timings in (cold, cached):
                    began = time.perf_counter()
                    highlight_boxes(path, document, start, end)
                    render(path, document, page, [(start, end)], cache=cache)
                    timings.append(time.perf_counter() - began)
    print(f"cold   (boxes + render + PNG + cache write): {_percentiles(cold)}  n={len(cold)}")
    print(f"cached (boxes + cached page):                {_percentiles(cached)}  n={len(cached)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
