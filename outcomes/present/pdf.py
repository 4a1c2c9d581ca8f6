"""Static export of a page: its charts as PNG images, stacked into a PDF with the active filters on every page.

Images come from kaleido (headless Chromium), started once per process; a page is only rendered when the
user asks for it. The figures handed in are the ones the page drew, so they hold suppressed data only.

Every page carries the short 42 CFR part 2 notice and the data use statement as real text (searchable,
copied with the page), and the last page the full notice (outcomes.present.notice).
"""

from __future__ import annotations

import datetime as dt
import io
import textwrap
import threading
import warnings
from dataclasses import dataclass

import plotly.graph_objects as go

PAGE_SIZE = (1754, 1240)  # A4 landscape at 150 dpi
DPI = 150.0
MARGIN = 70
NOTICE_ROOM = 96  # pixels kept free above the footer for the notice lines (written as text, not drawn)
NOTICE_PT = 6.5  # font size of the per-page notice, in points
CHART_SIZE = (1500, 760)  # rendered size in CSS pixels, before scaling to the page

_lock = threading.Lock()
_started = False


@dataclass
class Chart:
    title: str
    figure: go.Figure
    note: str = ""  # n, suppression and footnotes shown under the chart
    stamp: str = ""  # stands for the figure when deciding whether a prepared PDF is still this page's


def start() -> None:
    """Start kaleido's browser once per process (later images take about 0.2 s each)."""
    global _started
    if not _started:
        import kaleido

        kaleido.start_sync_server(mathjax=False, silence_warnings=True)
        _started = True


def stop() -> None:
    global _started
    if _started:
        import kaleido

        try:
            kaleido.stop_sync_server(silence_warnings=True)
        finally:
            _started = False


def png(fig: go.Figure, width: int = CHART_SIZE[0], height: int = CHART_SIZE[1]) -> bytes:
    """One figure as PNG bytes, at a fixed size and with a white background.

    One kaleido browser serves the whole process, one image at a time; if it fails (a browser that died or
    garbled a message), it is restarted once and the image drawn again.
    """
    copy = go.Figure(fig)
    copy.update_layout(width=width, height=height, paper_bgcolor="white")
    with _lock:
        for attempt in (1, 2):
            try:
                start()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # kaleido notes that per-call options are ignored by its server
                    return copy.to_image(format="png", width=width, height=height)
            except Exception:
                if attempt == 2:
                    raise
                stop()
    raise AssertionError("unreachable")


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    for name in (
        ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"),
        ("LiberationSans-Bold.ttf" if bold else "LiberationSans-Regular.ttf"),
    ):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _lines(draw, text: str, font, width: int) -> list[str]:
    # wrap to the page width, measured with the real font
    avg = max(1, draw.textlength("abcdefghijklmnopqrstuvwxyz", font=font) / 26)
    return textwrap.wrap(text, width=max(20, int(width / avg))) or [""]


def page_image(page_title: str, chart: Chart, filters: str, data_through: str, made: str, number: int, total: int):
    """One PDF page: page and chart titles, the filters, the chart, its notes and a footer. Returns the image and
    the notes with the top of each line in pixels (written on the page as text too, see `with_text`)."""
    from PIL import Image, ImageDraw

    page = Image.new("RGB", PAGE_SIZE, "white")
    draw = ImageDraw.Draw(page)
    width = PAGE_SIZE[0] - 2 * MARGIN
    y = MARGIN - 20
    draw.text((MARGIN, y), page_title, fill="#222", font=_font(34, bold=True))
    y += 50
    draw.text((MARGIN, y), chart.title, fill="#222", font=_font(26, bold=True))
    y += 40
    small = _font(18)
    for line in _lines(draw, f"Filters: {filters}", small, width):
        draw.text((MARGIN, y), line, fill="#333", font=small)
        y += 24
    draw.text((MARGIN, y), f"Data through {data_through}", fill="#333", font=small)
    y += 34
    notes = [ln for part in chart.note.split("\n") if part.strip() for ln in _lines(draw, part, _font(16), width)]
    room = PAGE_SIZE[1] - y - MARGIN - 30 - 22 * len(notes) - NOTICE_ROOM
    image = Image.open(io.BytesIO(png(chart.figure))).convert("RGB")
    scale = min(width / image.width, room / image.height, 1.5)
    image = image.resize((int(image.width * scale), int(image.height * scale)), Image.LANCZOS)
    page.paste(image, (MARGIN, y))
    y += image.height + 12
    placed = []
    for line in notes:
        draw.text((MARGIN, y), line, fill="#444", font=_font(16))
        placed.append((line, y))
        y += 22
    footer = f"Treatment outcomes · {page_title} · made {made} · page {number} of {total} · counts of 1–10 are hidden"
    draw.text((MARGIN, PAGE_SIZE[1] - MARGIN + 10), footer, fill="#777", font=_font(14))
    return page, placed


def pdf(
    page_title: str,
    charts: list[Chart],
    filters: str,
    data_through: dt.date | str,
    made: dt.datetime | None = None,
    notice=None,
) -> bytes:
    """A PDF with one chart per A4 landscape page, each page carrying the page title, the active filters and
    the short notice with the data use statement; then a page with the full 42 CFR part 2 notice.

    The filters are also written into the document's subject, so they can be read without the images.
    `notice` is an outcomes.present.notice.Notice; without it, the configured one.
    """
    from outcomes.present import notice as notices

    if not charts:
        raise ValueError("this page has no charts to export")
    n = notice or notices.load()
    made_text = f"{(made or dt.datetime.now()):%d %b %Y %H:%M}"
    through = f"{data_through:%d %b %Y}" if isinstance(data_through, dt.date) else str(data_through)
    total = len(charts) + 1
    drawn = [page_image(page_title, c, filters, through, made_text, i + 1, total) for i, c in enumerate(charts)]
    pages = [page for page, _ in drawn] + [notice_image(page_title, made_text, total)]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=DPI)
    per_page = [f"{n.short} {n.data_use}"] * len(charts) + [None]
    return with_text(
        out.getvalue(),
        per_page,
        n,
        {
            "/Title": f"Treatment outcomes: {page_title}",
            "/Subject": f"Filters: {filters}",
            "/Keywords": f"data through {through}; {n.short}",
            "/Creator": "Treatment outcomes dashboard",
        },
        [notes for _, notes in drawn],
    )


def notice_image(page_title: str, made: str, total: int):
    """The last page: its title and footer (the notice itself is written on it as text)."""
    from PIL import Image, ImageDraw

    page = Image.new("RGB", PAGE_SIZE, "white")
    draw = ImageDraw.Draw(page)
    draw.text((MARGIN, MARGIN - 20), "Notice: 42 CFR part 2 and data use", fill="#222", font=_font(34, bold=True))
    footer = f"Treatment outcomes · {page_title} · made {made} · page {total} of {total}"
    draw.text((MARGIN, PAGE_SIZE[1] - MARGIN + 10), footer, fill="#777", font=_font(14))
    return page


def _pdf_text(text: str) -> bytes:
    # Helvetica with WinAnsiEncoding: cp1252 covers the notice (§, –); anything else becomes "?"
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _text_block(lines: list[str], x: float, top: float, size: float, leading: float) -> bytes:
    ops = [b"BT", f"/FNotice {size:g} Tf {leading:g} TL 0.2 g".encode(), f"{x:.1f} {top:.1f} Td".encode()]
    for line in lines:
        ops.append(_pdf_text(line) + b" Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def _wrap(text: str, size: float, width_pt: float) -> list[str]:
    # Helvetica averages about 0.5 em a character; wrap a little short of that so no line runs off the page
    return textwrap.wrap(text, width=max(40, int(width_pt / (size * 0.52)))) or [""]


def with_text(data: bytes, per_page: list[str | None], notice, metadata: dict, notes: list | None = None) -> bytes:
    """The PDF `data` with text written onto its pages: per_page[i] in small type above the footer of page i,
    and on the last page (None) the full notice and data use statement. notes[i], (line, top in pixels) pairs,
    are written invisibly over the same words in the image, so the notes under a chart (its signals and
    events) can be searched and copied."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
    )
    scale = 72.0 / DPI
    x = MARGIN * scale
    width = (PAGE_SIZE[0] - 2 * MARGIN) * scale
    for i, (page, text) in enumerate(zip(writer.pages, per_page)):
        if text is None:
            size = 10.0
            lines = _wrap(notice.part2, size, width) + [""] + _wrap(notice.data_use, size, width)
            top = (PAGE_SIZE[1] - MARGIN - 60) * scale
        else:
            size = NOTICE_PT
            lines = _wrap(text, size, width)
            top = (MARGIN + NOTICE_ROOM - 8) * scale  # from the bottom: just above the footer
        stream = DecodedStreamObject()
        hidden = [
            f"BT /FNotice {16 * scale:.2f} Tf 3 Tr {x:.1f} {(PAGE_SIZE[1] - top_px - 16) * scale:.1f} Td ".encode()
            + _pdf_text(line)
            + b" Tj ET"
            for line, top_px in (notes[i] if notes and i < len(notes) else [])
        ]
        stream.set_data(b"\n".join([_text_block(lines, x, top, size, size * 1.3), *hidden]))
        resources = page[NameObject("/Resources")].get_object()
        fonts = resources.get("/Font")
        fonts = fonts.get_object() if fonts is not None else DictionaryObject()
        fonts[NameObject("/FNotice")] = font
        resources[NameObject("/Font")] = fonts
        contents = page.get("/Contents")
        existing = contents.get_object() if contents is not None else None
        parts = list(existing) if isinstance(existing, ArrayObject) else ([contents] if contents is not None else [])
        page[NameObject("/Contents")] = ArrayObject(parts + [writer._add_object(stream)])
    writer.add_metadata(metadata)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
