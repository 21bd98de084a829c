"""The amended three-seed rule of docs/protocol.md (session 14): a candidate recipe against a base recipe, seed by seed.

Each seed's two runs are fused in one declared form (``--set``: constructor constants that hold no weights, e.g. the
rule head's α / gain switch; ``--steps-of``: the input steps of a shipped model) with their own spread-noise gates by
the H74 rule (``--gates rule``: ``spread_gate.py`` on the clean training frames; ``none``: as the run declares), and
ranked in one validation table with the panel (``robust_protocol.rank_table``). The rule: the candidate passes when
the mean over seeds of its rank-score difference, of its corrupted difference and of its clean difference are all
< 0 (the clean one may be 0 where its clean rows are bit-identical), it ranks lower at >= 2/3 of the seeds, its darks
are <= 2 % and it is below crossfuse-fast on no condition. Seeds stop being scored once the rule cannot be met.

Run (H81, session 19; repository root, the runs trained from their configs):
  PYTHONPATH=src python benchmarks/seed_rule.py --base 'runs/h70/abl_d_s{seed}' \\
      --candidate 'runs/h105/m_s{seed}' --seeds 0 1 2 --set rule_alpha_degraded=0.4 --set rule_gain_degraded=1.0 \\
      --steps-of crossfuse-robust19 --jobs 2 --json runs/h105/rule.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robust_protocol as rp  # noqa: E402

DARK_LIMIT = 2.0  # % of pixels, the protocol's crushed-dark constraint
ROWS = ("base", "candidate")


def parse_constants(items: list[str]) -> dict[str, Any]:
    """``K=V`` pairs -> constructor constants (``V`` read as JSON when it parses: numbers, true / false)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def rule_gates(spec: str, steps: dict | None) -> dict[str, float]:
    """The run's three spread-noise gates by the H74 rule (training frames only), as constructor constants."""
    from spread_gate import GATE_KEYS, gates_of

    gates, _, _ = gates_of(spec, rp.data_root(), steps)
    return {GATE_KEYS[k]: round(v, 2) for k, v in gates.items()}


def form(spec: str, constants: dict[str, Any], steps: dict | None, gates: str):
    """A Fuser of ``spec`` in the declared form: ``constants`` set, then its own gates by the rule (``gates``)."""
    from crossfuse.infer import Fuser
    from crossfuse.models import load_model

    own = rule_gates(spec, steps) if gates == "rule" else {}
    net = load_model(spec, constants={**constants, **own})
    return Fuser(net, device="cpu", **(steps or {})), own


def clean_identical(rows: dict[str, list[dict]]) -> bool:
    """Whether the candidate's clean rows equal the base's exactly (the clean-difference exemption)."""
    pick = lambda k: [r for r in rows[k] if r["condition"] is None]  # noqa: E731
    return all(a == b for a, b in zip(pick("candidate"), pick("base"), strict=True))


def score_seed(job: dict) -> dict:
    """One seed: the panel, base and candidate in one validation table; the candidate's differences."""
    torch.set_num_threads(job["threads"])
    steps = job["steps"]
    fusers: dict[str, Any] = {s: rp.as_fuser(s) for s in rp.PANEL}
    gates = {}
    for row in ROWS:
        fusers[row], gates[row] = form(job[row], job["constants"], steps, job["gates"])
    rows = rp.validation_rows(fusers)
    table = rp.rank_table(rows)
    c, b = table["candidate"], table["base"]
    return {"seed": job["seed"], "runs": {r: job[r] for r in ROWS}, "gates": gates, "table": table,
            "diff": {k: c[k] - b[k] for k in ("rank_score", "clean_rank", "corrupted_rank")},
            "clean_identical": clean_identical(rows), "dark": c["dark_pct_max_subset"],
            "below_fast_on": c["below_fast_on"]}


def lower_needed(n: int) -> int:
    """Seeds at which the candidate must rank lower: 2 of 3 (>= 2/3 of them)."""
    return math.ceil(2 * n / 3)


def verdict(seeds: list[dict], n_planned: int) -> dict:
    """The amended three-seed rule on the scored seeds (``score_seed`` results); ``n_planned`` seeds were asked for."""
    mean = {k: float(np.mean([s["diff"][k] for s in seeds])) for k in ("rank_score", "clean_rank", "corrupted_rank")}
    lower = sum(s["diff"]["rank_score"] < 0 for s in seeds)
    identical = all(s["clean_identical"] for s in seeds)
    fails = []
    if len(seeds) < n_planned:
        fails.append(f"stopped after {len(seeds)} of {n_planned} seeds: the rule could no longer be met")
    if not mean["rank_score"] < 0:
        fails.append(f"mean rank-score difference {mean['rank_score']:+.3f} is not < 0")
    if not mean["corrupted_rank"] < 0:
        fails.append(f"mean corrupted difference {mean['corrupted_rank']:+.3f} is not < 0")
    if not (mean["clean_rank"] < 0 or (identical and mean["clean_rank"] == 0)):
        fails.append(f"mean clean difference {mean['clean_rank']:+.3f} is not < 0")
    if lower < lower_needed(n_planned):
        fails.append(f"lower at {lower} of {n_planned} seeds (needs {lower_needed(n_planned)})")
    if any(s["dark"] > DARK_LIMIT for s in seeds):
        fails.append(f"darks over {DARK_LIMIT} %")
    if any(s["below_fast_on"] for s in seeds):
        fails.append("below crossfuse-fast on " + ", ".join(sorted({c for s in seeds for c in s["below_fast_on"]})))
    return {"mean": mean, "lower_at": lower, "seeds": len(seeds), "passes": not fails, "fails": fails}


def still_possible(seeds: list[dict], n_planned: int) -> bool:
    """Whether enough seeds are left for the candidate to rank lower at the needed number."""
    higher = sum(s["diff"]["rank_score"] >= 0 for s in seeds)
    return n_planned - higher >= lower_needed(n_planned)


def format_seed(s: dict) -> str:
    t = s["table"]
    lines = [f"### seed {s['seed']}: base {s['runs']['base']} (gates {s['gates']['base'] or 'declared'}), "
             f"candidate {s['runs']['candidate']} (gates {s['gates']['candidate'] or 'declared'})", "",
             "| row | rank score | clean | corrupted | per condition | per clean subset | dark % | below fast on |",
             "|---|---|---|---|---|---|---|---|"]
    for k, v in sorted(t.items(), key=lambda kv: kv[1]["rank_score"]):
        lines.append(f"| {k} | {v['rank_score']:.3f} | {v['clean_rank']:.3f} | {v['corrupted_rank']:.3f} | "
                     f"{ {c: round(x, 2) for c, x in v['corrupted_rank_per_condition'].items()} } | "
                     f"{ {c: round(x, 2) for c, x in v['clean_rank_per_subset'].items()} } | "
                     f"{v['dark_pct_max_subset']:.2f} | {', '.join(v['below_fast_on']) or '-'} |")
    d = s["diff"]
    lines.append(f"\ncandidate - base: rank score {d['rank_score']:+.3f}, clean {d['clean_rank']:+.3f}, "
                 f"corrupted {d['corrupted_rank']:+.3f}" + (" (clean rows bit-identical)" if s["clean_identical"]
                                                             else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the base run per seed, '{seed}' in it (a run folder means last.pt)")
    ap.add_argument("--candidate", required=True, help="the candidate run per seed, '{seed}' in it")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a constructor constant of the declared form, for both runs (repeatable)")
    ap.add_argument("--steps-of", metavar="MODEL", help="run both with the input steps MODEL declares")
    ap.add_argument("--gates", choices=("rule", "none"), default="rule",
                    help="rule: each run's own spread-noise gates by the H74 rule; none: as the run declares")
    ap.add_argument("--jobs", type=int, default=1, help="seeds scored at once (one process and thread each)")
    ap.add_argument("--json", help="write the seeds' tables and the verdict here")
    args = ap.parse_args(argv)
    steps = None
    if args.steps_of:
        from ablation_seeds import steps_declared_by

        steps = steps_declared_by(args.steps_of)
    constants = parse_constants(args.set)
    jobs = [{"seed": s, "base": rp.protocol_checkpoint(args.base.format(seed=s)),
             "candidate": rp.protocol_checkpoint(args.candidate.format(seed=s)),
             "constants": constants, "steps": steps, "gates": args.gates, "threads": 1} for s in args.seeds]
    scored: list[dict] = []
    width = max(1, args.jobs)
    with ProcessPoolExecutor(max_workers=width) as pool:
        for start in range(0, len(jobs), width):
            if not still_possible(scored, len(jobs)):
                break
            for s in pool.map(score_seed, jobs[start:start + width]):
                scored.append(s)
                print(format_seed(s) + "\n", flush=True)
    result = verdict(scored, len(jobs))
    m = result["mean"]
    print(f"mean over {result['seeds']} seeds: rank score {m['rank_score']:+.3f}, clean {m['clean_rank']:+.3f}, "
          f"corrupted {m['corrupted_rank']:+.3f}; lower at {result['lower_at']} — "
          + ("PASSES" if result["passes"] else "FAILS: " + "; ".join(result["fails"])))
    if args.json:
        Path(args.json).write_text(json.dumps({"seeds": scored, "verdict": result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
