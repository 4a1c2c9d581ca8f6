"""An analyst's new `.sql` file with `page:` reaches its director page with no Python change and no restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from outcomes.paths import QUERY_DIR
from outcomes.web import database

ROOT = Path(__file__).resolve().parents[1]

# The engagement share of new IOP episodes as an analyst would write it: a header and one statement, nothing else.
NEW_QUERY = """\
-- title: IOP admissions by track
-- description: >
--   IOP episodes admitted each month, by track, and the share on the evening track. Counts every IOP
--   admission at the selected sites; start/end bound the admission date.
-- definition: |
--   Population: IOP episodes admitted in the start..end range at the selected sites and client group.
--   evening_share = evening admissions / all admissions of the month.
-- page: engagement
-- order: {order}
-- panel:
--   title: New IOP admissions, evening share
-- chart: {{kind: rate_lines, x: month, y: evening_share, n: admissions, y_label: Evening track}}
-- suppress:
--   counts: [admissions, evening]
--   rates:
--     evening_share: [evening, admissions]

with

admitted as (
    select date_trunc('month', admit_date)::date as month, track
    from filtered(episodes, $filters, tracks := $tracks)
    where
        level_of_care = 'iop'
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
),

final as (
    select
        month,
        count(*) as admissions,
        count(*) filter (where track = 'evening') as evening,
        evening / admissions as evening_share
    from admitted
    group by month
)

select * from final
order by month
"""


@pytest.fixture
def queries(tmp_path, monkeypatch, demo_db_path):
    """A copy of the catalog that the app reads, so a test can add a file to it."""
    import streamlit as st

    folder = tmp_path / "queries"
    shutil.copytree(QUERY_DIR, folder)
    monkeypatch.setattr(database, "QUERY_DIR", folder)
    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    return folder


def _subheaders(at) -> list[str]:
    return [s.value for s in at.subheader]


def test_a_new_file_with_page_appears_on_that_page_without_a_restart(queries):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/engagement.py").run()
    assert not at.exception, [e.value for e in at.exception]
    before = _subheaders(at)
    assert "New IOP admissions, evening share" not in before
    charts_before = len(at.get("plotly_chart"))

    (queries / "iop_admissions_by_track.sql").write_text(NEW_QUERY.format(order=25))
    at.run()  # the same server and session: the next rerun reads the new file
    assert not at.exception, [e.value for e in at.exception]
    after = _subheaders(at)
    assert "New IOP admissions, evening share" in after
    # order 25 puts it between the built-in panels at 20 (by week) and 30 (weekly by track)
    assert (
        after.index("Attendance by week since admission")
        < after.index("New IOP admissions, evening share")
        < next(i for i, s in enumerate(after) if s.startswith("Attendance and no-shows by"))
    )
    assert len(at.get("plotly_chart")) == charts_before + 1
    # like every panel: its definition, CSV download and table expander
    csvs = [d for d in at.get("download_button") if d.label == "CSV"]
    assert len(csvs) == charts_before + 1
    assert "table-iop_admissions_by_track" in at.session_state


def test_a_new_file_goes_to_the_end_without_order_and_breaks_nothing_when_bad(queries):
    (queries / "iop_admissions_by_track.sql").write_text(NEW_QUERY.format(order=99))
    (queries / "broken.sql").write_text("-- title: broken\n-- description: d\n-- page: engagement\nselect 1 as n\n")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/engagement.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert _subheaders(at)[-1] == "New IOP admissions, evening share"
    at.switch_page("pages/explore.py").run()
    assert any("broken.sql" in w.value for w in at.warning), "Explore names the file left out"
