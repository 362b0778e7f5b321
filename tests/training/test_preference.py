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


def our_dpo_loss_from_batch(policy, reference, batch, loss_type, beta):
    """Our loss on TRL's collated batch: logits from both models, our log-probs, our DPO loss."""
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    average = loss_type == "ipo"  # TRL's IPO divides by the completion length, see dpo_loss
    logps = sequence_logps(policy(batch["input_ids"]).logits, labels, average=average)
    with torch.no_grad():
        ref_logps = sequence_logps(reference(batch["input_ids"]).logits, labels, average=average)
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
