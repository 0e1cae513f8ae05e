"""Images (PNG, JPEG, TIFF): every frame is a page read by OCR (pages joined by a blank
line, like PDF pages), so a multi-page TIFF cites ``p. N`` like a scanned PDF."""

from __future__ import annotations

import io
import itertools
import warnings
from typing import TYPE_CHECKING, Final

from tpd_qa.errors import IngestError
from tpd_qa.ingest.formats import format_for
from tpd_qa.ingest.headings import first_line_title, line_headings, title_from_name
from tpd_qa.ingest.ocr import OcrOptions, PageSource, low_confidence_notes, read_pages
from tpd_qa.ingest.parsed import Parsed, normalize, short

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["parse"]

#: Frames (pages) read from one image file at most.
MAX_FRAMES: Final = 500
_PAGE_SEPARATOR = "\n\n"


def parse(data: bytes, source: str, ocr: OcrOptions | None = None) -> Parsed:
    fmt = format_for(source)
    if fmt is not None and not any(sig.found_in(data) for sig in fmt.signatures):
        raise IngestError(f"not a {fmt.label} (content does not match the file extension)")
    frames = _frames(data)
    label = fmt.label if fmt is not None else "image"
    readings = read_pages(
        [_constant(frame) for frame in frames], ocr or OcrOptions(), what=f"{label} (scanned)"
    )
    confidences = tuple(r.confidence for r in readings)
    notes = tuple(low_confidence_notes(confidences))
    texts = [normalize(r.text).strip() if r.readable else "" for r in readings]
    if not any(texts):
        raise IngestError("; ".join(notes) or "no text found by OCR")
    text = _PAGE_SEPARATOR.join(texts)
    lengths = (len(t) + len(_PAGE_SEPARATOR) for t in texts[:-1])
    page_starts = tuple(itertools.accumulate(lengths, initial=0))
    headings = line_headings(text)
    title = first_line_title(text) or title_from_name(source)
    return Parsed(title, text, headings, page_starts, confidences, notes)


def _frames(data: bytes) -> list[Image]:
    """Every frame as a grey-scale image on white (transparency flattened)."""
    from PIL import Image as PILImage
    from PIL import ImageSequence

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as image:
                frames = [
                    _grey(frame)
                    for frame in itertools.islice(ImageSequence.Iterator(image), MAX_FRAMES)
                ]
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise IngestError(f"image too large to read ({short(exc)})") from exc
    except Exception as exc:
        raise IngestError(f"corrupt image: {short(exc)}") from exc
    if not frames:
        raise IngestError("corrupt image: no frames")
    return frames


def _grey(frame: Image) -> Image:
    from PIL import Image as PILImage

    if frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:
        rgba = frame.convert("RGBA")
        flat = PILImage.new("RGBA", rgba.size, "white")
        flat.alpha_composite(rgba)
        return flat.convert("L")
    return frame.convert("L")


def _constant(image: Image) -> PageSource:
    return lambda: image
