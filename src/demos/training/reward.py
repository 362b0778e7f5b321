"""The reward model of InstructGPT (and so of ChatGPT): a scalar score per sequence, trained on pairs.

A labeller prefers one of two answers to the same prompt; the reward model ``r`` is trained so that
``sigma(r(chosen) - r(rejected))`` is the probability of that preference (Bradley-Terry), i.e. to
minimise ``-log sigma(r_chosen - r_rejected)``. The score of a sequence is the scalar head's output
at its last real token. Shapes: ``b`` pairs (or sequences), ``t`` tokens.

References: ouyang2022instructgpt (Eq. 1, the pairwise loss averaged over the K-choose-2 pairs of a
prompt's K ranked answers), openai2022chatgpt (ChatGPT trained with the same method).
Reference implementation: trl==1.16.0, trainer/reward_trainer.py::RewardTrainer.compute_loss (which
also accepts a per-pair ``margin`` subtracted inside the sigmoid); transformers==5.23.0,
models/llama/modeling_llama.py::LlamaForSequenceClassification (the score at the last non-pad token).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_reward_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float | None = None
) -> torch.Tensor:
    """Per-pair loss ``-log sigma(r_chosen - r_rejected - margin)``: ``(b,), (b,) -> (b,)``.

    Eq. (1) of ouyang2022instructgpt for one pair; ``margin`` (a float or ``(b,)``, default none) is
    TRL's option, asking the chosen answer to win by at least that much. ``logsigmoid`` keeps a
    large negative difference finite (``log(sigmoid(x))`` would give ``-inf``). The mean over pairs
    is ``RewardTrainer``'s loss.

    Raises:
        ValueError: if ``chosen`` and ``rejected`` differ in shape or are not 1-D, or if a tensor
            ``margin`` does not have their shape.
    """
    if chosen.shape != rejected.shape or chosen.dim() != 1:
        raise ValueError(
            f"chosen {tuple(chosen.shape)} and rejected {tuple(rejected.shape)} must both be (b,)"
        )
    difference = chosen - rejected  # (b,)
    if margin is not None:
        if isinstance(margin, torch.Tensor) and margin.shape != chosen.shape:
            raise ValueError(
                f"margin {tuple(margin.shape)} must be a float or have the pairs' shape "
                f"{tuple(chosen.shape)}"
            )
        difference = difference - margin
    return -F.logsigmoid(difference)


def last_token_scores(scores: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The score of each sequence at its last real token: ``(b, t), (b, t) -> (b,)``.

    ``scores`` are the scalar head's outputs at every position; ``attention_mask`` is 1 on real
    tokens, padded on the right (as TRL's preference collator pads), so the last real token sits at
    ``mask.sum() - 1``. transformers' sequence-classification heads find the same position as the
    last token that is not ``pad_token_id``.

    Raises:
        ValueError: if the shapes differ, or a row has no real token, or the padding is not on
            the right (a 0 followed by a 1).
    """
    if scores.shape != attention_mask.shape or scores.dim() != 2:
        raise ValueError(
            f"scores {tuple(scores.shape)} and attention_mask {tuple(attention_mask.shape)} "
            "must both be (b, t)"
        )
    mask = attention_mask.long()
    lengths = mask.sum(-1)  # (b,)
    if (lengths == 0).any():
        raise ValueError("attention_mask has a row with no real token (all zeros)")
    if (mask[:, 1:] > mask[:, :-1]).any():
        raise ValueError("attention_mask must be padded on the right (a 0 is followed by a 1)")
    return scores.gather(-1, (lengths - 1).unsqueeze(-1)).squeeze(-1)  # (b,)


def sequence_rewards(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Scores ``(b,)`` of a transformers ``...ForSequenceClassification`` reward model (one label),
    computed our way: its body's hidden states, its ``score`` head at every position, then
    :func:`last_token_scores`. Inputs ``(b, t)``, right-padded."""
    hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return last_token_scores(model.score(hidden).squeeze(-1), attention_mask)  # (b, t, 1) -> (b,)
