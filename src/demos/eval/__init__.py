"""Evaluation: continuation scoring and the metrics of the benchmark chapters (see the evaluation issue).

``scoring``: continuation log-likelihoods as lm-evaluation-harness's HFLM computes them;
``metrics``: acc, acc_norm, acc_bytes of a multiple-choice question; ``fewshot``: the leaderboard's
tasks, shots and prompt formats; ``harness_reference``: the harness itself, driven offline, as the
reference the tests compare with.
"""
