"""The knob coverage of the mutation run, as the parity appendix shows it.

``tests/test_mutations.py`` plants one wrong version per knob a catalogue row turns on (and every
trap that changes a model's forward) and records, per mutant and row, the first conformance check
that failed; it writes the record to ``results/mutation_coverage.json`` and fails while that file
differs from its run. This module only renders the record: one table per family.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def _killed_by(rows: dict[str, str | None]) -> str:
    counts = Counter("**survived**" if check is None else check for check in rows.values())
    return ", ".join(f"{check} ({n})" if n > 1 else check for check, n in counts.items())


def coverage_summary(record: dict[str, Any]) -> dict[str, int]:
    """Mutants, (mutant, row) runs, survivors, and mutants that no row turns on."""
    mutants = record["mutants"]
    runs = [check for m in mutants for check in m["killed_by"].values()]
    return {
        "mutants": sum(bool(m["killed_by"]) for m in mutants),
        "runs": len(runs),
        "survivors": sum(check is None for check in runs),
        "off everywhere": sum(not m["killed_by"] for m in mutants),
    }


def coverage_markdown(record: dict[str, Any]) -> str:
    """Markdown: a summary line, then (folded in a dropdown) per family its rows and one line per knob its rows turn on
    (the wrong versions planted, the rows that turn the knob on, the check that caught each),
    the knobs no row of it turns on, and the traps that change no model's forward.

    ``record``: the JSON object of ``results/mutation_coverage.json``.
    """
    s = coverage_summary(record)
    lines = [
        f"**{s['mutants']} mutants, {s['runs']} runs (mutant x row that turns its knob on), "
        f"{s['survivors']} survived.** Each run is the conformance check named below, on the row "
        "unmutated (it passes) and mutated (it fails with a parity mismatch); checks are tried "
        f"cheapest first: {', '.join(record['checks'])}.",
        "",
    ]
    lines += [
        f":::{{dropdown}} The knobs of each of the {len(record['families'])} families: the wrong "
        "versions planted, the rows that turn each knob on, the check that caught each",
        "",
    ]
    by_knob: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in record["mutants"]:
        for family in m["family"]:
            by_knob.setdefault((family, m["knob"]), []).append(m)
    for family, entry in record["families"].items():
        lines += [f"**{family}** (rows: {', '.join(entry['rows'])})", ""]
        lines += ["| knob | wrong versions planted | rows | caught by |", "|---|---|---|---|"]
        for knob in entry["knobs"]:
            planted, caught = [], {}
            for m in by_knob[(family, knob)]:
                on = {r: c for r, c in m["killed_by"].items() if r in entry["rows"]}
                if on:
                    planted.append(f"{m['wrong']} (trap)" if m["trap"] else m["wrong"])
                    caught.update({f"{r} / {m['wrong']}": c for r, c in on.items()})
            rows = ", ".join(entry["knobs"][knob]["rows"])
            lines.append(f"| {knob} | {'; '.join(planted)} | {rows} | {_killed_by(caught)} |")
        lines.append("")
        off = entry["knobs_no_row_turns_on"]
        if off:
            lines += [f"No row of {family} turns on: {'; '.join(off)}.", ""]
        for knob, why in entry["not_forward_knobs"].items():
            lines += [f"Not read by the forward: {knob}: {why}.", ""]
    lines += [":::", ""]
    traps = record["traps_not_in_a_model"]
    lines.append(
        f"Traps that change no model's forward ({len(traps)}), so not mutants here: "
        + "; ".join(f"{title} ({why})".replace("$", r"\$") for title, why in traps.items())
        + "."
    )
    return "\n".join(lines)
