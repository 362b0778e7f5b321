"""From-scratch building blocks of open LLMs, each proven equal to its Hugging Face reference.

Modules:
    rope       rotary position embeddings (RoPE)
    attention  grouped-query attention (MHA and MQA as settings), masks, KV cache
    decoder    a tiny Llama-style decoder-only language model
"""

__version__ = "0.1.0"
