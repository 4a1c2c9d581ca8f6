"""WCAG 2.2 contrast: relative luminance of an sRGB colour and the contrast ratio of two colours."""

from __future__ import annotations

TEXT, LARGE_TEXT, GRAPHICS = 4.5, 3.0, 3.0  # AA minimums (1.4.3 text, 1.4.11 non-text and focus indicators)


def rgb(colour: str) -> tuple[float, float, float]:
    """ "#0b5cad" or "#fff" as three channels from 0 to 1."""
    h = colour.strip().lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) != 6:
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return tuple(int(h[i : i + 2], 16) / 255 for i in (0, 2, 4))


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.2, "relative luminance"): linearised sRGB, weighted 0.2126, 0.7152, 0.0722."""
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(a: str, b: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05) with L1 the lighter: 1 for the same colour, 21 for black on white."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def blend(colour: str, background: str, opacity: float) -> str:
    """`colour` drawn at `opacity` over `background`, as the eye sees it."""
    mixed = (round((opacity * c + (1 - opacity) * b) * 255) for c, b in zip(rgb(colour), rgb(background)))
    return "#" + "".join(f"{v:02x}" for v in mixed)
