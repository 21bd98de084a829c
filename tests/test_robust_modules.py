"""The robustness benchmark split into modules (plan / fuse / score / run) and its report built on report.py."""

from __future__ import annotations

import math

import crossfuse.robust as robust
from crossfuse import robust_fuse, robust_plan, robust_score
from crossfuse.report import fmt, table
from crossfuse.robust_report import _rank_table


def test_public_names_stay_importable_from_robust():
    owners = {"parse_methods": robust_plan, "get_baseline": robust_plan, "produce": robust_fuse,
              "external_outputs": robust_fuse, "score_all": robust_score, "fold_cache": robust_score}
    for name, mod in owners.items():
        assert getattr(robust, name) is getattr(mod, name)
    assert all(hasattr(robust, n) for n in robust.__all__)
    # the worker a spawned pool pickles by name lives in an importable module
    assert robust.score_item.__module__ == "crossfuse.robust_score"


def test_fmt_nan_and_table_head_html():
    assert fmt(math.nan) == "nan" and fmt(math.nan, 3, nan="") == "" and fmt(1 / 3, 2, nan="") == "0.33"
    assert fmt(math.inf, nan="") == "inf"
    assert "<th>&amp;Delta;</th>" in table(["&Delta;"], [])
    assert "<th>&Delta;</th>" in table(["&Delta;"], [], head_html=True)


def test_rank_table_blank_for_a_missing_condition():
    m = robust.Method("max", "max", "baseline")
    conds = [robust.Condition(n, n, 0.0, None, None) for n in ("clean", "noise@1")]
    res = robust.BenchResult("cddfuse", [], conds, [m])
    html = _rank_table(res, [{"condition": "clean", "method": "max", "rank": 1.5}])
    # clean ranked 1.50, noise@1 not scored: an empty cell, and the mean over what exists
    assert html.count("<td>1.50</td>") == 1 and "<td></td>" in html and "<b>1.50</b>" in html
