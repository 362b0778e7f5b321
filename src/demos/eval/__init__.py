"""Evaluation: continuation scoring and the metrics of the benchmark chapters (see the evaluation issue)."""
