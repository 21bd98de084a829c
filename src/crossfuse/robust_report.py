"""Outputs of ``crossfuse bench robustness``: summary.csv, per_image.csv, summary.json, curves.png and a
self-contained report.html (images inlined as base64, no network access)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from crossfuse import io as cio
from crossfuse.report import data_uri, fmt, img_tag, page, table, td, thumbnail_uri
from crossfuse.robust import CLEAN, INFO_METRICS, NOISE, RANK_METRICS, BenchResult
from crossfuse.robust_stats import BOOTSTRAP_RESAMPLES, compare, drops, mean_ranks, summarize

PROTOCOL = ("Every fused image is scored against the CLEAN infrared and visible sources, never against the corrupted "
            "inputs the method saw: a method is rewarded for what it recovers, not for copying the degradation. "
            "Only source-referenced metrics (MI, SCD, VIF, Qabf, SSIM) rank. EN, SD, SF and AG measure the fused "
            "image alone and rise when noise is added, so they appear only beside a noise estimate (Immerkaer's "
            "sigma) and never rank.")


def tables(res: BenchResult, reference: str | None = None) -> dict:
    """Everything derived from the per-image rows: summary rows (with rank and drop), the bootstrap comparisons."""
    extra = [m for m in res.metrics if m not in RANK_METRICS] + [NOISE]
    ranked = tuple(m for m in RANK_METRICS if m in res.metrics)
    order = {c.name: i for i, c in enumerate(res.conditions)}
    morder = {m.name: i for i, m in enumerate(res.methods)}
    summary = summarize(res.rows, list(ranked), tuple(extra))
    summary.sort(key=lambda r: (order.get(r["condition"], 1 << 30), morder.get(r["method"], 1 << 30)))
    ranks = mean_ranks(summary, ranked)
    drop = drops(summary, ranked)
    for r in summary:
        r["rank"] = ranks[(r["condition"], r["method"])]
        for m in ranked:
            r[f"drop_{m}"] = drop.get((r["condition"], r["method"]), {}).get(m, math.nan)
    ref = reference or (res.methods[0].name if res.methods else None)
    boot = compare(res.rows, ref, ranked) if ref else []
    return {"summary": summary, "ranked": list(ranked), "extra": extra, "reference": ref, "bootstrap": boot}


def summary_columns(t: dict) -> list[str]:
    extra = [m for m in t["extra"] if m not in INFO_METRICS and m != NOISE]
    info = [m for m in t["extra"] if m in INFO_METRICS or m == NOISE]
    return ["condition", "method", "n", *t["ranked"], *extra, "rank", *[f"drop_{m}" for m in t["ranked"]], *info]


def _json_safe(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def curves_png(res: BenchResult, summary: list[dict], metrics: list[str]) -> bytes:
    """Metric vs severity: one column of panels per condition, one row per metric, one line per method
    (severity 0 = the clean pairs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bases = list(dict.fromkeys(c.base for c in res.conditions if c.name != CLEAN))
    sev = {c.name: c.severity for c in res.conditions}
    base_of = {c.name: c.base for c in res.conditions}
    ncol = max(1, len(bases))
    fig, axes = plt.subplots(len(metrics), ncol, figsize=(2.3 * ncol + 1, 1.9 * len(metrics) + 0.6),
                             squeeze=False, sharex="col")
    for j, base in enumerate(bases):
        for i, m in enumerate(metrics):
            ax = axes[i][j]
            for meth in res.methods:
                pts = sorted((sev[r["condition"]], r[m]) for r in summary if r["method"] == meth.name
                             and (base_of.get(r["condition"]) == base or r["condition"] == CLEAN))
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, lw=1.2, label=meth.name)
            if i == 0:
                ax.set_title(base, fontsize=9)
            if j == 0:
                ax.set_ylabel(m, fontsize=9)
            if i == len(metrics) - 1:
                ax.set_xlabel("severity (0 = clean)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 8), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (1.9 * len(metrics) + 0.6)))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(res: BenchResult, out: Path, *, reference: str | None = None, thumbs: int = 1,
                  command: str = "") -> tuple[dict[str, Path], dict]:
    """Write summary.csv, per_image.csv, summary.json, curves.png and report.html into ``out`` (atomically,
    replacing the previous run's); returns the paths and the :func:`tables`."""
    from crossfuse.metrics import get_profile

    t = tables(res, reference)
    cols = summary_columns(t)
    img_cols = ["condition", "method", "image", *res.metrics, NOISE]
    prof = get_profile(res.profile)
    meta = {"profile": res.profile, "reference": prof.reference, "colour": prof.colour, "command": command,
            "protocol": PROTOCOL, "ranked_metrics": t["ranked"],
            "conditions": [{"name": c.name, "base": c.base, "severity": c.severity} for c in res.conditions],
            "methods": [{"name": m.name, "kind": m.kind, "spec": m.spec} for m in res.methods],
            "problems": res.problems, "summary": t["summary"],
            "bootstrap": {"reference": t["reference"], "level": 0.95, "rows": t["bootstrap"]}}
    png = curves_png(res, t["summary"], t["ranked"])
    paths = {
        "summary.csv": cio.write_bytes_atomic(out / "summary.csv", cio.csv_text(t["summary"], cols),
                                              overwrite=True),
        "per_image.csv": cio.write_bytes_atomic(out / "per_image.csv", cio.csv_text(res.rows, img_cols),
                                                overwrite=True),
        "summary.json": cio.write_bytes_atomic(out / "summary.json", json.dumps(_json_safe(meta), indent=1),
                                               overwrite=True),
        "curves.png": cio.write_bytes_atomic(out / "curves.png", png, overwrite=True),
    }
    html_page = render_html(res, t, png, thumbs, meta)
    paths["report.html"] = cio.write_bytes_atomic(out / "report.html", html_page, overwrite=True)
    return paths, t


# --------------------------------------------------------------------------------------------------- html

# Only what the robustness page adds to report.CSS (the one page style): grey non-ranking columns, best values,
# the thumbnail grid.
_CSS = """.info{color:#888}.best{font-weight:bold;background:#e6f4e6}.grid td{text-align:center;font-size:11px}
.grid img{display:block}h2{margin-top:1.6em}"""


def _f(v: object, nd: int = 3) -> str:
    return fmt(v, nd, nan="")  # an empty cell where a method scored nothing


def _condition_table(rows: list[dict], t: dict) -> str:
    ranked, info = t["ranked"], [m for m in t["extra"] if m in INFO_METRICS or m == NOISE]
    other = [m for m in t["extra"] if m not in info]
    head = (["method", "n", *ranked, *other, "rank", *[f"&Delta;{m} %" for m in ranked]]
            + [f'<span class="info">{m}</span>' for m in info])
    best = {m: max((r[m] for r in rows if math.isfinite(r[m])), default=math.nan) for m in ranked}
    body = []
    for r in rows:
        cells = [_f(r["method"]), str(r["n"])]
        cells += [f'<span class="best">{_f(r[m])}</span>' if r[m] == best[m] else _f(r[m]) for m in ranked]
        cells += [_f(r[m]) for m in other] + [_f(r["rank"], 2)]
        cells += [_f(r[f"drop_{m}"], 1) for m in ranked]
        cells += [f'<span class="info">{_f(r[m], 2)}</span>' for m in info]
        body.append([td(c) for c in cells])
    return table(head, body, head_html=True)


def _rank_table(res: BenchResult, summary: list[dict]) -> str:
    conds = [c.name for c in res.conditions]
    rank = {(r["condition"], r["method"]): r["rank"] for r in summary}
    body = []
    for m in res.methods:
        vals = [rank.get((c, m.name), math.nan) for c in conds]
        mean = float(np.nanmean(vals)) if any(math.isfinite(v) for v in vals) else math.nan
        body.append([td(fmt(m.name)), *[td(_f(v, 2)) for v in vals], td(f"<b>{_f(mean, 2)}</b>")])
    return table(["method", *conds, "mean"], body)


def _bootstrap_table(t: dict) -> str:
    rows = t["bootstrap"]
    if not rows:
        return "<p>(a single method: nothing to compare)</p>"
    keyed = {(r["condition"], r["b"], r["metric"]): r for r in rows}
    pairs = list(dict.fromkeys((r["condition"], r["b"]) for r in rows))
    body = []
    for cond, other in pairs:
        cells = []
        for m in t["ranked"]:
            r = keyed[(cond, other, m)]
            sig = r["ci_low"] > 0 or r["ci_high"] < 0
            txt = f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
            cells.append(f"<b>{txt}</b>" if sig else txt)
        n = keyed[(cond, other, t["ranked"][0])]["n"]
        body.append([td(fmt(cond)), td(fmt(other)), td(str(n)), *[td(c) for c in cells]])
    return table(["condition", "other method", "n", *t["ranked"]], body)


def _grid(res: BenchResult, cond: str, thumbs: int) -> str:
    pairs = res.pairs.get(cond, {})
    stems = sorted(pairs)[:thumbs]
    if not stems:
        return ""
    body = []
    for stem in stems:
        files = [pairs[stem]["ir"], pairs[stem]["vi"], *[res.outputs.get(m.name, {}).get((cond, stem))
                                                         for m in res.methods]]
        cells = []
        for f in files:
            try:
                cells.append(img_tag(thumbnail_uri(f, 180, quality=80), stem) if f else "(missing)")
            except (ValueError, OSError):
                cells.append("(unreadable)")
        body.append([td(c) for c in cells])
    return table(["IR (input)", "visible (input)", *[m.name for m in res.methods]], body, cls="grid")


def render_html(res: BenchResult, t: dict, png: bytes, thumbs: int, meta: dict) -> str:
    """The self-contained report page (built by report.page, the one owner of page building)."""
    by_cond: dict[str, list[dict]] = {}
    for r in t["summary"]:
        by_cond.setdefault(r["condition"], []).append(r)
    parts = ["<h1>Fusion robustness report</h1>",
             f"<p><b>Profile:</b> {fmt(res.profile)} ({fmt(meta['reference'])}); "
             f"<b>methods:</b> {fmt(', '.join(m.name for m in res.methods))}; "
             f"<b>conditions:</b> {len(res.conditions)} (including clean); "
             f"<b>images scored:</b> {len(res.rows)}</p>",
             f"<p>{fmt(PROTOCOL)}</p>",
             f"<p><code>{fmt(meta['command'])}</code></p>"]
    if res.problems:
        parts.append(f"<h2 class='bad'>Problems ({len(res.problems)}): skipped</h2><ul>"
                     + "".join(f"<li class='bad'>{fmt(p)}</li>" for p in res.problems) + "</ul>")
    parts += ["<h2>Curves</h2>", img_tag(data_uri(png, "image/png"), "metric vs severity", style="max-width:100%"),
              "<h2>Mean rank per condition</h2>", _rank_table(res, t["summary"]),
              f"<h2>Paired bootstrap: {fmt(t['reference'])} minus each method</h2>",
              f"<p>Mean difference over the images both scored, [95 % CI] from {BOOTSTRAP_RESAMPLES} seeded resamples "
              "of images; "
              "bold = the interval excludes 0.</p>", _bootstrap_table(t), "<h2>Per condition</h2>",
              "<p>&Delta; = change from the method's own clean-input score (%). Grey columns never rank.</p>"]
    for c in res.conditions:
        if c.name in by_cond:
            parts += [f"<h3>{fmt(c.name)}</h3>", _condition_table(by_cond[c.name], t), _grid(res, c.name, thumbs)]
    return page("crossfuse robustness", parts, css=_CSS)
