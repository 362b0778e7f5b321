"""Choosing training documents by a quality score under a token budget, as phi-1 filters its web
data with a classifier's "educational value" score and keeps the best.

Shapes: ``n`` documents, each with a score and a length in tokens.

References: gunasekar2023textbooks (Section 2.1, the filtered code-language dataset).
"""

from __future__ import annotations

import torch


def keep_within_budget(scores: torch.Tensor, lengths: torch.Tensor, budget: int) -> torch.Tensor:
    """Keep the best-scored documents, best first, while their tokens fit ``budget``.

    Ties keep the earlier document first (a stable sort). Stops at the first document that does not
    fit. Returns a bool mask ``(n,)`` in the input order.
    """
    order = torch.sort(scores, descending=True, stable=True).indices  # best first
    fits = torch.cumsum(lengths[order], dim=0) <= budget  # (n,) the longest prefix that fits
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[order[fits]] = True
    return keep
