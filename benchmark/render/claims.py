"""reports/claims.md: every claim of the seed papers with its verdict (benchmark.results.claims), as one
table (the README's claims block copies it) and, per claim, the test and the records behind it."""

from __future__ import annotations

import pandas as pd

from benchmark.render.tables import markdown_table

SIGNS = {"greater": ">", "less": "<", "within": "within ±"}
MARKS = {"holds": "✅ holds", "fails": "❌ fails", "inconclusive": "❔ inconclusive", "not tested": "— not tested"}


def test_text(verdict: dict) -> str:
    """"d = metric(a) − metric(b) > t" in words."""
    if "metric" not in verdict:
        return "—"
    subject = f"{verdict['a']} − {verdict['b']}" if verdict.get("b") else verdict["a"]
    return f"{verdict['metric']}: {subject} {SIGNS[verdict['direction']]} {verdict['threshold']:g} {verdict['unit']}"


def measured_text(verdict: dict) -> str:
    """"d [low, high]" of the measured difference (or value), or why there is none."""
    if verdict["verdict"] == "not tested":
        return verdict["reason"]
    text = f"{verdict['value']:+.2f} [{verdict['ci_low']:+.2f}, {verdict['ci_high']:+.2f}] {verdict['unit']}"
    details = [f"{len(verdict['seeds'])} seeds"] if verdict.get("seeds") else []
    details += [f"{verdict['samples']:,} samples"] if verdict.get("samples") else []
    details += [f"at {verdict['at']}"] if verdict.get("at") else []
    details += [verdict["reason"]] if verdict.get("reason") else []
    return text + (f" ({'; '.join(details)})" if details else "")


def claims_table(verdicts: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([[v["paper"], v["claim"], MARKS[v["verdict"]], test_text(v), measured_text(v),
                          v.get("reference") or ""] for v in verdicts],
                        columns=["paper", "claim", "verdict", "test", "measured: difference [95 % CI]",
                                 "paper's figure (reference)"])


def claims_markdown(verdicts: list[dict]) -> str:
    counts = {kind: sum(v["verdict"] == kind for v in verdicts) for kind in MARKS}
    lines = ["# The seed papers' claims, tested", "",
             "Each claim of params.yaml `claims:` is tested over the committed records: the 95 % interval of the "
             "measured difference (paired bootstrap over seeds and test samples for accuracies, Student's t over "
             "seeds otherwise) is held against the threshold. **holds**: the interval lies on the claimed side; "
             "**fails**: on the other side; **inconclusive**: it spans the threshold; **not tested**: what is "
             "missing. A paper's own figure is a labelled reference, never a result. "
             + ", ".join(f"{count} {kind}" for kind, count in counts.items()) + ".", ""]
    if verdicts:
        lines.append(markdown_table(claims_table(verdicts)))
    lines += ["", "## Records behind each verdict", ""]
    for verdict in verdicts:
        runs = ", ".join(f"`{run}`" for run in verdict["runs"]) or verdict.get("source") or "—"
        note = f" {verdict['note']}" if verdict.get("note") else ""
        lines.append(f"- **{verdict['id']}** ({MARKS[verdict['verdict']]}): {runs}.{note}")
    return "\n".join(lines) + "\n"
