"""The model chapters' parity comparisons, re-run here at 1 and 2 torch threads (no notebook executed).

Each chapter in the "Model families" part builds its tiny models from catalogue rows
(``ROWS["mistral-W3"]``); for each row a page uses, this runs what the pages' parity cells compare
(:func:`demos.parity.compare_lm`: the logits and every gradient of one random linear loss) and what
the pages that decode compare (our cached decoding, token by token, against the reference's forward
of the sequence so far), then requires the page's verdict (:func:`demos.parity.parity_report`, the
policy's tolerance) to pass: every error at most half its tolerance. Each comparison also goes
through ``Setting.close``, so that the parity appendix (book/parity_report.ipynb, which runs the
``cpu-fp32`` tests with ``PARITY_RESULTS`` set) lists one row per page, its closest comparison in
the same terms as the page: ``max |ours - ref| / max(1, max |ref|)`` over the float32 tolerance.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from booktools import toc_files
from demos.catalog import ROWS, T
from demos.parity import compare_lm, parity_report

ROOT = Path(__file__).resolve().parents[1]
PAGE_ROWS = {  # chapter -> the catalogue rows its notebook builds
    Path(page).name: sorted(
        set(re.findall(r'ROWS\[\\"([\w.-]+)\\"\]', (ROOT / f"{page}.ipynb").read_text()))
    )
    for page in toc_files(ROOT, part="Model families")
}
PAGE_ROWS = {page: rows for page, rows in PAGE_ROWS.items() if rows}


def page_pairs(row_name: str, device: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """compare_lm's pairs for one row on ``(2, T)`` tokens, and cached decoding (a prompt of 3, then
    one token a call) against the reference's last logits of each prefix."""
    ours, reference = ROWS[row_name].pair(device)
    ids = torch.randint(0, reference.config.vocab_size, (2, T), device=device)
    pairs = {f"{row_name}: {k}": v for k, v in compare_lm(ours, reference, ids).items()}
    with torch.no_grad():
        cache = ours.new_cache(2)
        steps = [ours(ids[:, :3], cache)] + [ours(ids[:, i : i + 1], cache) for i in range(3, T)]
        prefixes = [reference(ids[:, :3]).logits] + [
            reference(ids[:, : i + 1]).logits[:, -1:] for i in range(3, T)
        ]
    pairs[f"{row_name}: logits, cached, token by token"] = (
        torch.cat(steps, dim=1),
        torch.cat(prefixes, dim=1),
    )
    return pairs


def check_page(page: str, threads: int, setting) -> None:
    """Every row ``page`` builds: its verdict passes, and each comparison passes ``setting.close``
    (which records it for the appendix), at ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        pairs = {}
        for row_name in PAGE_ROWS[page]:
            pairs |= page_pairs(row_name, setting.device)
        report = parity_report(pairs)
        assert report.verdict.startswith("PARITY OK"), f"{page} at {threads} threads:\n{report}"
        for name, (a, b) in pairs.items():
            setting.close(a.detach(), b.detach(), grad=": grad " in name, msg=name)
    finally:
        torch.set_num_threads(before)


threads = pytest.mark.parametrize("threads", [1, 2], ids=["1thread", "2threads"])
# One test per chapter, so that the appendix shows one row per chapter (its rows are per test).


def test_every_model_chapter_with_rows_has_its_test():
    defined = {name.removeprefix("test_").removesuffix("_page") for name in globals()}
    assert set(PAGE_ROWS) <= defined, f"add a test for {sorted(set(PAGE_ROWS) - defined)}"
    assert all(name in ROWS for rows in PAGE_ROWS.values() for name in rows)


@threads
def test_falcon_page(fp32_device_setting, threads):
    check_page("falcon", threads, fp32_device_setting)


@threads
def test_gemma_page(fp32_device_setting, threads):
    check_page("gemma", threads, fp32_device_setting)


@threads
def test_llama2_page(fp32_device_setting, threads):
    check_page("llama2", threads, fp32_device_setting)


@threads
def test_llama3_page(fp32_device_setting, threads):
    check_page("llama3", threads, fp32_device_setting)


@threads
def test_mamba_page(fp32_device_setting, threads):
    check_page("mamba", threads, fp32_device_setting)


@threads
def test_mistral_page(fp32_device_setting, threads):
    check_page("mistral", threads, fp32_device_setting)


@threads
def test_orca2_page(fp32_device_setting, threads):
    check_page("orca2", threads, fp32_device_setting)


@threads
def test_persimmon_page(fp32_device_setting, threads):
    check_page("persimmon", threads, fp32_device_setting)


@threads
def test_phi_page(fp32_device_setting, threads):
    check_page("phi", threads, fp32_device_setting)


@threads
def test_phi3_page(fp32_device_setting, threads):
    check_page("phi3", threads, fp32_device_setting)


@threads
def test_pythia_page(fp32_device_setting, threads):
    check_page("pythia", threads, fp32_device_setting)


@threads
def test_qwen_page(fp32_device_setting, threads):
    check_page("qwen", threads, fp32_device_setting)


@threads
def test_vicuna_page(fp32_device_setting, threads):
    check_page("vicuna", threads, fp32_device_setting)


@threads
def test_xgen_page(fp32_device_setting, threads):
    check_page("xgen", threads, fp32_device_setting)


@threads
def test_yi_page(fp32_device_setting, threads):
    check_page("yi", threads, fp32_device_setting)


@threads
def test_yi15_page(fp32_device_setting, threads):
    check_page("yi15", threads, fp32_device_setting)


def test_integer_pairs_pass_only_when_equal():
    """Token ids and masks beside floating tensors: an id off by one fails even where the floating
    tolerance (bf16, relative to ids of ~32,000) would let 1/32,000 through; alone, they are exact."""
    ids = torch.tensor([31999, 5, 7])
    close = (torch.ones(3, dtype=torch.bfloat16), torch.ones(3, dtype=torch.bfloat16))
    assert parity_report({"ids": (ids, ids.clone())}).verdict.startswith("PARITY OK")
    assert parity_report({"ids": (ids, ids.clone()), "x": close}).verdict.startswith("PARITY OK")
    off = ids.clone()
    off[0] += 1
    assert parity_report({"ids": (ids, off), "x": close}).verdict.startswith("PARITY FAILED")
    assert parity_report({"mask": (ids > 6, off > 6)}).verdict.startswith("PARITY OK")
    assert parity_report({"mask": (ids > 6, ids > 4)}).verdict.startswith("PARITY FAILED")
