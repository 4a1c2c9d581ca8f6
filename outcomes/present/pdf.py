"""Static export of a page: its charts as PNG images, stacked into a PDF with the active filters on every page.

Images come from kaleido (headless Chromium), started once per process; a page is only rendered when the
user asks for it. The figures handed in are the ones the page drew, so they hold suppressed data only.
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
MARGIN = 70
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

    for name in (("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"),
                 ("LiberationSans-Bold.ttf" if bold else "LiberationSans-Regular.ttf")):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _lines(draw, text: str, font, width: int) -> list[str]:
    # wrap to the page width, measured with the real font
    avg = max(1, draw.textlength("abcdefghijklmnopqrstuvwxyz", font=font) / 26)
    return textwrap.wrap(text, width=max(20, int(width / avg))) or [""]


def page_image(page_title: str, chart: Chart, filters: str, data_through: str, made: str, number: int, total: int,
               notice: str = ""):
    """One PDF page: page and chart titles, the filters, the chart, its notes, the notice (if any) and a footer."""
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
    notice_lines = _lines(draw, notice, _font(13), width) if notice else []
    room = PAGE_SIZE[1] - y - MARGIN - 30 - 22 * len(notes) - 17 * len(notice_lines) - (10 if notice else 0)
    image = Image.open(io.BytesIO(png(chart.figure))).convert("RGB")
    scale = min(width / image.width, room / image.height, 1.5)
    image = image.resize((int(image.width * scale), int(image.height * scale)), Image.LANCZOS)
    page.paste(image, (MARGIN, y))
    y += image.height + 12
    for line in notes:
        draw.text((MARGIN, y), line, fill="#444", font=_font(16))
        y += 22
    y = PAGE_SIZE[1] - MARGIN - 8 - 17 * len(notice_lines)
    for line in notice_lines:
        draw.text((MARGIN, y), line, fill="#333", font=_font(13))
        y += 17
    footer = f"Treatment outcomes · {page_title} · made {made} · page {number} of {total} · counts of 1–10 are hidden"
    draw.text((MARGIN, PAGE_SIZE[1] - MARGIN + 10), footer, fill="#777", font=_font(14))
    return page


def pdf(page_title: str, charts: list[Chart], filters: str, data_through: dt.date | str,
        made: dt.datetime | None = None, notice: str = "") -> bytes:
    """A PDF with one chart per A4 landscape page, each page carrying the page title and the active filters.

    The filters are also written into the document's subject, so they can be read without the images. A
    `notice` (such as the 42 CFR part 2 redisclosure notice) is printed at the foot of every page and follows
    the filters in the subject.
    """
    if not charts:
        raise ValueError("this page has no charts to export")
    made_text = f"{(made or dt.datetime.now()):%d %b %Y %H:%M}"
    through = f"{data_through:%d %b %Y}" if isinstance(data_through, dt.date) else str(data_through)
    pages = [page_image(page_title, c, filters, through, made_text, i + 1, len(charts), notice)
             for i, c in enumerate(charts)]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=150.0,
                  title=f"Treatment outcomes: {page_title}",
                  subject=f"Filters: {filters}" + (f"\n\n{notice}" if notice else ""),
                  keywords=f"data through {through}", creator="Treatment outcomes dashboard")
    return out.getvalue()
