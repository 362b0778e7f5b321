"""Checkers for the chapters' exercises, one module per chapter (``demos.exercises.llama2`` ...), built on
the compare-and-explain routine of :mod:`demos.exercises.core`."""
