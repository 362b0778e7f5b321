"""KV caches and the memory calculators: bad input gets a ValueError naming the value and the rule."""

from __future__ import annotations

import math

import pytest
import torch

from demos.layers.kv_cache import KVCache, RollingKVCache, kv_cache_bytes_per_token
from demos.models.mamba import state_bytes_per_token
from demos.registry import weights_bytes
from demos.validation import check_state


def kv(b=2, g=2, t=3, d=4, dtype=torch.float32):
    return torch.randn(b, g, t, d, dtype=dtype), torch.randn(b, g, t, d, dtype=dtype)


CACHES = {"KVCache": KVCache, "RollingKVCache": lambda: RollingKVCache(4)}

# (what the second update changes, new k, new v, the message expected)
REUSED = [
    ("batch", *kv(b=3), "holds"),
    ("heads", *kv(g=1), "holds"),
    ("head_dim", *kv(d=8), "holds"),
    ("dtype", *kv(dtype=torch.float64), "holds"),
]


@pytest.mark.parametrize("cache", list(CACHES))
@pytest.mark.parametrize("change, k, v, match", REUSED, ids=[r[0] for r in REUSED])
def test_cache_reused_with_another_shape_is_refused(cache, change, k, v, match):
    c = CACHES[cache]()
    c.update(*kv())
    with pytest.raises(ValueError, match=match):
        c.update(k, v)
    assert len(c) == 3  # nothing stored by the refused call


BAD_KV = [
    ("k and v of different lengths", torch.randn(2, 2, 3, 4), torch.randn(2, 2, 2, 4), "one shape"),
    (
        "k and v of different dtypes",
        torch.randn(2, 2, 3, 4),
        torch.randn(2, 2, 3, 4).double(),
        "dtype",
    ),
    ("3-D keys", torch.randn(2, 3, 4), torch.randn(2, 3, 4), "one shape"),
    (
        "integer keys",
        torch.ones(2, 2, 3, 4, dtype=torch.long),
        torch.ones(2, 2, 3, 4, dtype=torch.long),
        "floating",
    ),
]


@pytest.mark.parametrize("cache", list(CACHES))
@pytest.mark.parametrize("case, k, v, match", BAD_KV, ids=[r[0] for r in BAD_KV])
def test_cache_refuses_keys_and_values_that_do_not_fit(cache, case, k, v, match):
    with pytest.raises(ValueError, match=match):
        CACHES[cache]().update(k, v)


@pytest.mark.parametrize("window", [None, 0, -1, 2.0, True, "4"])
def test_rolling_cache_window(window):
    with pytest.raises(ValueError, match="window"):
        RollingKVCache(window)


STATE_CASES = [((3, 4, 5), (2, 4, 5)), ((2, 4, 5), (2, 4, 6)), ((2, 4), (2, 4, 5))]


@pytest.mark.parametrize("got, want", STATE_CASES)
def test_check_state_names_the_state_and_the_shape(got, want):
    """For Mamba's state reused with another batch or width (models/mamba.py calls it)."""
    with pytest.raises(ValueError, match=r"ssm state has shape .* needs"):
        check_state("ssm", torch.zeros(got), want)
    check_state("ssm", torch.zeros(want), want)  # the right shape passes


MAMBA = dict(num_hidden_layers=2, intermediate_size=8, state_size=4, conv_kernel=4, seq_len=10)
BAD_STATE_ARGS = [
    (name, value) for name in MAMBA for value in (-1, 0, 2.5, math.nan, None, "8", True)
] + [("bytes_per_value", -2), ("bytes_per_value", 0)]


@pytest.mark.parametrize("name, value", BAD_STATE_ARGS)
def test_state_bytes_per_token_refuses_what_kv_cache_bytes_refuses(name, value):
    with pytest.raises(ValueError, match=name):
        state_bytes_per_token(**{**MAMBA, name: value})


def test_state_bytes_per_token_counts_conv_and_ssm_state():
    per_layer = 8 * (4 - 1 + 4)  # e * (k - 1 + n)
    assert state_bytes_per_token(**MAMBA) == 2 * per_layer * 2 / 10
    assert kv_cache_bytes_per_token(2, 2, 4) == 2 * 2 * 2 * 4 * 2


@pytest.mark.parametrize("params", [-1, math.nan, math.inf, -math.inf, "7B", None, True, [1]])
def test_weights_bytes_refuses_what_is_not_a_count(params):
    with pytest.raises(ValueError, match="params"):
        weights_bytes(params, "fp16")
