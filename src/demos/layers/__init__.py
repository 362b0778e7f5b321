"""Ideas the chapters derive (attention, RoPE, masks, caches, norms, MLPs, the selective scan, MoE ...),
as pure functions and small modules that the models in ``demos.models`` assemble."""
