"""Qwen2's dense decoder (Qwen1.5, and the layer of first-generation Qwen): Llama with biases on q, k, v.

transformers' ``Qwen2ForCausalLM`` is Mistral's decoder with two changes: (1) the query, key and
value projections have a bias and the output projection has none [bai2023qwen]; (2) a sliding window
applies only to the layers ``config.layer_types`` marks ``"sliding_attention"`` (from
``use_sliding_window`` and ``max_window_layers``: layers ``i >= max_window_layers`` slide), so a
window in the config that no layer uses changes nothing. ``Qwen2LM`` subclasses ``MistralLM`` (a
rolling cache in the layers that slide) and states only these (``# NEW vs Llama``).

Axes: as in :mod:`demos.models.llama`.

References:
    bai2023qwen      Qwen Technical Report, Section 2.2 (architecture: bias on the QKV layer).
    hf_qwen15_configs  config.json of the Qwen1.5 checkpoints.

Reference implementation:
    transformers==5.23.0, models/qwen2/modeling_qwen2.py::Qwen2Attention (``bias=True`` on q/k/v,
    ``bias=False`` on o; ``sliding_window`` if ``config.layer_types[layer_idx]`` slides),
    models/qwen2/configuration_qwen2.py::Qwen2Config.__post_init__ (``layer_types``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from demos.layers.attention import AttentionConfig
from demos.models import check_model_type, fields_from_hf, rope_theta_from_hf
from demos.models.llama import LlamaLMConfig
from demos.models.mistral import MistralLM


@dataclass(frozen=True)
class Qwen2LMConfig(LlamaLMConfig):
    """:class:`LlamaLMConfig` read from a ``Qwen2Config``: q/k/v biases, a window per layer."""

    model_types: ClassVar[tuple[str, ...]] = ("qwen2",)  # NEW vs Llama: Qwen2Config
    hf_reads: ClassVar[dict[str, str]] = {
        "rope_parameters": "rope_theta; rope types other than 'default' refused",
        "use_sliding_window": "through sliding_window (None unless set) and layer_types, which "
        "Qwen2Config.__post_init__ derives from it",
        "max_window_layers": "through layer_types (layers i >= max_window_layers slide)",
        "head_dim": "not a Qwen2Config field, but Qwen2Attention reads getattr(config, 'head_dim')",
    }

    def attention_config(self, layer_idx: int | None = None) -> AttentionConfig:
        # NEW vs Llama: a bias on q, k and v, none on o (Qwen2Config has no switch for either)
        config = super().attention_config(layer_idx)
        return dataclasses.replace(config, qkv_bias=True, o_bias=False)

    @classmethod
    def from_hf(cls, hf_config: Any) -> Qwen2LMConfig:
        """Read a transformers ``Qwen2Config``; which layers slide is its ``layer_types``."""
        check_model_type(cls, hf_config)  # first: the checks below read this type's fields
        layer_types = tuple(hf_config.layer_types)  # NEW vs Llama: the window is per layer
        return fields_from_hf(
            cls, hf_config, rope_theta=rope_theta_from_hf(hf_config), layer_types=layer_types
        )


class Qwen2LM(MistralLM):
    """:class:`~demos.models.mistral.MistralLM` (a rolling cache in each sliding layer) reading a
    ``Qwen2Config``; the blocks are Llama's, with the q/k/v biases of :class:`Qwen2LMConfig`."""

    config_class = Qwen2LMConfig  # NEW vs Llama: Qwen2Config, q/k/v bias, layer_types
