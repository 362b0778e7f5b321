"""Bad input that used to pass in silence or fail deep inside torch (issue 23, item 3), one case a
row: each now raises a ValueError whose message names the value and the rule, and numpy scalars
are accepted where a number is meant. Run once: no device or precision parametrization.

The cases that compare with a reference package (NF4's short block against bitsandbytes, the
scorer against lm-eval, attention masks against torch's SDPA, first_divergence on parallel
blocks) live in the test files of their modules: tests/layers/test_quantization.py,
tests/eval/test_scoring.py, tests/layers/test_attention.py, tests/test_debugging.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import transformers

from demos.catalog import ROWS
from demos.eval.arena import bootstrap_bradley_terry
from demos.eval.mmlu import macro_average, micro_average
from demos.eval.winogrande import winogrande_requests
from demos.exercises.core import check_function
from demos.generation import generate
from demos.layers.attention import AttentionConfig, GroupedQueryAttention
from demos.layers.quantization import dequantize_nf4, pack_nf4
from demos.layers.rope import rotate_half
from demos.models.gemma import GemmaLM
from demos.models.llama import LlamaLM
from demos.models.phi3 import Phi3LMConfig
from demos.models.qwen2 import Qwen2LM, Qwen2LMConfig
from demos.registry.schema import parse_count
from demos.weights import load_hf_weights

SMALL = dict(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
)
PHI3 = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2)
SHOT = ("The trophy did not fit in the case because _ was too big.", "trophy", "case")
# a battle log where every model won and lost, but whose resamples split the models apart
BATTLES = [("a", "b", "model_a"), ("a", "b", "model_b"), ("c", "d", "model_a")] + [
    ("c", "d", "model_b"),
    ("a", "c", "model_a"),
    ("a", "c", "model_b"),
]


def tiny_llama():
    ours, _ = ROWS["llama-gqa"].pair()
    return ours.eval()


def mamba_with_a_list_cache():
    ours, _ = ROWS["mamba"].pair()
    return ours(torch.tensor([[1, 2, 3]]), cache=[])


def qwen2_loading_qwen3_weights():
    """A learner who sets model_type aside: Qwen2LM with Qwen3's weights (q_norm, k_norm extra)."""
    qwen3 = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**SMALL))
    ours = Qwen2LM(Qwen2LMConfig.from_hf(transformers.Qwen2Config(**SMALL)))
    return load_hf_weights(ours, qwen3)


# (case, call, the message's words as a regex): formerly silent (a wrong answer) or unclear (a
# torch error from deep inside), as measured for issue 23
CASES = {
    "GemmaLM.from_hf(LlamaForCausalLM)": (
        lambda: GemmaLM.from_hf(transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL))),
        r"reads model_type 'gemma', got 'llama'; use demos.models.llama.LlamaLM",
    ),
    "LlamaLM.from_hf(Qwen3ForCausalLM)": (
        lambda: LlamaLM.from_hf(transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**SMALL))),
        r"got 'qwen3'; no class here serves it: q_norm/k_norm \(QK-norm",
    ),
    "GemmaLM.from_hf(Gemma3ForCausalLM)": (
        lambda: GemmaLM.from_hf(
            transformers.Gemma3ForCausalLM(transformers.Gemma3TextConfig(**SMALL))
        ),
        r"got 'gemma3_text'; no class here serves it: q_norm/k_norm \(QK-norm.*"
        r"pre/post_feedforward_layernorm",
    ),
    "Qwen3 weights into Qwen2LM": (
        qwen2_loading_qwen3_weights,
        r"Qwen3ForCausalLM has the parameter 'model.layers.0.self_attn.q_norm.weight', which "
        r"Qwen2LM lacks: q_norm/k_norm \(QK-norm",
    ),
    "AttentionConfig.from_hf(Qwen2Config)": (
        lambda: AttentionConfig.from_hf(transformers.Qwen2Config(**SMALL)),
        r"reads the attention of model_type 'llama', 'mistral', 'mixtral', 'gemma', got 'qwen2'",
    ),
    "GroupedQueryAttention.from_hf(GPTNeoXAttention)": (
        lambda: GroupedQueryAttention.from_hf(
            transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(**SMALL))
            .gpt_neox.layers[0]
            .attention
        ),
        r"got 'gpt_neox': build that family's model with its class",
    ),
    "dequantize_nf4 with a negative absmax": (
        lambda: dequantize_nf4(torch.zeros(64, dtype=torch.uint8), torch.tensor([-1.0])),
        r"absmax must hold finite values >= 0 .* got -1.0 for block 0",
    ),
    "pack_nf4 of code 16": (
        lambda: pack_nf4(torch.tensor([16, 0])),
        r"codes must lie in \[0, 15\] \(4 bits\), got values from 0 to 16",
    ),
    "pack_nf4 of float codes": (
        lambda: pack_nf4(torch.tensor([1.5, 0.0])),
        r"codes must be an integer tensor of NF4 codes in \[0, 15\], got torch.float32",
    ),
    "micro_average with a score of 2.0": (
        lambda: micro_average({"law": [2.0, 1.0]}),
        r"subject 'law': score 0 \(2.0\) must be a number in \[0, 1\]",
    ),
    "macro_average with NaN": (
        lambda: macro_average({"law": [1.0], "physics": [math.nan]}),
        r"subject 'physics': score 0 \(nan\) must be a number in \[0, 1\]",
    ),
    "winogrande_requests with gold -1": (
        lambda: winogrande_requests(SHOT[0], SHOT[1:], shots=[(*SHOT, -1)]),
        r"a shot's gold index \(-1\) must be 0 \(option1\) or 1 \(option2\)",
    ),
    "generate, greedy, temperature -1": (
        lambda: generate(tiny_llama(), torch.tensor([[1, 2]]), 2, temperature=-1),
        r"temperature \(-1\) must be positive",
    ),
    "generate, greedy, top_k 0": (
        lambda: generate(tiny_llama(), torch.tensor([[1, 2]]), 2, top_k=0),
        r"top_k \(0\) must be a positive integer",
    ),
    "Phi3LMConfig with attention_factor -1": (
        lambda: Phi3LMConfig(**PHI3, num_attention_heads=4, attention_factor=-1.0),
        r"attention_factor \(-1.0\) must be positive",
    ),
    "Phi3LMConfig with attention_factor NaN": (
        lambda: Phi3LMConfig(**PHI3, num_attention_heads=4, attention_factor=math.nan),
        r"attention_factor \(nan\) must be a finite number",
    ),
    "parse_count('1,2,3')": (
        lambda: parse_count("1,2,3"),
        r"parameter figure \('1,2,3'\) must look like .* \(commas only between groups of three",
    ),
    "parse_count('7,B')": (lambda: parse_count("7,B"), r"parameter figure \('7,B'\)"),
    "check_function with no cases": (
        lambda: check_function(abs, abs, {}, ("x",)),
        r"cases \(\{\}\) must map at least one case name .* would pass any answer",
    ),
    "rotate_half on an odd length": (
        lambda: rotate_half(torch.randn(2, 3)),
        r"x's last axis must have even length .* got shape \(2, 3\)",
    ),
    "MambaLM(cache=[])": (
        mamba_with_a_list_cache,
        r"cache must be a MambaCache from new_cache\(\) .* got list",
    ),
    "bootstrap resample that splits the models": (
        lambda: bootstrap_bradley_terry(BATTLES, rounds=5, seed=0),
        r"bootstrap resample 0 of 5 \(seed 0\): the battles split the models into groups that "
        r"never met",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_a_value_error_that_names_the_rule(case):
    call, words = CASES[case]
    with pytest.raises(ValueError, match=words):
        call()


def test_the_same_calls_with_good_input_work():
    """The rules above refuse only the bad value: the neighbouring good input still passes."""
    assert pack_nf4(torch.tensor([15, 0])).tolist() == [0xF0]
    assert dequantize_nf4(torch.full((64,), 15, dtype=torch.uint8), torch.tensor([0.5]))[0] == 0.5
    assert micro_average({"law": [1.0, 0.0], "physics": [1.0]}) == pytest.approx(2 / 3)
    assert macro_average({"law": [1.0, 0.0], "physics": [1.0]}) == pytest.approx(0.75)
    gold_1 = winogrande_requests(SHOT[0], SHOT[1:], shots=[(*SHOT, 1)])
    assert gold_1[0][0].startswith("The trophy did not fit in the case because case")
    assert parse_count("70,426,624") == (70_426_624, 1) and parse_count("1,000B")[0] == 10**12
    assert rotate_half(torch.tensor([1.0, 2.0])).tolist() == [-2.0, 1.0]
    assert Phi3LMConfig(**PHI3, num_attention_heads=4, attention_factor=1.2).attention_factor == 1.2
    ids = generate(tiny_llama(), torch.tensor([[1, 2]]), 2, temperature=0.5, top_k=3)
    assert ids.shape == (1, 4)


# numpy scalars where a number is meant: np.float32 is no Python float, np.int64 no int
NUMPY_SCALARS = {
    "route_top_k(top_k=np.int64(2))": lambda: __import__(
        "demos.layers.moe", fromlist=["route_top_k"]
    ).route_top_k(torch.randn(3, 4), np.int64(2), True),
    "rope_cos_sin(head_dim=np.int64(8))": lambda: __import__(
        "demos.layers.rope", fromlist=["rope_cos_sin"]
    ).rope_cos_sin(torch.arange(3), np.int64(8)),
    "rotary_ndims(partial_rotary_factor=np.float32(0.25))": lambda: __import__(
        "demos.models.gpt_neox", fromlist=["rotary_ndims"]
    ).rotary_ndims(16, np.float32(0.25)),
    "ntk_scaled_base(alpha=np.float32(2))": lambda: __import__(
        "demos.layers.long_context", fromlist=["ntk_scaled_base"]
    ).ntk_scaled_base(10000.0, np.float32(2.0), np.int64(8)),
    "lower_layers_window(windowed_layers=np.int64(1))": lambda: __import__(
        "demos.layers.long_context", fromlist=["lower_layers_window"]
    ).lower_layers_window(2, np.int64(1)),
    "parity_report(tolerance=np.float32(1e-5))": lambda: __import__(
        "demos.book", fromlist=["parity_report"]
    ).parity_report({"x": (torch.zeros(2), torch.zeros(2))}, np.float32(1e-5)),
    "dpo_loss(label_smoothing=np.float32(0.1))": lambda: __import__(
        "demos.training.preference", fromlist=["dpo_loss"]
    ).dpo_loss(*(-torch.rand(4) for _ in range(4)), label_smoothing=np.float32(0.1)),
    "micro_average([np.float32(1), np.float64(0)])": lambda: micro_average(
        {"law": [np.float32(1.0), np.float64(0.0)]}
    ),
    "weights_bytes(np.int64(7e9), 'fp16')": lambda: __import__(
        "demos.registry.memory", fromlist=["weights_bytes"]
    ).weights_bytes(np.int64(7_000_000_000), "fp16"),
}


@pytest.mark.parametrize("case", NUMPY_SCALARS)
def test_numpy_scalars_are_numbers(case):
    NUMPY_SCALARS[case]()  # no ValueError
