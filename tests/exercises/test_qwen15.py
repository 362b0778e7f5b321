"""The Qwen1.5 chapter's checkers: dispatch under an expert capacity, the balancing loss, Mixtral's layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from exercise_references.qwen15 import capacity_keep
from transformers import NllbMoeConfig, SwitchTransformersConfig
from transformers.models.nllb_moe.modeling_nllb_moe import NllbMoeTop2Router
from transformers.models.switch_transformers.modeling_switch_transformers import (
    SwitchTransformersTop1Router,
)

from demos.exercises.qwen15 import (
    check_balancing_grad,
    check_balancing_loss,
    check_capacity_keep,
    check_mixtral_moe,
)

# ---- answers written here from the definitions (not from demos.layers.moe) ----


def keep(logits, k, capacity):  # a loop: first choices of every token, then second choices, ...
    n, e = logits.shape
    chosen = logits.topk(k, -1).indices.tolist()
    served, kept = [0] * e, torch.zeros(n, k, dtype=torch.bool)
    for j in range(k):
        for t in range(n):
            if served[chosen[t][j]] < capacity:
                served[chosen[t][j]] += 1
                kept[t, j] = True
    return kept


def balance(router_logits, k):  # router_logits (layers, n, e)
    logits = router_logits.flatten(0, 1)
    e = logits.shape[-1]
    probs = logits.softmax(-1)
    picked = torch.zeros_like(probs).scatter(1, probs.topk(k, -1).indices, 1.0)
    return e * (picked.mean(0) * probs.mean(0)).sum()


def chosen(z, k):  # (n, e): 1 where the expert is in the token's top-k
    return torch.zeros_like(z).scatter(1, z.topk(k, -1).indices, 1.0)


def balance_grad(z, k):  # (E / n) p_tj (f_j - sum_i f_i p_ti), derived by hand
    n, e = z.shape
    p = z.softmax(-1)
    f = torch.zeros_like(p).scatter(1, p.topk(k, -1).indices, 1.0).mean(0)
    return e / n * p * (f - (p * f).sum(-1, keepdim=True))


def mixtral(x, gate_weight, gate_up_proj, down_proj, k):
    top, experts = torch.topk(x @ gate_weight.T, k, dim=-1)
    weights = top.softmax(-1)  # Mixtral's formula: softmax over the k kept logits
    out = torch.zeros_like(x)
    for slot in range(k):
        w_gu = gate_up_proj[experts[:, slot]]  # (n, 2f, c)
        gate, up = torch.einsum("nfc,nc->nf", w_gu, x).chunk(2, dim=-1)
        y = torch.einsum("ncf,nf->nc", down_proj[experts[:, slot]], F.silu(gate) * up)
        out += weights[:, slot, None] * y
    return out


def test_solutions_pass():
    for checker, answer in (
        (check_capacity_keep, keep),
        (check_balancing_loss, balance),
        (check_balancing_grad, balance_grad),
        (check_mixtral_moe, mixtral),
    ):
        result = checker(answer)
        assert result.ok, result.message


def my_capacity_keep(router_logits, k, capacity):  # the chapter's stub, untouched
    # your code here: return a bool tensor of shape (n, k)
    return torch.ones(router_logits.shape[0], k, dtype=torch.bool)


def token_by_token(logits, k, capacity):
    n, e = logits.shape
    chosen, served = logits.topk(k, -1).indices.tolist(), [0] * e
    kept = torch.zeros(n, k, dtype=torch.bool)
    for t in range(n):
        for j in range(k):
            if served[chosen[t][j]] < capacity:
                served[chosen[t][j]] += 1
                kept[t, j] = True
    return kept


KEEP_WRONG = {
    "stub": (my_capacity_keep, ["still the template"]),
    "token by token": (token_by_token, ["token by token"]),
    "counted per token": (
        lambda logits, k, c: (
            lambda hot: ((torch.cumsum(hot, 1) - hot) * hot).sum(-1) < c  # over the k choices
        )(F.one_hot(logits.topk(k, -1).indices, logits.shape[-1])),
        ["no assignment was ever dropped"],
    ),
    "one too many": (lambda logits, k, c: keep(logits, k, c + 1), ["capacity + 1"]),
    "an int mask": (lambda logits, k, c: keep(logits, k, c).long(), ["int64"]),
    "per expert, not per assignment": (
        lambda logits, k, c: torch.ones(logits.shape[0], logits.shape[1], dtype=torch.bool),
        ["shape"],
    ),
}


@pytest.mark.parametrize("answer, words", KEEP_WRONG.values(), ids=list(KEEP_WRONG))
def test_capacity_checker_explains_wrong_answers(explain, answer, words):
    explain(check_capacity_keep, answer, words)


@pytest.mark.parametrize("n, e, capacity", [(12, 4, 3), (9, 3, 2), (7, 5, 1), (6, 4, 0)])
def test_capacity_reference_equals_transformers_routers(n, e, capacity):
    """k = 1 against SwitchTransformersTop1Router's mask, k = 2 against NllbMoeTop2Router's
    (first choices before second choices, batch_prioritized_routing=False)."""
    logits = 2.0 * torch.randn(n, e)
    switch = SwitchTransformersTop1Router(
        SwitchTransformersConfig(
            num_experts=e, expert_capacity=capacity, d_model=e, router_bias=False
        )
    ).eval()
    with torch.no_grad():
        switch.classifier.weight.copy_(torch.eye(e))  # its logits are the input: ours
        expert_index, _, their_logits = switch(logits[None])  # (1, n, e) one-hot, capacity-masked
    assert torch.equal(their_logits[0], logits)
    assert torch.equal(capacity_keep(logits, 1, capacity)[:, 0], expert_index[0].bool().any(-1))
    config = NllbMoeConfig(
        num_experts=e,
        expert_capacity=capacity,
        d_model=4,
        second_expert_policy="all",
        batch_prioritized_routing=False,
        normalize_router_prob_before_dropping=False,
    )
    router = NllbMoeTop2Router(
        config
    ).train()  # training: the capacity given, not the eval fraction
    top_1_mask, gates = router.route_tokens(logits.clone())
    experts = logits.topk(2, -1).indices  # (n, 2)
    theirs = torch.stack((top_1_mask.bool().any(-1), gates.gather(1, experts[:, 1:])[:, 0] > 0), -1)
    assert torch.equal(capacity_keep(logits, 2, capacity), theirs)


def my_balancing_loss(router_logits, k):  # the chapter's stub, untouched
    # your code here: return a scalar tensor
    return torch.zeros(())


BALANCE_WRONG = {
    "stub": (my_balancing_loss, ["still the template"]),
    "per layer": (
        lambda rl, k: torch.stack([balance(r[None], k) for r in rl]).mean(),
        ["per layer and averaged"],
    ),
    "f over n*k": (lambda rl, k: balance(rl, k) / k, ["divided by k"]),
    "no factor E": (lambda rl, k: balance(rl, k) / rl[0].shape[-1], ["differ"]),
    "top-1 only": (lambda rl, k: balance(rl, 1), ["differ"]),
}


@pytest.mark.parametrize("answer, words", BALANCE_WRONG.values(), ids=list(BALANCE_WRONG))
def test_balancing_checker_explains_wrong_answers(explain, answer, words):
    explain(check_balancing_loss, answer, words)


def my_balancing_grad(router_logits, k):  # the chapter's stub, untouched
    # your code here: return the (n, e) gradient
    return torch.zeros_like(router_logits)


def by_autograd(z, k):
    z = z.clone().requires_grad_(True)
    return torch.autograd.grad(balance(z[None], k), z)[0]


GRAD_WRONG = {
    "stub": (my_balancing_grad, ["still the template"]),
    "w.r.t. the probabilities": (
        lambda z, k: (z.shape[-1] / z.shape[0] * chosen(z, k).mean(0)).expand_as(z),
        ["with respect to the probabilities", "Jacobian"],
    ),
    "sign flipped": (lambda z, k: -balance_grad(z, k), ["sign is flipped"]),
    "no 1/n": (lambda z, k: z.shape[0] * balance_grad(z, k), ["n times too large"]),
    "f over n*k": (lambda z, k: balance_grad(z, k) / k, ["divided by k"]),
    "diagonal Jacobian": (
        lambda z, k: (
            z.shape[-1] / z.shape[0] * (lambda p: p * (1 - p))(z.softmax(-1)) * chosen(z, k).mean(0)
        ),
        ["diagonal of the softmax's Jacobian"],
    ),
    "float64": (lambda z, k: balance_grad(z.double(), k), ["float64", "torch.float32"]),
}


def test_balancing_grad_answer_by_autograd_passes():
    result = check_balancing_grad(by_autograd)
    assert result.ok, result.message


@pytest.mark.parametrize("answer, words", GRAD_WRONG.values(), ids=list(GRAD_WRONG))
def test_balancing_grad_checker_explains_wrong_answers(explain, answer, words):
    explain(check_balancing_grad, answer, words)


def my_mixtral_moe(x, gate_weight, gate_up_proj, down_proj, k):  # the chapter's stub, untouched
    # your code here: return a tensor shaped like x
    return x


def qwen_router(x, gate_weight, gate_up_proj, down_proj, k):
    weights, experts = torch.topk(torch.softmax(x @ gate_weight.T, -1), k, -1)  # not renormalised
    out = torch.zeros_like(x)
    for slot in range(k):
        gate, up = torch.einsum("nfc,nc->nf", gate_up_proj[experts[:, slot]], x).chunk(2, dim=-1)
        out += weights[:, slot, None] * torch.einsum(
            "ncf,nf->nc", down_proj[experts[:, slot]], F.silu(gate) * up
        )
    return out


MIXTRAL_WRONG = {
    "stub": (my_mixtral_moe, ["still the template"]),
    "Qwen's router": (qwen_router, ["not rescaled"]),
    "up then gate": (
        lambda x, g, gu, d, k: mixtral(x, g, torch.cat(gu.chunk(2, dim=1)[::-1], dim=1), d, k),
        ["first f rows are the gate"],
    ),
    "every expert": (
        lambda x, g, gu, d, k: mixtral(x, g, gu, d, g.shape[0]),
        ["differ"],
    ),
}


@pytest.mark.parametrize("answer, words", MIXTRAL_WRONG.values(), ids=list(MIXTRAL_WRONG))
def test_mixtral_checker_explains_wrong_answers(explain, answer, words):
    explain(check_mixtral_moe, answer, words)


@pytest.mark.parametrize(
    "checker", [check_capacity_keep, check_balancing_loss, check_balancing_grad, check_mixtral_moe]
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
