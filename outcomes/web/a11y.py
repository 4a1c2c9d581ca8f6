"""Fixes, in the browser, for what Streamlit draws without an accessible name.

A metric tile's trend line is a Vega chart whose marks carry graphics roles but no names (axe `svg-img-alt`).
The tile's value, change and n are text beside it, so the chart gets one name and its marks are hidden from
assistive technology. Installed once per browser tab: a MutationObserver labels every tile as it is drawn.
"""

from __future__ import annotations

import streamlit as st

SCRIPT = """<script>
(() => {
  if (window.__outcomesA11y) return;
  window.__outcomesA11y = true;
  const label = () => {
    document.querySelectorAll('[data-testid="stMetric"] .vega-embed').forEach((chart) => {
      const tile = chart.closest('[data-testid="stMetric"]');
      const name = tile.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() || "this measure";
      const text = `Trend of ${name} over the recent periods`;
      if (chart.getAttribute("aria-label") !== text) {
        chart.setAttribute("role", "img");
        chart.setAttribute("aria-label", text);
      }
      chart.querySelectorAll("svg, canvas, [role]").forEach((mark) => {
        if (mark.getAttribute("aria-hidden") !== "true") mark.setAttribute("aria-hidden", "true");
      });
    });
  };
  new MutationObserver(label).observe(document.body, {childList: true, subtree: true});
  label();
})();
</script>"""


def patch() -> None:
    """Install the fixes in this browser tab (a no-op after the first run)."""
    st.html(SCRIPT, unsafe_allow_javascript=True)
