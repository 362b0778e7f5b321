"""The Qwen1.5 chapter's checkers: the router's top-k weights, the balancing loss, Mixtral's layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from demos.exercises.qwen15 import (
    check_balancing_grad,
    check_balancing_loss,
    check_mixtral_moe,
    check_top_k_weights,
)

# ---- answers written here from the definitions (not from demos.layers.moe) ----


def top_k(logits, k):
    probs = torch.softmax(logits.float(), dim=-1)
    return torch.topk(probs, k, dim=-1)  # values, indices


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
        (check_top_k_weights, top_k),
        (check_balancing_loss, balance),
        (check_balancing_grad, balance_grad),
        (check_mixtral_moe, mixtral),
    ):
        result = checker(answer)
        assert result.ok, result.message


def my_top_k_weights(router_logits, k):  # the chapter's stub, untouched
    # your code here: return (weights, experts), each (n, k)
    return router_logits, router_logits


TOP_K_WRONG = {
    "stub": (my_top_k_weights, ["still the template"]),
    "softmax after top-k": (
        lambda logits, k: (torch.topk(logits, k).values.softmax(-1), torch.topk(logits, k).indices),
        ["Mixtral's formula", "sum to one"],
    ),
    "renormalised": (
        lambda logits, k: (lambda v, i: (v / v.sum(-1, keepdim=True), i))(*top_k(logits, k)),
        ["norm_topk_prob=True", "sum to one"],
    ),
    "raw logits": (lambda logits, k: torch.topk(logits, k), ["raw logits"]),
    "least probable": (
        lambda logits, k: torch.topk(logits.softmax(-1), k, largest=False),
        ["differ"],
    ),
    "experts only": (lambda logits, k: top_k(logits, k).indices, ["tuple"]),
    "int32 experts": (
        lambda logits, k: (lambda w, e: (w, e.int()))(*torch.topk(logits.softmax(-1), k, -1)),
        ["int32", "torch.int64", "F.one_hot"],
    ),
    "ascending order": (
        lambda logits, k: (lambda w, e: (w.flip(-1), e.flip(-1)))(*top_k(logits, k)),
        ["ascending order", "most probable first"],
    ),
    "torch.sort ascending": (
        lambda logits, k: (lambda v, i: (v[:, -k:], i[:, -k:]))(*torch.sort(logits.softmax(-1))),
        ["ascending order", "descending=True"],
    ),
    "float64 weights": (
        lambda logits, k: torch.topk(logits.double().softmax(-1), k, -1),
        ["float64", "torch.float32"],
    ),
}


@pytest.mark.parametrize("answer, words", TOP_K_WRONG.values(), ids=list(TOP_K_WRONG))
def test_top_k_checker_explains_wrong_answers(explain, answer, words):
    explain(check_top_k_weights, answer, words)


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
    weights, experts = top_k(x @ gate_weight.T, k)  # not renormalised
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
    "checker", [check_top_k_weights, check_balancing_loss, check_balancing_grad, check_mixtral_moe]
)
def test_checkers_explain_any_wrong_answer(explain, any_wrong_answer, checker):
    explain(checker, *any_wrong_answer)
