"""demos.traps.show: what a chapter prints for its traps (measured once each, every field shown)."""

from __future__ import annotations

from demos.traps import Measured, Trap, show


def test_show_prints_each_trap_measured_once(capsys):
    calls = []

    def measure(right: float, wrong: float):
        def run() -> Measured:
            calls.append(right)
            return Measured(right, wrong, 1e-5, "logits of a tiny model, fp32")

        return run

    traps = [
        Trap(
            "llama2",
            "Halves swapped",
            "y = bad(x)",
            "y = good(x)",
            "every score",
            measure(3e-7, 0.5),
        ),
        Trap("llama2", "Second", "w()", "r()", "the last token " * 12, measure(0.0, 12.5)),
    ]
    show(traps)
    out = capsys.readouterr().out
    assert calls == [3e-7, 0.0]  # each measured once, in order
    first, second = out.split("\n\n")
    assert first.splitlines()[:5] == [
        "Halves swapped",
        "  right:",
        "    y = good(x)",
        "  wrong:",
        "    y = bad(x)",
    ]
    assert "  compared: logits of a tiny model, fp32" in first
    assert "  max |right - reference| = 3e-07" in first
    assert "  max |wrong - reference| = 0.5" in first
    assert "  tolerance                 1e-05" in first
    assert "  max |wrong - reference| = 12" in second  # two significant digits
    assert max(len(line) for line in out.splitlines()) <= 76  # the long "where" wraps
    assert " ".join(second.split()).count("the last token") == 12  # nothing lost in wrapping
