"""References and known mistakes for the Qwen1.5 chapter's exercises: which top-k assignments experts of a fixed
capacity serve (the dispatch of transformers' Switch Transformers and NLLB-MoE routers, which Qwen1.5-MoE does
without), the balancing loss and
its gradient, and (transfer) Mixtral's sparse layer, which has no shared expert and renormalises its top-k weights.

The references of the last three are :mod:`demos.layers.moe`, which tests/layers/test_moe.py proves equal to
transformers' ``load_balancing_loss_func`` and ``MixtralSparseMoeBlock``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from demos.exercises.core import Check, Mistake, check_function
from demos.layers.moe import SparseMoE, load_balancing_loss, route_top_k


def _choices(router_logits: torch.Tensor, k: int) -> torch.Tensor:
    """Each token's k experts, most probable first: ``(n, k)`` int64."""
    return torch.topk(router_logits, k, dim=-1).indices


def _positions(chosen: torch.Tensor, e: int, order: torch.Tensor) -> torch.Tensor:
    """For each assignment ``(t, j)`` of ``chosen (n, k)``: how many assignments to the same expert
    come before it when they are taken in ``order`` (a permutation of the n*k flat indices)."""
    flat = F.one_hot(chosen.flatten(), e)[order]  # (n*k, e), in the serving order
    before = (torch.cumsum(flat, dim=0) - flat)[torch.arange(len(order)), chosen.flatten()[order]]
    positions = torch.empty_like(before)
    positions[order] = before  # back to the (t, j) flat order
    return positions.view(chosen.shape)  # (n, k)


def _choice_major(n: int, k: int) -> torch.Tensor:
    """Every token's first choice in token order, then every second choice, ...: flat ``t * k + j``
    indices ordered by ``(j, t)``."""
    return torch.arange(n * k).view(n, k).T.flatten()


def capacity_keep(router_logits: torch.Tensor, k: int, capacity: int) -> torch.Tensor:
    """The reference: which of the ``(n, k)`` top-k assignments an expert of ``capacity`` slots
    takes, first come first served: the first choices of tokens 0, 1, ..., n-1, then their
    second choices, and so on; an assignment is kept while its expert has taken fewer than
    ``capacity``. transformers==5.23.0, models/nllb_moe/modeling_nllb_moe.py::NllbMoeTop2Router
    (``batch_prioritized_routing=False``) for k = 2, models/switch_transformers/
    modeling_switch_transformers.py::SwitchTransformersTop1Router for k = 1
    (tests/exercises/test_qwen15.py compares them)."""
    n, e = router_logits.shape
    if not 1 <= k <= e or capacity < 0:
        raise ValueError(f"k ({k}) must be in 1..{e} and capacity ({capacity}) >= 0")
    chosen = _choices(router_logits, k)
    return _positions(chosen, e, _choice_major(n, k)) < capacity


def _token_by_token(router_logits: torch.Tensor, k: int, capacity: int) -> torch.Tensor:
    n, e = router_logits.shape  # token 0's k choices, then token 1's, ...
    return _positions(_choices(router_logits, k), e, torch.arange(n * k)) < capacity


def _most_probable_first(router_logits: torch.Tensor, k: int, capacity: int) -> torch.Tensor:
    n, e = router_logits.shape
    top = torch.topk(router_logits.softmax(-1), k, dim=-1).values.flatten()  # (n*k,)
    order = torch.sort(top, descending=True, stable=True).indices
    return _positions(_choices(router_logits, k), e, order) < capacity


def _counted_per_token(router_logits: torch.Tensor, k: int, capacity: int) -> torch.Tensor:
    chosen = F.one_hot(_choices(router_logits, k), router_logits.shape[-1])  # (n, k, e)
    counts = torch.cumsum(chosen, dim=1) - chosen  # over each token's own k choices
    return (counts * chosen).sum(-1) < capacity


def _one_too_many(router_logits: torch.Tensor, k: int, capacity: int) -> torch.Tensor:
    return capacity_keep(router_logits, k, capacity + 1)  # position <= capacity


def check_capacity_keep(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``capacity_keep(router_logits, k, capacity)``: ``router_logits (n, e)`` float64 ->
    ``(n, k)`` bool, True where token t's j-th choice (most probable first) is served; the
    assignments are served first choices first (tokens in order), then second choices, and an
    expert takes at most ``capacity``."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        "12 tokens, 4 experts, k=2, capacity 6 (= n k / e)": (
            2.0 * torch.randn(12, 4, generator=gen, dtype=torch.float64),
            2,
            6,
        ),
        "Switch: 10 tokens, 3 experts, k=1, capacity 3": (
            2.0 * torch.randn(10, 3, generator=gen, dtype=torch.float64),
            1,
            3,
        ),
        "8 tokens, 6 experts, k=3, capacity 3": (
            2.0 * torch.randn(8, 6, generator=gen, dtype=torch.float64),
            3,
            3,
        ),
        # token 0 chooses (expert 0, expert 1), token 1 (expert 1, expert 2): token 1's first
        # choice comes before token 0's second
        "a second choice waits for every first choice": (
            torch.tensor([[3.0, 2.0, 0.0], [0.0, 3.1, 2.0]], dtype=torch.float64),
            2,
            1,
        ),
        # three tokens choose expert 0, the least sure first
        "k=1: token order, not probability": (
            torch.tensor([[0.5, 0.0], [3.0, 0.0], [2.0, 0.0]], dtype=torch.float64),
            1,
            2,
        ),
        "capacity 0: nothing is served": (
            torch.randn(4, 3, generator=gen, dtype=torch.float64),
            2,
            0,
        ),
    }
    mistakes = [
        Mistake(
            _token_by_token,
            "the assignments were served token by token (token 0's k choices, then token 1's); "
            "first choices come first: every token's first choice in token order, then every "
            "token's second choice, and so on.",
            "a second choice waits for every first choice",
        ),
        Mistake(
            _most_probable_first,
            "the assignments were served most probable first; this exercise serves them first "
            "come first served, in token order (first choices before second choices).",
            "k=1: token order, not probability",
        ),
        Mistake(
            _counted_per_token,
            "the count ran over each token's own k choices, where an expert appears at most once, "
            "so no assignment was ever dropped; count, for each expert, the assignments served "
            "before this one across all tokens.",
        ),
        Mistake(
            _one_too_many,
            "each expert took capacity + 1 assignments: an assignment is kept when fewer than "
            "capacity came before it to the same expert (a 0-based position < capacity).",
            "capacity 0: nothing is served",
        ),
    ]
    return check_function(
        fn,
        capacity_keep,
        cases,
        ("router_logits", "k", "capacity"),
        mistakes=mistakes,
        exact_dtype=True,
    )


def balancing_loss(router_logits: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: ``E * sum_i f_i P_i`` over all layers' tokens (transformers' counting);
    ``router_logits (layers, n, e)``."""
    return load_balancing_loss(list(router_logits), k)


def _per_layer(router_logits, k):
    return torch.stack([load_balancing_loss([r], k) for r in router_logits]).mean()


def _switch_f(router_logits, k):  # f as a share of the n*k assignments: sums to one
    return load_balancing_loss(list(router_logits), k) / k


def _top_k_p(router_logits, k):  # P from the kept weights only
    logits = router_logits.flatten(0, 1)  # (layers * n, e)
    e = logits.shape[-1]
    weights, experts = route_top_k(logits, k, False)
    chosen = F.one_hot(experts, e).float()  # (n, k, e)
    f = chosen.sum(1).mean(0)
    p = (chosen * weights[..., None]).sum(1).mean(0)
    return e * (f * p).sum()


def check_balancing_loss(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``balancing_loss(router_logits, k)``: ``router_logits (layers, n, e)``, one ``(n, e)``
    per MoE layer -> a scalar tensor, ``E * sum_i f_i P_i`` with ``f_i`` the fraction of tokens whose top-k
    holds expert ``i`` and ``P_i`` its mean softmax probability, both over every layer's tokens."""
    gen = torch.Generator().manual_seed(1)
    cases = {
        "one layer, 12 tokens, 4 experts, k=1 (Switch)": (torch.randn(1, 12, 4, generator=gen), 1),
        "three layers, 10 tokens, 8 experts, k=2": (3.0 * torch.randn(3, 10, 8, generator=gen), 2),
    }
    mistakes = [
        Mistake(
            _per_layer,
            "the loss was computed per layer and averaged; transformers pools every layer's tokens "
            "into one f and one P, then multiplies.",
        ),
        Mistake(
            _switch_f,
            "f was divided by k (a share of the n*k assignments); transformers counts the share of "
            "tokens that chose each expert, so f sums to k and an even router scores k.",
        ),
        Mistake(
            _top_k_p,
            "P was taken from the kept top-k weights; it is the mean softmax probability over all "
            "experts, which is what carries the gradient to the router.",
        ),
    ]
    return check_function(
        fn, balancing_loss, cases, ("router_logits", "k"), mistakes=mistakes, atol=1e-6, rtol=1e-5
    )


def balancing_grad(router_logits: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: the gradient of one layer's balancing loss with respect to its router
    logits ``(n, e)``, by autograd through :func:`load_balancing_loss`."""
    logits = router_logits.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(load_balancing_loss([logits], k), logits)
    return grad


def _f_p(router_logits, k):
    n, e = router_logits.shape
    probs = router_logits.softmax(-1)  # (n, e)
    f = F.one_hot(probs.topk(k, dim=-1).indices, e).sum(1).float().mean(0)  # (e,)
    return n, e, probs, f


def _grad_wrt_probs(router_logits, k):  # dL/dp: the softmax's Jacobian left out
    n, e, probs, f = _f_p(router_logits, k)
    return (e * f / n).expand(n, e)


def _grad_without_mean(router_logits, k):  # P summed over tokens, not averaged
    n, e, probs, f = _f_p(router_logits, k)
    return e * probs * (f - (probs * f).sum(-1, keepdim=True))


def _grad_through_kept(router_logits, k):  # p_j (f_j - f_j): the sum over i kept only i = j
    n, e, probs, f = _f_p(router_logits, k)
    return e / n * probs * f * (1 - probs)


def check_balancing_grad(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``balancing_grad(router_logits, k)``: one layer's ``router_logits (n, e)`` float32 ->
    ``(n, e)``, the gradient of ``E * sum_i f_i P_i`` with respect to the logits, ``f`` held fixed:
    ``(E / n) p_tj (f_j - sum_i f_i p_ti)``."""
    gen = torch.Generator().manual_seed(3)
    cases = {
        "12 tokens, 4 experts, k=1 (Switch)": (torch.randn(12, 4, generator=gen), 1),
        "10 tokens, 8 experts, k=2": (3.0 * torch.randn(10, 8, generator=gen), 2),
    }
    mistakes = [
        Mistake(
            _grad_wrt_probs,
            "this is the gradient with respect to the probabilities, E f_j / n, the same for "
            "every token; chain it through the softmax's Jacobian, dp_ti/dz_tj = p_ti (1[i=j] - "
            "p_tj).",
        ),
        Mistake(
            lambda logits, k: -balancing_grad(logits, k),
            "the sign is flipped: the loss grows with the probability of a busy expert (f_j "
            "above the token's average sum_i f_i p_ti), so its gradient there is positive.",
        ),
        Mistake(
            _grad_without_mean,
            "n times too large: P_i is the mean probability over the n tokens, so each token's "
            "gradient carries a factor 1/n.",
        ),
        Mistake(
            lambda logits, k: balancing_grad(logits, k) / k,
            "divided by k: f is the share of tokens whose top-k holds each expert, so it sums to "
            "k, not 1.",
        ),
        Mistake(
            _grad_through_kept,
            "only the diagonal of the softmax's Jacobian was kept (p_tj (1 - p_tj)); z_tj moves "
            "every expert's probability, so the sum over i gives p_tj (f_j - sum_i f_i p_ti).",
        ),
    ]
    return check_function(
        fn,
        balancing_grad,
        cases,
        ("router_logits", "k"),
        mistakes=mistakes,
        atol=1e-6,
        rtol=1e-5,
        exact_dtype=True,
    )


def mixtral_moe(x, gate_weight, gate_up_proj, down_proj, k: int) -> torch.Tensor:
    """The reference: Mixtral's sparse layer (no shared expert, top-k weights renormalised)."""
    e, two_f, c = gate_up_proj.shape
    layer = SparseMoE(c, e, k, two_f // 2, shared_expert_size=None, norm_topk_prob=True)
    with torch.no_grad():
        layer.gate.weight.copy_(gate_weight)
        layer.experts.gate_up_proj.copy_(gate_up_proj)
        layer.experts.down_proj.copy_(down_proj)
        return layer(x)


def _with(x, gate_weight, gate_up_proj, down_proj, k, norm=True, swap=False, weighted=True):
    e, two_f, c = gate_up_proj.shape
    weights, experts = route_top_k(x @ gate_weight.T, k, norm)
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for slot in range(k):
            i = int(experts[t, slot])
            gate, up = (gate_up_proj[i] @ x[t]).chunk(2)
            if swap:
                gate, up = up, gate
            y = down_proj[i] @ (F.silu(gate) * up)
            out[t] += (weights[t, slot] if weighted else 1.0) * y
    return out


def check_mixtral_moe(fn: Callable[..., torch.Tensor]) -> Check:
    """Check ``mixtral_moe(x, gate_weight, gate_up_proj, down_proj, k)``: ``x (n, c)``, the router
    ``gate_weight (e, c)``, experts ``gate_up_proj (e, 2f, c)`` (gate rows first) and ``down_proj
    (e, c, f)`` -> ``(n, c)``: each token the sum of its k experts' SwiGLU outputs, weighted by
    the softmax probabilities of the k experts rescaled to sum to one."""
    gen = torch.Generator().manual_seed(2)

    def case(n, c, e, f, k):
        return (
            torch.randn(n, c, generator=gen),
            torch.randn(e, c, generator=gen),
            0.5 * torch.randn(e, 2 * f, c, generator=gen),
            0.5 * torch.randn(e, c, f, generator=gen),
            k,
        )

    cases = {
        "5 tokens, 4 experts, k=2": case(5, 6, 4, 3, 2),
        "3 tokens, 8 experts, k=1": case(3, 6, 8, 3, 1),
    }
    mistakes = [
        Mistake(
            lambda *a: _with(*a, norm=False),
            "the top-k weights were not rescaled (that is Qwen1.5-MoE's router); Mixtral's softmax "
            "runs over the k kept logits, so each token's weights sum to one.",
        ),
        Mistake(
            lambda *a: _with(*a, swap=True),
            "gate_up_proj[i] was split as up, then gate: its first f rows are the gate.",
        ),
        Mistake(
            lambda *a: _with(*a, weighted=False),
            "the experts' outputs were summed without their router weights.",
        ),
    ]
    return check_function(
        fn,
        mixtral_moe,
        cases,
        ("x", "gate_weight", "gate_up_proj", "down_proj", "k"),
        mistakes=mistakes,
        atol=1e-5,
        rtol=1e-4,
    )
