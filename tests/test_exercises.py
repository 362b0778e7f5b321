"""The exercise checkers accept right answers and explain wrong ones."""

from __future__ import annotations

import torch

from demos.exercises import check_kv_cache_bytes, check_repeat_kv


def test_repeat_kv_checker_accepts_a_correct_answer():
    result = check_repeat_kv(lambda x, n: torch.repeat_interleave(x, n, dim=1))
    assert result.ok, result.message


def test_repeat_kv_checker_names_the_tiling_mistake():
    result = check_repeat_kv(lambda x, n: x.repeat(1, n, 1, 1))
    assert not result.ok
    assert "tiled" in result.message and "expected" in result.message and "index" in result.message


def test_repeat_kv_checker_reports_wrong_shape_and_errors():
    assert "shape (1, 2, 3, 4), expected (1, 4, 3, 4)" in check_repeat_kv(lambda x, n: x).message
    result = check_repeat_kv(lambda x, n: 1 / 0)
    assert not result.ok and "ZeroDivisionError" in result.message
    assert "returned NoneType" in check_repeat_kv(lambda x, n: None).message


def test_repeat_kv_checker_reports_a_wrong_value_without_a_hint():
    result = check_repeat_kv(lambda x, n: torch.repeat_interleave(x, n, dim=1) + 1e-3)
    assert not result.ok and "Likely cause" not in result.message


def kv_bytes(layers, g, d, seq_len, batch, nbytes):
    return 2 * layers * g * d * seq_len * batch * nbytes


def test_kv_cache_checker_accepts_a_correct_answer():
    assert check_kv_cache_bytes(kv_bytes).ok


def test_kv_cache_checker_explains_a_missing_factor_two():
    result = check_kv_cache_bytes(lambda *args: kv_bytes(*args) // 2)
    assert not result.ok and "only keys or only values" in result.message


def test_kv_cache_checker_explains_a_doubled_factor():
    result = check_kv_cache_bytes(lambda *args: kv_bytes(*args) * 2)
    assert not result.ok and "2x too large" in result.message


def test_split_fused_qkv_checker_accepts_a_correct_answer():
    from demos.exercises import check_split_fused_qkv

    def split(fused, h, g, d):
        b, t, _ = fused.shape
        x = fused.view(b, t, g, h // g + 2, d)
        q = x[:, :, :, : h // g].reshape(b, t, h, d).transpose(1, 2)
        return q, x[:, :, :, -2].transpose(1, 2), x[:, :, :, -1].transpose(1, 2)

    assert check_split_fused_qkv(split).ok


def test_split_fused_qkv_checker_names_the_block_layout_mistake():
    from demos.exercises import _split_qkv_blocks, check_split_fused_qkv

    result = check_split_fused_qkv(_split_qkv_blocks)
    assert not result.ok and "group by group" in result.message


def test_split_fused_qkv_checker_reports_shapes_and_errors():
    from demos.exercises import check_split_fused_qkv

    assert "expected (q, k, v)" in check_split_fused_qkv(lambda f, h, g, d: f).message
    assert "ZeroDivisionError" in check_split_fused_qkv(lambda f, h, g, d: 1 / 0).message
    result = check_split_fused_qkv(lambda f, h, g, d: (f, f, f))
    assert not result.ok and "has shape" in result.message
