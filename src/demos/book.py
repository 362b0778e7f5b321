"""Helpers the chapters share, importable from one place: the parity comparison and the notebook
display helpers, re-exported.

The parity comparison itself (``max_abs_diff``, ``compare_lm``, ``parity_report`` and the tolerance
policy) lives in :mod:`demos.parity`; the display helpers in :mod:`demos.display`; the book's own
tooling (table of contents, the parity results page) outside the installed package, in
``book/booktools.py``. Their names stay importable from here for the chapters written before the split.
"""

from __future__ import annotations

from demos.display import (  # noqa: F401  (re-exported: chapters import them from demos.book)
    BUDGET_MIME,
    missing_file_note,
    report_budget,
    show_recorded,
    show_source,
)
from demos.parity import (  # noqa: F401  (re-exported: the pages and tests import them from here)
    MARGIN,
    ParityReport,
    Tolerance,
    compare_lm,
    max_abs_diff,
    parity_report,
    scaled_error,
    string_parity,
    tolerance_for,
)
