"""The chapter helpers report parity honestly."""

from __future__ import annotations

import math

import pytest
import torch

from demos.book import max_abs_diff, parity_report


def test_parity_report_passes_and_fails_at_the_tolerance():
    a = torch.zeros(3)
    report = parity_report({"x": (a, a + 1e-6)}, tolerance=1e-5)
    assert report.verdict.startswith("PARITY OK")
    assert (
        "over 1 comparisons (tolerance 1e-05: 0.1 of it; a pass needs at most 0.5 of it)"
        in (report.splitlines()[1])
    )
    report = parity_report({"x": (a, a), "y": (a, a + 1e-3)}, tolerance=1e-5)
    assert report.verdict.startswith("PARITY FAILED") and "1 of 2 tensors" in report.verdict
    assert "1.000e-03" in report.splitlines()[1]


def test_parity_report_puts_the_verdict_first_naming_the_reference_and_versions():
    import transformers
    import trl

    a = torch.zeros(3)
    pairs = {"logits": (a, a), "grad w": (a, a), "grad b": (a, a)}
    report = parity_report(pairs)
    first, largest, why = report.splitlines()[:3]
    assert first == (
        f"PARITY OK: ours = transformers {transformers.__version__} (torch {torch.__version__}) "
        "on the logits and 2 gradients"
    )
    assert largest.startswith(
        "largest |ours - transformers| / max(1, max |transformers|) = 0.000e+00"
    )
    assert "exact 0" in why and "same operations in the same order" in why and "float32" in why
    assert report.splitlines()[6:] == [
        " 0.000e+00  logits",
        " 0.000e+00  grad w",
        " 0.000e+00  grad b",
    ]
    trl_report = parity_report({"loss": (a, a + 1e-7)}, reference="trl")
    assert trl_report.verdict.startswith(f"PARITY OK: ours = trl {trl.__version__} (torch ")
    assert "rounding" in trl_report.splitlines()[2] and "transformers" not in trl_report
    with pytest.raises(ValueError, match="reference .'no-such-package'. must name an installed"):
        parity_report(pairs, reference="no-such-package")


def test_parity_report_folds_the_tensor_list_in_html_and_reads_verdict_first_as_text():
    from IPython.core.formatters import DisplayFormatter

    a = torch.zeros(3)
    report = parity_report({"logits": (a, a), "grad model.w": (a, a + 1.0)}, tolerance=1e-5)
    bundle, _ = DisplayFormatter().format(report)
    assert bundle["text/plain"].splitlines()[0] == report.verdict  # Jupyter's and Colab's text
    page = bundle["text/html"]
    assert page.index(report.verdict) < page.index("<details")  # the verdict before the list
    folded = page[page.index("<details") :]
    assert '<details class="parity-tensors">' in folded  # closed: no "open" attribute
    # a line break between the summary and the list: the first row starts a line of its own in
    # the page's text (a one-row report read "... each 0.000e+00 logits" as one line)
    assert "</summary>\n<pre" in folded
    assert "grad model.w  &lt;- over half the tolerance" in folded and "logits" in folded
    assert "grad model.w" not in page[: page.index("<details")]


def test_a_comparison_passes_only_within_half_its_tolerance():
    """The margin: 0.4 of the tolerance passes, 0.6 fails, whatever the tolerance's origin."""
    a = torch.zeros(3)
    assert parity_report({"x": (a, a + 4e-6)}, tolerance=1e-5).verdict.startswith("PARITY OK")
    report = parity_report({"x": (a, a + 6e-6)}, tolerance=1e-5)
    assert report.verdict.startswith("PARITY FAILED") and "0.6 of it" in report.splitlines()[1]
    assert parity_report({"x": (a, a + 6e-6)}).verdict.startswith("PARITY FAILED")  # the policy's
    exact = parity_report({"x": (a, a)}, tolerance=0.0)
    assert exact.verdict.startswith("PARITY OK") and "(tolerance 0e+00: exact;" in exact
    assert parity_report({"x": (a, a + 1e-30)}, tolerance=0.0).verdict.startswith("PARITY FAILED")


def test_the_policy_tolerance_is_relative_above_one_and_states_its_reason():
    big = torch.full((3,), 100.0)
    report = parity_report({"logits": (big, big + 4e-4)})  # 4e-6 of the scale: passes
    assert report.verdict.startswith("PARITY OK")
    assert "/ max(1, max |transformers|) = 3.967e-06 over" in report.splitlines()[1]
    assert report.splitlines()[3].startswith("Tolerance: float32 with reductions")
    absolute = parity_report({"logits": (big, big + 4e-4)}, tolerance=1e-5)  # a page's own number
    assert absolute.verdict.startswith("PARITY FAILED")
    bf16 = parity_report({"x": (big.bfloat16(), big.bfloat16())})
    assert "(tolerance 2e-02: 0 of it;" in bf16 and "bfloat16 with reductions" in bf16


def test_tolerance_for_follows_dtype_and_computation():
    from demos.parity import MARGIN, Tolerance, tolerance_for

    assert MARGIN == 0.5
    fp32 = tolerance_for(torch.float32)
    assert fp32.bound == 1e-5 and "170 u" in fp32.why  # 1e-5 / 2**-24 = 168
    assert round(1e-5 / 2**-24) == 168
    assert tolerance_for("float32", "elementwise").bound < fp32.bound
    assert tolerance_for(torch.float64).bound == 1e-12  # vicuna.ipynb's float64 attention
    assert tolerance_for(torch.float64, "elementwise").bound < tolerance_for(torch.float64).bound
    assert tolerance_for(torch.bfloat16, "gradients").bound > tolerance_for(torch.bfloat16).bound
    assert tolerance_for(torch.float32, "gradients") == fp32  # not looser in float32
    for bad in (torch.int64, "float8"):
        with pytest.raises(ValueError, match="must be one of"):
            tolerance_for(bad)
    with pytest.raises(ValueError, match=r"computation \('sums'\) must be one of"):
        tolerance_for(torch.float32, "sums")
    with pytest.raises(ValueError, match="finite number >= 0"):
        Tolerance(-1.0, "no")
    assert Tolerance(1e-5, "x").passes(5e-6) and not Tolerance(1e-5, "x").passes(float("nan"))


def test_random_linear_backward_gives_both_sides_the_same_loss():
    from demos.parity import random_linear_backward

    x, y = torch.randn(4, requires_grad=True), torch.randn(4, requires_grad=True)
    random_linear_backward(2 * x, 2 * y)
    torch.testing.assert_close(x.grad, y.grad, rtol=0, atol=0)  # one w for both
    assert x.grad.abs().min() > 0
    with pytest.raises(ValueError, match="one shape"):
        random_linear_backward(x * 1, torch.zeros(3, requires_grad=True) * 1)
    with pytest.raises(ValueError, match="outputs is empty"):
        random_linear_backward()


def test_max_abs_diff_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        max_abs_diff(torch.zeros(2), torch.zeros(3))


def test_parity_results_markdown_lists_each_parity_row():
    from booktools import parity_results_markdown

    results = {
        "environment": {
            "python": "3.12",
            "torch": "2.x",
            "transformers": "5.x",
            "gpu": "GPU-X",
            "driver": "1",
            "cuda_runtime": "13",
        },
        "counts": {"passed": 3, "failed": 1, "skipped": 0},
        "rows": [
            {
                "test": "tests/layers/test_attention.py::test_a",
                "setting": "cuda-fp32",
                "passed": 2,
                "failed": 1,
                "skipped": 0,
                "max_out_abs": 2.5e-6,
                "max_out_rel": 1e-6,
                "tolerance": {"atol": 1e-5, "grad_atol": 1e-5},
            },
            {
                "test": "tests/t.py::test_bad_input",
                "setting": "-",
                "passed": 1,
                "failed": 0,
                "skipped": 0,
            },
        ],
    }
    results["rows"][0] |= {
        "test": "tests/layers/test_attention.py::test_a_long_name",
        "max_out_scaled": 2.5e-6,
        "max_grad_abs": 4e-6,
        "max_grad_scaled": 2e-6,
    }
    text = parity_results_markdown(results)
    lines = text.splitlines()
    assert "GPU-X" in lines[0] and "3 passed, 1 failed" in lines[2]  # the summary comes first
    assert "Closest to its tolerance:** layers.attention: a long name (cuda-fp32)" in lines[2]
    assert (
        "outputs at 0.25 of it (2.5e-06 / 1e-05); a comparison passes at no more than 0.5"
        in (lines[2])
    )
    # the test's name in words that wrap; one column shows how the row passes
    assert (
        "| layers.attention: a long name | cuda-fp32 | 2/3 | out 2.5e-06 / 1e-05; grad 2.0e-06 / 1e-05 |"
        in lines
    )
    assert lines.index("| component: test | setting | passed | error / tolerance |") > 2
    folded = parity_results_markdown(results, fold=True)
    start = folded.index(":::{dropdown}")
    assert folded.index("| component: test |") > start and "\n:::\n" in folded[start:]
    assert folded.index("Closest to its tolerance") < start
    assert (
        "models/llama/modeling_llama.py::LlamaAttention" in text
    )  # read from demos.layers.attention's docstring
    assert "test_bad_input" not in text


def _documented(x):
    """A docstring that show_source leaves out."""
    return x + 1


def test_show_source_drops_the_docstring_and_dedents():
    from demos.book import show_source
    from demos.layers.norms import RMSNorm

    text = show_source(_documented).data
    assert "A docstring" not in text and "return x + 1" in text
    assert "A docstring" in show_source(_documented, docstring=True).data
    method = show_source(RMSNorm.forward).data
    assert method.startswith("```python\ndef forward(")


def test_show_recorded_shows_the_file_or_explains_its_absence(tmp_path):
    from demos.book import show_recorded

    results = tmp_path / "bench.txt"
    results.write_text("t=1k 0.1 s\n")
    shown = show_recorded(results, "python scripts/bench.py").data
    assert "t=1k 0.1 s" in shown and "python scripts/bench.py" in shown
    missing = show_recorded(tmp_path / "absent.txt", "python scripts/bench.py").data
    assert (
        "absent.txt" in missing and "not here" in missing and "python scripts/bench.py" in missing
    )


# ---- a parity verdict cannot pass on NaN, inf, or nothing compared ----

_ones = torch.ones(3)
NON_FINITE = {
    "NaN in ours": (_ones * math.nan, _ones),
    "NaN in the reference": (_ones, _ones * math.nan),
    "NaN on both sides": (_ones * math.nan, _ones * math.nan),
    "one NaN among good values": (
        torch.tensor([1.0, math.nan, 3.0]),
        torch.tensor([1.0, 2.0, 3.0]),
    ),
    "inf on both sides (inf - inf)": (_ones * math.inf, _ones * math.inf),
    "-inf in ours": (_ones * -math.inf, _ones),
    "inf in the reference": (_ones, torch.tensor([1.0, math.inf, 1.0])),
}


@pytest.mark.parametrize("case", list(NON_FINITE))
def test_parity_report_fails_on_nan_or_inf(case):
    ours, ref = NON_FINITE[case]
    report = parity_report({"good": (_ones, _ones), case: (ours, ref)}, tolerance=1e-5)
    assert report.verdict.startswith("PARITY FAILED")
    assert not math.isfinite(max_abs_diff(ours, ref))


BAD_TOLERANCES = [-1e-5, math.nan, math.inf, "1e-5", True]  # None: the policy's


@pytest.mark.parametrize("tolerance", BAD_TOLERANCES)
def test_parity_report_refuses_a_bad_tolerance(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        parity_report({"x": (_ones, _ones)}, tolerance=tolerance)


def test_parity_report_refuses_an_empty_comparison():
    with pytest.raises(ValueError, match="at least one"):
        parity_report({})
    with pytest.raises(ValueError, match="empty"):
        parity_report({"x": (torch.zeros(0), torch.zeros(0))})


@pytest.mark.parametrize("a, b", [([1.0], torch.ones(1)), (torch.ones(1), 1.0)])
def test_max_abs_diff_refuses_non_tensors(a, b):
    with pytest.raises(ValueError, match="tensor"):
        max_abs_diff(a, b)


@pytest.mark.parametrize("case", [*NON_FINITE, "empty"])
def test_setting_close_fails_on_nan_inf_and_nothing(case, fp32_setting):
    """tests/conftest.py's Setting.close: assert_close alone passes inf == inf, and one inf in the
    reference scaled atol to inf for every other entry; its recorded error kept 0 for NaN."""
    recorder = type(fp32_setting).close.__globals__["RECORDER"]  # the conftest pytest loaded
    ours, ref = NON_FINITE[case] if case != "empty" else (torch.zeros(0), torch.zeros(0))
    with pytest.raises(AssertionError):
        fp32_setting.close(ours, ref)
    if case != "empty":
        assert recorder.errors[recorder.current]["out_abs"] == math.inf


def test_setting_close_does_not_let_one_inf_widen_the_tolerance(fp32_setting):
    ref = torch.tensor([math.inf, 1.0])
    with pytest.raises(AssertionError):
        fp32_setting.close(torch.tensor([math.inf, 1000.0]), ref)


def test_toc_files_reads_the_table_of_contents(tmp_path):
    from booktools import toc_files

    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: Overview\n    chapters:\n      - file: book/models\n"
        "  - caption: Model families\n    chapters:\n      - file: book/a\n      - file: book/b\n"
        "  - caption: Back matter\n    chapters:\n      - file: book/errata\n"
    )
    assert toc_files(tmp_path) == ["book/models", "book/a", "book/b", "book/errata"]
    assert toc_files(tmp_path, with_root=True)[0] == "book/intro"
    assert toc_files(tmp_path, chapters_only=True) == ["book/a", "book/b"]
    assert toc_files(tmp_path, part="Back matter") == ["book/errata"]
    with pytest.raises(ValueError, match="Evaluation"):
        toc_files(tmp_path, part="Evaluation")


def test_parity_report_names_what_it_compares_against_and_the_pages_own_reason():
    a = torch.ones(3)
    report = parity_report(
        {"output": (a, a + 1e-7)},
        reference="torch",
        against="scaled_dot_product_attention",
        why="The reference computes its scale in float32.",
    )
    first, _, why = report.splitlines()[:3]
    assert first.startswith(f"PARITY OK: ours = torch {torch.__version__} (torch ")
    assert first.endswith(") scaled_dot_product_attention on 1 tensor")
    assert why == "The reference computes its scale in float32."
    failed = parity_report({"output": (a, a + 1)}, against="FlopCounterMode", why="unused")
    assert "FlopCounterMode on 1 of 1 tensors" in failed.verdict
    assert "over half the tolerance are marked" in failed.splitlines()[2]  # a failure says where
    for bad in ("", "  ", 3):
        with pytest.raises(ValueError, match="must be a non-empty string or None"):
            parity_report({"output": (a, a)}, why=bad)


def test_string_parity_says_equal_or_where_each_pair_first_differs():
    from demos.book import string_parity

    ok = string_parity({"a": ("USER: hi", "USER: hi")}, "FastChat")
    assert ok == "PARITY OK: ours = FastChat on 1 prompts, equal character for character"
    failed = string_parity({"a": ("USER: hi", "USER: hi"), "b": ("USER: ho", "USER: hi")}, "X")
    assert failed == "PARITY FAILED: ours != X on 1 of 2 prompts (b: from character 7)"
    shorter = string_parity({"c": ("abc", "abcd")}, "X")
    assert "c: from character 3" in shorter  # one is a prefix of the other
    with pytest.raises(ValueError, match="pairs is empty"):
        string_parity({}, "X")
    with pytest.raises(ValueError, match="two strings"):
        string_parity({"t": ("a", 1)}, "X")


def test_a_saved_figure_records_the_smallest_text_it_draws():
    """demos.display.record_figure_text_sizes: the PNG Jupyter shows carries the smallest font size
    that is drawn (a hidden label, an empty one and a tick outside the limits do not count)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure
    from PIL import Image

    from demos.display import FONT_KEY, record_figure_text_sizes

    record_figure_text_sizes()
    record_figure_text_sizes()  # a second call changes nothing
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
    left.plot([0, 1], [0, 1])
    left.set_title("title", fontsize=14)
    left.tick_params(labelsize=7.5)
    right.text(0.5, 0.5, "hidden", fontsize=3, visible=False)
    right.set_xlabel("", fontsize=2)
    right.set_xticks([0.5, 5.0], ["in", "out of the limits"], fontsize=11)
    right.xaxis.get_major_ticks()[1].label1.set_fontsize(4)  # never drawn: outside the limits
    right.set_xlim(0, 1)
    try:
        image = Image.open(io.BytesIO(print_figure(fig, "png")))
        assert float(image.info[FONT_KEY]) == 7.5
        right.text(0.2, 0.2, "small", fontsize=5)
        image = Image.open(io.BytesIO(print_figure(fig, "png")))
        assert float(image.info[FONT_KEY]) == 5
    finally:
        plt.close(fig)
