"""Terms a chart or its title uses, each explained in a few plain words (the "What it means" part of a chart's
definition)."""

from __future__ import annotations

TERMS = {
    "3-sigma limits": (
        "The dotted lines: how far a month's rate would wander by chance alone, given how many clients it "
        "counts (wider for small months). A point outside them, or a long run on one side of the centre line, "
        "is a real change worth a look."
    ),
    "Kaplan–Meier": (
        "A standard way to draw how many stay in treatment over time that also counts clients who are still "
        "in care or who finished: each counts for the days seen so far, so recent admissions do not pull the "
        "curve down."
    ),
    "FUI-aligned": (
        "Counted the way the national measure of follow-up after residential or withdrawal care (HEDIS FUI) "
        "counts it, adapted to this provider's own services."
    ),
    "median": "The middle value: half of the clients are above it and half below.",
    "case mix": (
        "The kind of clients a site serves (age, substance, living situation and so on); adjusting for it "
        "compares sites as if they served the same clients."
    ),
}
# Chart kinds that always use a term.
BY_KIND = {"p_chart": ["3-sigma limits"], "p_chart_grid": ["3-sigma limits"], "median_bars": ["median"]}
# Words in a title or summary that bring a term in.
BY_WORD = {
    "kaplan": "Kaplan–Meier",
    "retention": "Kaplan–Meier",
    "fui": "FUI-aligned",
    "median": "median",
    "case mix": "case mix",
    "case-mix": "case mix",
}


def terms_for(kind: str | None, *texts: str) -> list[tuple[str, str]]:
    """(term, explanation) for each term a chart of `kind` with these title and summary texts uses, in order."""
    found = list(BY_KIND.get(kind or "", []))
    low = " ".join(texts).lower()
    found += [term for word, term in BY_WORD.items() if word in low]
    return [(t, TERMS[t]) for t in dict.fromkeys(found)]
