"""Memory to hold a model's weights at a given precision (the KV cache is ``ModelSize``'s method).

NF4 is QLoRA's 4-bit format: 4 bits per weight plus per-block scales.
"""

from __future__ import annotations

BYTES_PER_PARAMETER = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "nf4": 0.5}


def weights_bytes(params: int | float, dtype: str) -> float:
    """Bytes to hold ``params`` weights at ``dtype`` (fp32, fp16, bf16, int8, nf4).

    nf4 counts 4 bits per weight and leaves out the per-block scales (about 0.5 bit per weight
    more with block size 64), so it is a lower bound. ``ValueError`` for another dtype, or a count
    that is negative, NaN, infinite or not a number.
    """
    if dtype not in BYTES_PER_PARAMETER:
        raise ValueError(f"dtype ({dtype!r}) must be one of {sorted(BYTES_PER_PARAMETER)}")
    from demos.validation import check_finite_number  # here: importing validation imports torch

    check_finite_number("params", params, minimum=0)  # refuses NaN, inf, strings, None and bools
    return params * BYTES_PER_PARAMETER[dtype]
