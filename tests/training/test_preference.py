"""DPO and ORPO losses against TRL 1.16.0: DPOTrainer's loss on a tiny model, ORPO's odds-ratio term,
log-probs against ``selective_log_softmax``; and properties that need no reference."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from types import SimpleNamespace

import pytest
import torch

from demos.training.preference import dpo_loss, log1mexp, orpo_loss, sequence_logps
from helpers import tiny_llama


def random_logps(b: int, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return -torch.rand(b, device=device, dtype=dtype) * 3 - 0.01  # in (-3.01, -0.01)


def our_dpo_loss_from_batch(policy, reference, batch, loss_type, beta, allow_empty=False):
    """Our loss on TRL's collated batch: logits from both models, our log-probs, our DPO loss."""
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    kw = dict(
        average=loss_type == "ipo", allow_empty=allow_empty
    )  # TRL's IPO averages, see dpo_loss
    logps = sequence_logps(policy(batch["input_ids"]).logits, labels, **kw)
    with torch.no_grad():
        ref_logps = sequence_logps(reference(batch["input_ids"]).logits, labels, **kw)
    chosen, rejected = logps.chunk(2)  # the batch holds the chosen sequences, then the rejected
    ref_chosen, ref_rejected = ref_logps.chunk(2)
    losses, _, _ = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta, loss_type)
    return losses.mean()


@pytest.mark.parametrize("loss_type", ["sigmoid", "hinge", "ipo"])
def test_dpo_loss_and_gradients_match_trl_dpotrainer(fp32_setting, loss_type):
    from demos.training.trl_reference import trl_dpo_loss_on_one_batch

    policy, reference = tiny_llama(2), tiny_llama(2)  # two different random models
    # IPO's loss is (h - 1/(2 beta))**2: beta = 1 keeps it O(1), where fp32's spacing is ~1e-7 (at beta 0.1
    # it is ~23, whose fp32 spacing 1.9e-6 is already above the 1e-6 this test asks for)
    beta = 0.5 if loss_type != "ipo" else 1.0
    ref_loss, batch = trl_dpo_loss_on_one_batch(policy, reference, loss_type, beta)
    assert batch["completion_mask"].sum() > 0 and (batch["attention_mask"] == 0).any()  # padded
    ref_loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in policy.named_parameters()}
    policy.zero_grad()
    ours = our_dpo_loss_from_batch(policy, reference, batch, loss_type, beta)
    ours.backward()
    assert ref_loss.item() != pytest.approx(math.log(2))  # the comparison is not trivial
    fp32_setting.close(ours, ref_loss.detach())
    assert abs(ours.item() - ref_loss.item()) <= 1e-6
    for name, p in policy.named_parameters():
        fp32_setting.close(p.grad, ref_grads[name], grad=True, msg=f"d/d{name}")


def test_sequence_logps_match_trl_selective_log_softmax_and_get_batch_logps(setting):
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer
    from trl.trainer.utils import selective_log_softmax

    b, t, v = 3, 9, 50
    logits = torch.randn(b, t, v, device=setting.device).to(setting.dtype) * 3
    labels = torch.randint(0, v, (b, t), device=setting.device)
    labels[0, :4] = -100  # a prompt
    labels[1, 7:] = -100  # padding
    mask = labels[:, 1:] != -100
    token_logps = selective_log_softmax(logits[:, :-1].float(), labels[:, 1:].clamp(min=0))
    setting.close(sequence_logps(logits, labels), (token_logps * mask).sum(-1))
    for average in (False, True):
        ref = ORPOTrainer.get_batch_logps(logits.float(), labels, average_log_prob=average)
        setting.close(sequence_logps(logits, labels, average=average), ref)


def test_orpo_term_matches_trl_odds_ratio_loss(setting):
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    chosen = random_logps(16, setting.device, setting.dtype)
    rejected = random_logps(16, setting.device, setting.dtype)
    chosen[0], rejected[0] = -1e-4, -60.0  # near both ends of log1mexp's range
    beta = 0.25
    trainer = SimpleNamespace(beta=beta, accelerator=SimpleNamespace(device=setting.device))
    trl_losses, *_, trl_mean_log_odds = ORPOTrainer.odds_ratio_loss(trainer, chosen, rejected)
    losses, log_odds = orpo_loss(chosen, rejected, beta)
    # TRL returns beta * log sigmoid(log odds ratio) <= 0 and subtracts it from the NLL; ours is its negative.
    assert (trl_losses <= 0).all() and (losses >= 0).all()
    setting.close(losses, -trl_losses)
    setting.close(log_odds.mean(), trl_mean_log_odds)


def test_log1mexp_is_accurate_at_both_ends():
    x = torch.tensor([-1e-10, -1e-5, -0.5, -math.log(2), -1.0, -30.0, -200.0], dtype=torch.float64)
    with localcontext() as ctx:  # 200 significant digits: the exact value, rounded once to float64
        ctx.prec = 200
        exact = [(1 - Decimal(v).exp()).ln() for v in x.tolist()]
    expected = torch.tensor([float(e) for e in exact], dtype=torch.float64)
    torch.testing.assert_close(log1mexp(x), expected, rtol=1e-15, atol=0)  # ~1 ulp
    assert torch.isfinite(log1mexp(x.float())).all()


def test_dpo_loss_is_log2_when_policy_equals_reference():
    logps_w, logps_l = random_logps(8), random_logps(8)
    losses, rw, rl = dpo_loss(logps_w, logps_l, logps_w.clone(), logps_l.clone(), beta=0.3)
    torch.testing.assert_close(losses, torch.full_like(losses, math.log(2)))
    assert (rw == 0).all() and (rl == 0).all()
    hinge, _, _ = dpo_loss(logps_w, logps_l, logps_w, logps_l, beta=0.3, loss_type="hinge")
    ipo, _, _ = dpo_loss(logps_w, logps_l, logps_w, logps_l, beta=0.3, loss_type="ipo")
    torch.testing.assert_close(hinge, torch.ones_like(hinge))
    torch.testing.assert_close(ipo, torch.full_like(ipo, 1 / (2 * 0.3) ** 2))


@pytest.mark.parametrize("loss_type", ["sigmoid", "hinge", "ipo"])
def test_dpo_gradient_raises_chosen_and_lowers_rejected(loss_type):
    chosen, rejected = random_logps(8).requires_grad_(), random_logps(8).requires_grad_()
    ref_chosen, ref_rejected = chosen.detach().clone(), rejected.detach().clone()
    losses, _, _ = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, 0.1, loss_type)
    losses.sum().backward()
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()  # descent raises y_w, lowers y_l
    # and the gradient is the same size for both: DPO only sees the difference of the log-ratios
    torch.testing.assert_close(chosen.grad, -rejected.grad)


def test_dpo_step_on_a_model_widens_the_margin():
    policy, reference = tiny_llama(2), tiny_llama(2)
    reference.load_state_dict(policy.state_dict())
    ids = torch.randint(0, 97, (4, 10))
    labels = ids.clone()
    labels[:, :5] = -100
    opt = torch.optim.SGD(policy.parameters(), lr=1e-2)

    def margin():
        logps = sequence_logps(policy(ids).logits, labels)
        return (logps[:2] - logps[2:]).detach()

    before = margin()
    logps = sequence_logps(policy(ids).logits, labels)
    with torch.no_grad():
        ref = sequence_logps(reference(ids).logits, labels)
    losses, _, _ = dpo_loss(logps[:2], logps[2:], ref[:2], ref[2:], beta=0.1)
    losses.mean().backward()
    opt.step()
    assert (margin() > before).all()


def test_orpo_properties():
    x = random_logps(8)
    losses, log_odds = orpo_loss(x, x.clone(), beta=0.2)
    torch.testing.assert_close(losses, torch.full_like(losses, 0.2 * math.log(2)))
    assert (log_odds == 0).all()
    chosen, rejected = random_logps(8).requires_grad_(), random_logps(8).requires_grad_()
    losses, _ = orpo_loss(chosen, rejected, 0.1)
    losses.sum().backward()
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()
    # the odds ratio is not the probability ratio: it also counts how far each P is from 1
    chosen64 = torch.tensor([-0.1], dtype=torch.float64)
    rejected64 = torch.tensor([-2.0], dtype=torch.float64)
    p_w, p_l = chosen64.exp(), rejected64.exp()
    _, log_odds = orpo_loss(chosen64, rejected64)
    torch.testing.assert_close(log_odds, torch.log((p_w / (1 - p_w)) / (p_l / (1 - p_l))))


def test_bad_inputs_raise_value_error():
    a, b = random_logps(4), random_logps(3)
    with pytest.raises(ValueError, match="same shape"):
        dpo_loss(a, b, a, a)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(a, a, a, a, beta=0.0)
    with pytest.raises(ValueError, match="loss_type"):
        dpo_loss(a, a, a, a, loss_type="kto")
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(a, a, a, a, loss_type="ipo", label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(a, a, a, a, label_smoothing=0.5)
    with pytest.raises(ValueError, match="same shape"):
        orpo_loss(a, b)
    with pytest.raises(ValueError, match="beta"):
        orpo_loss(a, a, beta=-1.0)
    with pytest.raises(ValueError, match="<= 0"):
        orpo_loss(a.abs(), a)
    with pytest.raises(ValueError, match="vocabulary axis"):
        sequence_logps(torch.zeros(2, 5, 7), torch.zeros(2, 4, dtype=torch.long))


def test_conservative_dpo_label_smoothing():
    chosen, rejected, ref_c, ref_r = (random_logps(6) for _ in range(4))
    eps = 0.2
    smooth, _, _ = dpo_loss(chosen, rejected, ref_c, ref_r, 0.1, label_smoothing=eps)
    plain, _, _ = dpo_loss(chosen, rejected, ref_c, ref_r, 0.1)
    flipped, _, _ = dpo_loss(rejected, chosen, ref_r, ref_c, 0.1)  # labels swapped
    torch.testing.assert_close(smooth, (1 - eps) * plain + eps * flipped)


def test_trl_reference_can_be_called_twice_on_the_same_models():
    """DPOTrainer patches the models it gets; the helper must leave them as they were."""
    from demos.training.trl_reference import trl_dpo_loss_on_one_batch

    policy, reference = tiny_llama(2), tiny_llama(2)
    first, _ = trl_dpo_loss_on_one_batch(policy, reference, "sigmoid", 0.5)
    second, _ = trl_dpo_loss_on_one_batch(policy, reference, "sigmoid", 0.5)
    assert "forward" not in policy.__dict__ and "forward" not in reference.__dict__
    assert first.item() == second.item()


def test_trl_reference_model_runs_in_fp32():
    """With DPOConfig's default bf16=True the reference ran under bf16 autocast and the loss moved by ~5e-3."""
    from demos.training.trl_reference import trl_dpo_loss_on_one_batch

    policy, reference = tiny_llama(2), tiny_llama(2)
    ref_logits = reference(torch.arange(10)[None]).logits
    trl_loss, batch = trl_dpo_loss_on_one_batch(policy, reference, "sigmoid", 0.5)
    assert torch.equal(reference(torch.arange(10)[None]).logits, ref_logits)  # ours untouched
    ours = our_dpo_loss_from_batch(policy, reference, batch, "sigmoid", 0.5)  # plain fp32 forwards
    assert abs(ours.item() - trl_loss.item()) <= 1e-6


# ---- edge cases: TRL's behaviour where it is finite, a clear error or a finite value where it is not ----


def test_ipo_pair_without_completion_tokens_matches_trl(monkeypatch):
    """TRL 1.16 divides IPO's summed log-ratio by the token count clamped to >= 1: an empty completion
    scores 0. Ours raises by default (an average over no token is undefined) and matches with allow_empty."""
    from trl import DPOTrainer

    from demos.training.trl_reference import trl_dpo_loss_on_one_batch

    loader = DPOTrainer.get_train_dataloader

    def first_completion_emptied(self):
        for batch in loader(self):
            batch["completion_mask"][0] = 0  # pair 0's chosen completion: no labelled token
            yield batch

    monkeypatch.setattr(DPOTrainer, "get_train_dataloader", first_completion_emptied)
    policy, reference = tiny_llama(2), tiny_llama(2)
    trl_loss, batch = trl_dpo_loss_on_one_batch(policy, reference, "ipo", 1.0)
    assert batch["completion_mask"][0].sum() == 0 and torch.isfinite(trl_loss)
    with pytest.raises(ValueError, match="row 0 has no labelled token"):
        our_dpo_loss_from_batch(policy, reference, batch, "ipo", 1.0)
    ours = our_dpo_loss_from_batch(policy, reference, batch, "ipo", 1.0, allow_empty=True)
    assert torch.isfinite(ours)
    assert abs(ours.item() - trl_loss.item()) <= 1e-6


def test_average_of_a_row_without_labelled_token_is_an_error():
    logits = torch.randn(3, 4, 5)
    labels = torch.randint(0, 5, (3, 4))
    labels[1, 1:] = -100  # only the first label, which nothing predicts
    with pytest.raises(ValueError, match="row 1 has no labelled token"):
        sequence_logps(logits, labels, average=True)
    assert torch.isfinite(sequence_logps(logits, labels)).all()  # a sum over nothing is 0
    out = sequence_logps(logits, labels, average=True, allow_empty=True)
    assert out[1] == 0 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="row 0 has no labelled token"):  # t == 1
        sequence_logps(logits[:, :1], labels[:, :1], average=True)


@pytest.mark.parametrize("bad", [math.nan, -math.inf, math.inf])
def test_non_finite_logits_at_ignored_positions_change_nothing(bad):
    """Selected out, not multiplied by 0: TRL's get_batch_logps multiplies, and 0 * NaN is NaN."""
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    logits = torch.randn(2, 6, 7, requires_grad=True)
    labels = torch.randint(0, 7, (2, 6))
    labels[:, :3] = -100  # a prompt: positions 0, 1 predict ignored labels
    spoiled = logits.detach().clone()
    spoiled[:, :2] = bad
    spoiled[:, -1] = bad  # the last position predicts nothing
    spoiled.requires_grad_()
    for average in (False, True):
        torch.testing.assert_close(
            sequence_logps(spoiled, labels, average=average),
            sequence_logps(logits, labels, average=average),
        )
    sequence_logps(spoiled, labels, average=True).sum().backward()
    assert torch.isfinite(spoiled.grad).all()
    trl = ORPOTrainer.get_batch_logps(spoiled.detach(), labels)
    assert not torch.isfinite(trl).all() or bad == -math.inf  # TRL: NaN (or -inf * 0 = NaN)


BAD_LABELS = [
    ("a label = vocabulary size", 7, -100, "lie in \\[0, 7\\)"),
    ("a label > vocabulary size", 50, -100, "lie in"),
    ("padding id -1 with ignore_index -100", -1, -100, "ignore_index"),
    (
        "padding id 0 counted as a token is fine, -100 with ignore_index -1",
        -100,
        -1,
        "ignore_index",
    ),
]


@pytest.mark.parametrize(
    "case, value, ignore_index, match", BAD_LABELS, ids=[c[0] for c in BAD_LABELS]
)
def test_labels_outside_the_vocabulary_are_refused(case, value, ignore_index, match):
    labels = torch.randint(0, 7, (2, 5))
    labels[1, 3] = value
    with pytest.raises(ValueError, match=match):
        sequence_logps(torch.randn(2, 5, 7), labels, ignore_index=ignore_index)


@pytest.mark.parametrize(
    "logits, labels, match",
    [
        (torch.randn(2, 5, 7).long(), torch.zeros(2, 5, dtype=torch.long), "floating"),
        (torch.randn(2, 5, 7), torch.zeros(2, 5), "integer"),
        (torch.randn(10, 7), torch.zeros(10, dtype=torch.long), "vocabulary axis"),
    ],
    ids=["integer logits", "float labels", "2-D logits"],
)
def test_sequence_logps_types(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        sequence_logps(logits, labels)


BAD_LOGPS = [0.5, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", BAD_LOGPS)
@pytest.mark.parametrize("position", range(4))
def test_dpo_loss_refuses_what_is_not_a_log_probability(value, position):
    args = [random_logps(3) for _ in range(4)]
    args[position][1] = value
    with pytest.raises(ValueError, match="log-probabilities"):
        dpo_loss(*args)


@pytest.mark.parametrize("value", BAD_LOGPS)
@pytest.mark.parametrize("position", range(2))
def test_orpo_loss_refuses_what_is_not_a_log_probability(value, position):
    args = [random_logps(3) for _ in range(2)]
    args[position][1] = value
    with pytest.raises(ValueError, match="log-probabilities"):
        orpo_loss(*args)


@pytest.mark.parametrize("x", [[0.5], [1e-30], [-1.0, math.nan], [math.inf]])
def test_log1mexp_refuses_positive_or_nan(x):
    with pytest.raises(ValueError, match="<= 0"):
        log1mexp(torch.tensor(x))
    assert log1mexp(torch.tensor([-math.inf])).item() == 0.0  # P = 0: log(1 - 0)


@pytest.mark.parametrize("beta", [math.nan, math.inf, "0.1", None])
def test_beta_must_be_a_finite_positive_number(beta):
    a = random_logps(3)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(a, a, a, a, beta=beta)
    with pytest.raises(ValueError, match="beta"):
        orpo_loss(a, a, beta=beta)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_dpo_and_orpo_share_one_precision_rule(dtype):
    """At least fp32, fp64 stays fp64: bf16 inputs are upcast by both losses, as TRL does for ORPO."""
    a, b = random_logps(4, dtype=dtype), random_logps(4, dtype=dtype)
    want = torch.promote_types(dtype, torch.float32)
    losses, rw, rl = dpo_loss(a, b, b, a, 0.1, "ipo")
    assert losses.dtype == rw.dtype == rl.dtype == want
    assert orpo_loss(a, b)[0].dtype == want
    expected = (((a.to(want) - b.to(want)) * 2) - 1 / (2 * 0.1)) ** 2  # IPO of h = 2 (a - b)
    torch.testing.assert_close(losses, expected)


CONFIDENT = [  # (chosen, rejected) average log-probs, some exactly 0.0 (P = 1 in fp32)
    (0.0, -1.0),
    (-1.0, 0.0),
    (0.0, 0.0),
    (-0.0, -1e-45),
    (-1e-8, -3.0),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chosen, rejected", CONFIDENT)
def test_orpo_with_a_confident_policy_is_finite_and_trl_where_trl_is(chosen, rejected, dtype):
    from demos.training.trl_reference import trl_odds_ratio_terms

    w = torch.tensor([chosen, -0.5], dtype=dtype, requires_grad=True)
    lo = torch.tensor([rejected, -2.0], dtype=dtype, requires_grad=True)
    losses, log_odds = orpo_loss(w, lo, beta=0.1)
    assert torch.isfinite(losses).all() and torch.isfinite(log_odds).all()
    losses.sum().backward()
    assert torch.isfinite(w.grad).all() and torch.isfinite(lo.grad).all()
    trl = -trl_odds_ratio_terms(w.detach(), lo.detach(), beta=0.1)
    finite = torch.isfinite(trl)
    assert finite[1]  # the ordinary pair
    torch.testing.assert_close(losses[finite].to(trl.dtype), trl[finite], atol=1e-6, rtol=1e-6)
    if chosen == 0.0 and rejected == 0.0:
        assert torch.isnan(trl[0])  # TRL: log1mexp(0) - log1mexp(0) = -inf + inf
        torch.testing.assert_close(losses[0], torch.tensor(0.1 * math.log(2), dtype=dtype))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dpo_loss(-1.0, -2.0, -1.0, -2.0), "chosen_logps must be a floating-point tensor"),
        (
            lambda: dpo_loss(*[-torch.ones(2)] * 4, label_smoothing=None),
            r"label_smoothing \(None\) must be in \[0, 0.5\)",
        ),
        (lambda: orpo_loss([-1.0], [-2.0]), "chosen_logps must be a floating-point tensor"),
    ],
    ids=["floats", "label-smoothing-none", "lists"],
)
def test_plain_python_values_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
