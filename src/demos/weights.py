"""Moving weights between a transformers model and ours: copy them (same parameter names, no rename
map), and give a model visible random weights for a parity comparison.

Every ``from_hf`` in this package ends in :func:`load_hf_weights`; every parity test and parity cell
starts from :func:`randomize_weights_`.
"""

from __future__ import annotations

import torch
from torch import nn

from demos.models import UNIMPLEMENTED_PARAMETERS


def load_hf_weights(module: nn.Module, hf_module: nn.Module) -> nn.Module:
    """Copy ``hf_module``'s weights into ``module`` (same parameter names) and move ``module`` to the
    reference's device and dtype. Returns ``module``.

    Raises:
        ValueError: the reference has a parameter that belongs to a feature not implemented here
            (QK-norm's ``q_norm``/``k_norm``; Gemma 2/3's norms around the MLP): named, with the
            feature, instead of ``load_state_dict``'s list of unexpected keys.
        RuntimeError: from ``load_state_dict`` when another name or a shape differs (strict loading).
    """
    ours = module.state_dict()
    for name in hf_module.state_dict():
        feature = UNIMPLEMENTED_PARAMETERS.get(".".join(name.split(".")[-2:]))
        if name not in ours and feature:
            raise ValueError(
                f"{type(hf_module).__name__} has the parameter {name!r}, which "
                f"{type(module).__name__} lacks: {feature}"
            )
    module.load_state_dict(hf_module.state_dict())
    p = next(hf_module.parameters())
    return module.to(device=p.device, dtype=p.dtype)


def randomize_weights_(module: nn.Module, std: float = 0.2) -> nn.Module:
    """Give every weight a visible random value, in place; returns ``module``.

    transformers initialises weights with std 0.02, which makes every output tiny and any
    comparison too easy to pass. Norm weights stay near one, as after training.
    """
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
    return module


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
