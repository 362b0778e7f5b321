"""The exercise checkers accept right answers and explain wrong ones."""

from __future__ import annotations

import torch

from demos.exercises.llama2 import check_kv_cache_bytes, check_repeat_kv
from demos.exercises.mamba import check_ssm_step


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


# ---- Mistral: the sliding-window mask ----


def test_sliding_window_mask_checker_accepts_a_correct_answer():
    from demos.exercises.mistral import check_sliding_window_mask

    def mask(t, s, window):
        q = torch.arange(s - t, s)[:, None]
        k = torch.arange(s)[None, :]
        return (k <= q) & (k > q - window)

    assert check_sliding_window_mask(mask).ok


def test_sliding_window_mask_checker_names_the_off_by_one():
    from demos.exercises.mistral import check_sliding_window_mask

    def mask(t, s, window):  # window + 1 keys, the paper's wording
        q = torch.arange(s - t, s)[:, None]
        k = torch.arange(s)[None, :]
        return (k <= q) & (k >= q - window)

    result = check_sliding_window_mask(mask)
    assert not result.ok and "window + 1 keys" in result.message


def test_sliding_window_mask_checker_explains_other_mistakes():
    from demos.exercises.mistral import check_sliding_window_mask

    def from_zero(t, s, window):  # queries placed at positions 0..t-1 instead of s-t..s-1
        q = torch.arange(t)[:, None]
        k = torch.arange(s)[None, :]
        return (k <= q) & (k > q - window)

    result = check_sliding_window_mask(from_zero)
    assert not result.ok and "last* t positions" in result.message
    result = check_sliding_window_mask(lambda t, s, w: torch.ones(t, s, dtype=torch.bool))
    assert not result.ok and "should be hidden" in result.message
    assert "expected shape" in check_sliding_window_mask(lambda t, s, w: torch.ones(2, 2)).message
    assert "ZeroDivisionError" in check_sliding_window_mask(lambda t, s, w: 1 / 0).message


# ---- Mamba: one step of the selective SSM ----


def test_ssm_step_checker_accepts_a_correct_answer():
    def step(x, u, delta, A, B, C):  # written independently of the reference: einsum form
        x_new = torch.exp(torch.einsum("be,en->ben", delta, A)) * x + torch.einsum(
            "be,bn->ben", delta * u, B
        )
        return x_new, torch.einsum("ben,bn->be", x_new, C)

    result = check_ssm_step(step)
    assert result.ok, result.message


def test_ssm_step_checker_names_the_common_mistakes():
    from demos.exercises.mamba import (
        _ssm_step_euler_A,
        _ssm_step_no_delta_on_B,
        _ssm_step_old_state,
    )

    for wrong, words in [
        (_ssm_step_euler_A, "Euler"),
        (_ssm_step_old_state, "before this token's update"),
        (_ssm_step_no_delta_on_B, "without the step size"),
    ]:
        result = check_ssm_step(wrong)
        assert not result.ok and words in result.message, result.message


def test_ssm_step_checker_reports_shapes_errors_and_plain_wrong_values():
    assert "expected (x_new, y)" in check_ssm_step(lambda *a: a[0]).message
    assert "expected shape (1, 2)" in check_ssm_step(lambda x, *a: (x, x)).message
    assert "ZeroDivisionError" in check_ssm_step(lambda *a: 1 / 0).message
    result = check_ssm_step(lambda x, u, *a: (x, u))
    assert not result.ok and "Likely cause" not in result.message


def test_split_fused_qkv_checker_accepts_a_correct_answer():
    from demos.exercises.falcon import check_split_fused_qkv

    def split(fused, h, g, d):
        b, t, _ = fused.shape
        x = fused.view(b, t, g, h // g + 2, d)
        q = x[:, :, :, : h // g].reshape(b, t, h, d).transpose(1, 2)
        return q, x[:, :, :, -2].transpose(1, 2), x[:, :, :, -1].transpose(1, 2)

    assert check_split_fused_qkv(split).ok


def test_split_fused_qkv_checker_names_the_block_layout_mistake():
    from demos.exercises.falcon import _split_qkv_blocks, check_split_fused_qkv

    result = check_split_fused_qkv(_split_qkv_blocks)
    assert not result.ok and "group by group" in result.message


def test_split_fused_qkv_checker_reports_shapes_and_errors():
    from demos.exercises.falcon import check_split_fused_qkv

    assert "expected (q, k, v)" in check_split_fused_qkv(lambda f, h, g, d: f).message
    assert "ZeroDivisionError" in check_split_fused_qkv(lambda f, h, g, d: 1 / 0).message
    result = check_split_fused_qkv(lambda f, h, g, d: (f, f, f))
    assert not result.ok and "has shape" in result.message


def test_dpo_loss_checker_accepts_independent_correct_answers():
    from demos.exercises.zephyr import check_dpo_loss

    def softplus_form(lw, ll, rw, rl, beta):  # -log sigma(x) = softplus(-x)
        return torch.nn.functional.softplus(-beta * ((lw - ll) - (rw - rl)))

    def logaddexp_form(lw, ll, rw, rl, beta):  # -log sigma(x) = log(1 + e^-x)
        x = beta * ((lw - rw) - (ll - rl))
        return torch.logaddexp(torch.zeros_like(x), -x)

    for fn in (softplus_form, logaddexp_form):
        result = check_dpo_loss(fn)
        assert result.ok, result.message


def test_dpo_loss_checker_names_the_common_mistakes():
    from demos.exercises import zephyr as ex

    for wrong, words in [
        (ex._dpo_no_reference, "reference model was left out"),
        (ex._dpo_swapped, "swapped"),
        (ex._dpo_no_log, "-sigma(beta h)"),
        (ex._dpo_no_beta, "beta is missing"),
        (ex._dpo_log_of_sigmoid, "logsigmoid"),
    ]:
        result = ex.check_dpo_loss(wrong)
        assert not result.ok and words in result.message, (wrong.__name__, result.message)


def test_dpo_loss_checker_reports_a_mean_and_an_error():
    from demos.exercises.zephyr import check_dpo_loss

    mean = check_dpo_loss(lambda lw, ll, rw, rl, beta: (-(lw - ll)).mean())
    assert not mean.ok and "shape ()" in mean.message
    assert "ZeroDivisionError" in check_dpo_loss(lambda *a: 1 / 0).message


def test_log_odds_checker_accepts_a_correct_answer_and_names_mistakes():
    from demos.exercises import zephyr as ex

    def log_odds(logp):  # written here: log P - log(1 - P), with expm1 near 0 and log1p far from it
        near_zero = logp > -0.5
        log_1mp = torch.where(
            near_zero, torch.log(-torch.expm1(logp)), torch.log1p(-torch.exp(logp))
        )
        return logp - log_1mp

    assert ex.check_log_odds(log_odds).ok
    for wrong, words in [
        (ex._log_odds_naive, "expm1"),
        (ex._odds_not_log, "take its logarithm"),
        (ex._log_odds_without_denominator, "also subtract"),
    ]:
        result = ex.check_log_odds(wrong)
        assert not result.ok and words in result.message, (wrong.__name__, result.message)
