"""Theme contrast: the WCAG relative-luminance formula, then every colour the theme and the charts use for text,
controls, focus rings and data, against the thresholds of WCAG 2.2 AA (1.4.3, 1.4.11, 2.4.7)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from outcomes.present import annotation_marks, casemix_charts, signal_marks, theme
from outcomes.present.contrast import GRAPHICS, TEXT, blend, luminance, ratio
from outcomes.web import a11y

ROOT = Path(__file__).resolve().parents[1]
THEME = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["theme"]
WHITE = "#FFFFFF"
FADED = 0.6  # Streamlit draws captions (st.caption, help text) as the text colour at 60% opacity
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def test_the_formula_on_known_values():
    assert luminance("#000000") == 0 and luminance("#ffffff") == pytest.approx(1)
    assert ratio("#000", "#fff") == pytest.approx(21)
    assert ratio("#fff", "#000") == ratio("#000", "#fff")
    assert ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the lightest grey passing AA on white
    assert ratio("#777777", "#ffffff") < TEXT
    assert ratio("#FF4B4B", "#ffffff") == pytest.approx(3.30, abs=0.05)  # Streamlit's default primary: fails
    assert blend("#000000", "#ffffff", 0.5) == "#808080"
    with pytest.raises(ValueError):
        ratio("red", "#fff")


@pytest.mark.parametrize(
    "what, fg, bg, minimum",
    [
        ("text", THEME["textColor"], THEME["backgroundColor"], TEXT),
        ("sidebar text", THEME["textColor"], THEME["secondaryBackgroundColor"], TEXT),
        ("captions", blend(THEME["textColor"], WHITE, FADED), THEME["backgroundColor"], TEXT),
        (
            "sidebar captions",
            blend(THEME["textColor"], THEME["secondaryBackgroundColor"], FADED),
            THEME["secondaryBackgroundColor"],
            TEXT,
        ),
        (
            "code in a caption",
            blend(THEME["codeTextColor"], THEME["codeBackgroundColor"], FADED),
            THEME["codeBackgroundColor"],
            TEXT,
        ),
        ("links", THEME["linkColor"], THEME["backgroundColor"], TEXT),
        ("primary as text", THEME["primaryColor"], THEME["backgroundColor"], TEXT),
        ("white on a primary button", WHITE, THEME["primaryColor"], TEXT),
        (
            "selected option (primary on its 10% tint)",
            THEME["primaryColor"],
            blend(THEME["primaryColor"], WHITE, 0.1),
            TEXT,
        ),
        ("focus ring on the page", THEME["primaryColor"], THEME["backgroundColor"], GRAPHICS),
        ("focus ring in the sidebar", THEME["primaryColor"], THEME["secondaryBackgroundColor"], GRAPHICS),
    ],
)
def test_theme_text_and_controls(what, fg, bg, minimum):
    assert ratio(fg, bg) >= minimum, f"{what}: {fg} on {bg} is {ratio(fg, bg):.2f}:1, needs {minimum}:1"


def test_the_focus_ring_is_the_primary_colour():
    assert f"outline: 2px solid {THEME['primaryColor']}" in a11y.STYLE


def chart_colours() -> dict[str, str]:
    """Every colour a chart draws data, limits, reference lines or markers for hidden points in."""
    colours = {f"series {i}": c for i, c in enumerate(theme.SERIES_COLOURS)}
    colours |= {f"level {k}": c for k, c in theme.LEVEL_COLOURS.items()}
    colours |= {f"chartCategoricalColors {i}": c for i, c in enumerate(THEME["chartCategoricalColors"])}
    colours |= {
        "benchmark": theme.BENCHMARK_COLOUR,
        "unknown level": theme.level_colour("none"),
        "signal": signal_marks.SIGNAL_COLOUR,
        "program event": annotation_marks.EVENT_COLOUR,
        "funnel limits": casemix_charts.LIMIT_COLOUR,
        "hidden site": casemix_charts.HIDDEN_COLOUR,
        "mode bar": theme.pio.templates["outcomes"].layout.modebar.color,
    }
    colours |= {f"flag {k}": c for k, (c, _) in casemix_charts.FLAG_STYLE.items()}
    return colours


@pytest.mark.parametrize("name, colour", chart_colours().items())
def test_chart_colours_reach_3_to_1_on_the_plot(name, colour):
    assert ratio(colour, WHITE) >= GRAPHICS, f"{name}: {colour} is {ratio(colour, WHITE):.2f}:1 on white"


def test_chart_colours_stay_okabe_ito():
    assert theme.PALETTE == OKABE_ITO
    assert set(theme.SERIES_COLOURS) <= set(OKABE_ITO) and set(theme.LEVEL_COLOURS.values()) <= set(OKABE_ITO)
    assert THEME["chartCategoricalColors"] == theme.SERIES_COLOURS
    assert len(set(theme.LEVEL_COLOURS.values())) == len(theme.LEVEL_COLOURS), "each level its own colour"
    # the three Okabe-Ito colours below 3:1 on white are the ones left out of lines and markers
    assert sorted(c for c in OKABE_ITO if ratio(c, WHITE) < GRAPHICS) == ["#56B4E9", "#E69F00", "#F0E442"]
