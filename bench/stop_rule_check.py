"""Check the stop rule's choice on the test split: does it win, tie or lose against the paper's default?

    python -m bench.stop_rule_check --bundle checkpoints/mnist-leak [--n 1000] [--seeds 0 1 2]

The choice was made by ``bfr stop-rule`` on held-out training images and stored in the bundle
(stop_rule.json); here the same ends refine the same prior draws and are scored against the test split.
The rule's end **wins** where it beats the paper's default (one RK4 step to t = 1) by the rule's own test
(both metrics, every seed, beyond the default's spread), **loses** where the default beats it by that test,
and **ties** otherwise (a rule that keeps the default ties by construction). Writes
bench/results/stop_rule_BUNDLE.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from bfr_core.eval.validation import validation_scorer
from bfr_core.pipeline import Pipeline
from bfr_core.views.stop_rule import (
    CANDIDATES,
    PAPER_DEFAULT,
    load_stop_rule,
    mean_sd,
    measure,
    paired_verdict,
)

ROOT = Path(__file__).resolve().parent.parent


def outcome(default: list[dict], chosen: list[dict], metrics) -> str:
    """win / lose by the rule's paired test in either direction; tie otherwise."""
    if paired_verdict(default, chosen, metrics)["counts"]:
        return "win"
    if paired_verdict(chosen, default, metrics)["counts"]:
        return "lose"
    return "tie"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    pipe = Pipeline(args.bundle)
    stored = load_stop_rule(pipe.bundle)
    if stored is None:
        ap.error(f"{args.bundle} has no stop rule: run `bfr stop-rule --bundle {args.bundle}` first")
    score = validation_scorer(pipe.bundle, "test")
    t0 = time.perf_counter()
    found = measure(pipe, score, args.n, args.seeds, CANDIDATES)
    choice, metrics = stored["choice"], found["metrics"]
    out = {
        "command": shlex.join(["python", "-m", "bench.stop_rule_check", *sys.argv[1:]]),
        "reference": score.reference,
        "chosen_on": f"{stored['reference']} ({stored['command']})",
        "choice": choice,
        "n": args.n,
        "seeds": args.seeds,
        "wall_s": round(time.perf_counter() - t0, 1),
        "test_scores": found["scores"],
        "outcome": outcome(found["scores"][PAPER_DEFAULT.name], found["scores"][choice], metrics),
        "best_on_test": found["choice"],
    }
    dest = ROOT / "bench" / "results" / f"stop_rule_{args.bundle.name}.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    dest.with_suffix(".md").write_text(markdown(out, args.bundle.name, metrics))
    print(
        f"{args.bundle.name}: rule {choice} vs the paper's {PAPER_DEFAULT.name} on the test split: "
        f"{out['outcome']}"
    )


def markdown(out: dict, name: str, metrics) -> str:
    lines = [
        f"# The stop rule on the test split: {name}",
        "",
        f"`{out['command']}` — {out['n']} samples per seed, seeds {out['seeds']}, against the "
        f"{out['reference']} ({out['wall_s']} s). Chosen on the {out['chosen_on']}: **{out['choice']}**. "
        f"Against the paper's default ({PAPER_DEFAULT.name}) on the test split: **{out['outcome']}**.",
        "",
        "| LFR end | " + " | ".join(f"{m} (mean ± sd over seeds)" for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for row, v in out["test_scores"].items():
        mark = " (rule)" if row == out["choice"] else ""
        mark += " (paper's default)" if row == PAPER_DEFAULT.name else ""
        lines.append(f"| {row}{mark} | " + " | ".join(mean_sd([r[m] for r in v]) for m in metrics) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
