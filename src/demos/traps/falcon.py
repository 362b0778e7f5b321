"""The Falcon chapter's trap: cutting the fused ``query_key_value`` output in the wrong layout.

Measured on the logits of a tiny random ``FalconForCausalLM`` in the new decoder architecture
(Falcon-40B/180B: 4 query heads in 2 key/value groups, 12 tokens, fp32): the right version is
:class:`demos.models.falcon.FalconLM` (layout ``"falcon"``, group by group), the wrong one the same
weights cut as ``[all q | all k | all v]`` (layout ``"phi3"``).

Reference implementation: transformers==5.23.0, models/falcon/modeling_falcon.py::
FalconAttention._split_heads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from demos.traps import Measured, Trap
from demos.traps.tiny import measure_logits

QUANTITY = "logits of a 2-layer FalconForCausalLM (new architecture, h = 4, g = 2), 12 tokens, fp32"
TOLERANCE = 1e-4  # as in demos.traps.llama2: fp32 logits agree to ~1e-6


@contextlib.contextmanager
def layout(ours: nn.Module, name: str) -> Iterator[None]:
    """Cut every block's fused q/k/v in layout ``name`` inside the block, then restore it."""
    attentions = [block.self_attention for block in ours.blocks]
    before = [a.layout for a in attentions]
    for a in attentions:
        a.layout = name
    try:
        yield
    finally:
        for a, old in zip(attentions, before, strict=True):
            a.layout = old


def measure() -> Measured:
    from demos.models.falcon import FalconLM

    def plant(ours: nn.Module) -> contextlib.AbstractContextManager:
        return layout(ours, "phi3")

    # new_decoder_architecture: Falcon-40B/180B's grouped key/value heads (g = 2), not 7B's g = 1
    return measure_logits(
        "falcon", FalconLM, plant, TOLERANCE, QUANTITY, new_decoder_architecture=True
    )


TRAPS = [
    Trap(
        chapter="falcon",
        title="Fused QKV split in the wrong layout",
        wrong="q, k, v = fused.split([h * d, g * d, g * d], dim=-1)",
        # the right line names the function; the chapter shows its body (show_source)
        right="q, k, v = split_fused_qkv(fused, h, g, d)  # per group: r q, then k, v",
        shows="every logit of a grouped model (40B, 180B); with one key/value head (7B) the two "
        "layouts are the same, so a test on the 7B layout alone passes",
        measure=measure,
    ),
]
