"""Fixes, in the browser, for what Streamlit draws without an accessible name or a visible focus.

A metric tile's trend line is a Vega chart whose marks carry graphics roles but no names (axe `svg-img-alt`).
The tile's value, change and n are text beside it, so the chart gets one name and its marks are hidden from
assistive technology. A table wider than a phone scrolls inside its box, so the box takes focus and a name
(axe `scrollable-region-focusable`). Installed once per browser tab: a MutationObserver applies both as
elements are drawn.
"""

from __future__ import annotations

import streamlit as st

# A focus ring in the primary colour (6.7:1 on white, 6.0:1 on the sidebar) on everything reached by keyboard;
# Streamlit's own is missing on page links and the main area and faint (0.2 opacity) on the menu button. A
# hover-only Plotly mode bar sits in a band above the figure, over no legend, and stays visible while one of
# its buttons has focus. Metric labels wrap, not cut.
STYLE = """<style>
:focus-visible { outline: 2px solid #0B5CAD !important; outline-offset: 2px; }
[data-baseweb="input"]:focus-within, [data-baseweb="select"] > div:focus-within,
[data-testid="stDateInputField"]:focus-within { outline: 2px solid #0B5CAD; outline-offset: 1px; }
.stElementContainer:has(> [data-testid="stFullScreenFrame"] [data-testid="stPlotlyChart"]) { margin-top: 32px;
  overflow: visible !important; }
[data-testid="stPlotlyChart"] .js-plotly-plot { overflow: visible !important; }
[data-testid="stPlotlyChart"] .modebar-container { top: -32px !important; }
.js-plotly-plot .plotly .modebar--hover:focus-within > :not(.watermark) { opacity: 1 !important; transition: none; }
[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
</style>"""

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
    // a table wider than the screen scrolls inside its box: make the box reachable and named for the keyboard
    document.querySelectorAll('[data-testid="stTable"] > div').forEach((box) => {
      const wide = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
      if (wide && box.getAttribute("tabindex") !== "0") {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", box.querySelector("table")?.getAttribute("aria-label") || "Table");
      } else if (!wide && box.hasAttribute("tabindex")) {
        ["tabindex", "role", "aria-label"].forEach((a) => box.removeAttribute(a));
      }
    });
  };
  new MutationObserver(label).observe(document.body, {childList: true, subtree: true});
  window.addEventListener("resize", label);
  label();
})();
</script>"""


def patch() -> None:
    """Install the fixes in this browser tab (a no-op after the first run)."""
    st.html(STYLE + SCRIPT, unsafe_allow_javascript=True)
