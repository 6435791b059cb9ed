"""The over-refinement stop rule: where to end the LFR, chosen per bundle on held-out training images.

The paper ends the LFR at its trained t = 1 with one RK4 step (4 network evaluations). The rule weighs that
default against a few other ends — the same single RK4 step run to t = 1.25 (extrapolated past the trained
range), and Euler steps of 0.25 to t = 1, 1.25, 1.5 — all refining the same prior draws. For each candidate c
and metric m (FID under the bundle's classifier, FID2 under its independent classifier2), per seed s:

    gain_m(c, s) = m(default, s) − m(c, s)        (positive: c is better)

c **counts** when, for every metric, every seed gains and the mean gain exceeds the seed-to-seed spread
(standard deviation over seeds) of the default's score. The rule picks, among the candidates that count,
the one with the largest summed mean gain over the metrics; when none counts it keeps the default. Scores
come from ``bfr_core.eval.validation`` (the last 10,000 training images), so the test split never tunes it;
``bfr stop-rule`` stores the choice and its evidence in the bundle for the app.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

import torch

from bfr_core.infra.checkpoint import load_stored_measurement
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.sweep import decode_stack

STOP_RULE_FILE = "stop_rule.json"  # BUNDLE/stop_rule.json, written by `bfr stop-rule`


@dataclass(frozen=True)
class LfrEnd:
    """One way to end the LFR: ``solver`` with ``nfe`` network evaluations, integrating to ``t1``."""

    solver: str
    nfe: int
    t1: float

    @property
    def name(self) -> str:
        return f"{self.solver}x{self.nfe} to t={self.t1:g}"


PAPER_DEFAULT = LfrEnd("rk4", 4, 1.0)
CANDIDATES = (
    PAPER_DEFAULT,
    LfrEnd("rk4", 4, 1.25),
    LfrEnd("euler", 4, 1.0),
    LfrEnd("euler", 5, 1.25),
    LfrEnd("euler", 6, 1.5),
)


@torch.no_grad()
def lfr_end_images(pipe: Pipeline, n: int, seed: int, ends=CANDIDATES) -> tuple[torch.Tensor, dict]:
    """G(F(z)) for each end on the same prior draws z of (n, seed), decoded by one batched base solve.

    Returns (base images G(z), {end name: images})."""
    base = pipe.run(n, seed, Settings(mode="none"))
    s = pipe.resolve(Settings(mode="lfr"))
    g = torch.Generator()
    latents = [
        pipe.refine(
            "latent",
            base.z,
            base.labels,
            replace(s, lfr_solver=e.solver, lfr_nfe=e.nfe),
            g.manual_seed(seed + 1),
            t1=e.t1,
        ).x
        for e in ends
    ]
    images = decode_stack(pipe, latents, base.labels, s)
    return base.base, {e.name: x for e, x in zip(ends, images)}


def paired_verdict(default: list[dict], candidate: list[dict], metrics) -> dict:
    """Per metric: each seed's gain default − candidate, their mean, the default's spread over seeds, and
    whether it counts (every gain > 0 and the mean gain > the spread); ``counts``: on every metric."""
    out = {}
    for m in metrics:
        gains = [d[m] - c[m] for d, c in zip(default, candidate)]
        spread = statistics.stdev(d[m] for d in default) if len(default) > 1 else float("nan")
        out[m] = {
            "gains": [round(x, 3) for x in gains],
            "mean_gain": round(statistics.mean(gains), 3),
            "default_spread": round(spread, 3),
            "counts": all(x > 0 for x in gains) and statistics.mean(gains) > spread,
        }
    out["counts"] = all(out[m]["counts"] for m in metrics)
    return out


def choose(verdicts: dict, metrics, default: str = PAPER_DEFAULT.name) -> str:
    """The rule: the counting candidate of largest summed mean gain over ``metrics``; else ``default``."""
    counting = {c: v for c, v in verdicts.items() if v["counts"]}
    if not counting:
        return default
    return max(counting, key=lambda c: sum(counting[c][m]["mean_gain"] for m in metrics))


def measure(pipe: Pipeline, score, n: int, seeds, ends=CANDIDATES, progress=None) -> dict:
    """Score every end (and the base) over ``seeds`` with ``score(x) -> {metric: value}``, then judge each
    end against the paper's default and apply the rule. Returns the stored form: scores per row and seed,
    verdicts, the choice."""
    if ends[0] != PAPER_DEFAULT:
        raise ValueError(f"the first end must be the paper's default {PAPER_DEFAULT.name}")
    rows: dict[str, list[dict]] = {"base": []} | {e.name: [] for e in ends}
    for k, seed in enumerate(seeds):
        base, images = lfr_end_images(pipe, n, seed, ends)
        rows["base"].append(score(base))
        for name, x in images.items():
            rows[name].append(score(x))
        if progress is not None:
            progress((k + 1) / len(seeds), f"seed {seed}")
    metrics = tuple(rows["base"][0])
    default = rows[PAPER_DEFAULT.name]
    verdicts = {e.name: paired_verdict(default, rows[e.name], metrics) for e in ends[1:]}
    return {
        "metrics": list(metrics),
        "default": PAPER_DEFAULT.name,
        "scores": {k: [{m: round(r[m], 3) for m in metrics} for r in v] for k, v in rows.items()},
        "verdicts": verdicts,
        "choice": choose(verdicts, metrics),
    }


def load_stop_rule(bundle) -> dict | None:
    """The bundle's stored rule (``bfr stop-rule``), or None when it has none; a file that is not one is
    refused by name (CheckpointError)."""

    def valid(stored):
        scores = stored["scores"]
        return (
            isinstance(scores, dict)
            and {stored["choice"], stored["default"]} <= set(scores)
            and stored["seeds"]
        )

    return load_stored_measurement(bundle.path / STOP_RULE_FILE, valid, "stop rule")


def mean_sd(values: list[float]) -> str:
    """ "m ± sd" over seeds, to two decimals."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def summary(stored: dict) -> str:
    """One paragraph for the app: the rule's choice beside the paper's default, with both metrics."""
    metrics, scores, choice, default = (
        stored["metrics"],
        stored["scores"],
        stored["choice"],
        stored["default"],
    )

    def cell(row):
        return " / ".join(mean_sd([r[m] for r in scores[row]]) for m in metrics)

    head = (
        f"**Stop rule** (chosen on the {stored.get('reference', 'held-out training images')}, {stored['n']} "
        f"samples × {len(stored['seeds'])} seeds, {' / '.join(m.upper() for m in metrics)}): "
    )
    which = "both metrics" if len(metrics) == 2 else "every metric" if len(metrics) > 2 else "its one metric"
    if choice == default:
        text = head + (
            f"keep the paper's default, **LFR {default}** ({cell(default)}); no other end beat it on {which} "
            "on every seed beyond the seed spread."
        )
    else:
        text = head + (
            f"**LFR {choice}** ({cell(choice)}) instead of the paper's default LFR {default} "
            f"({cell(default)}): better on {which} on every seed, beyond the seed spread."
        )
    return text + no_lfr_note(stored, cell)


def no_lfr_note(stored: dict, cell) -> str:
    """A warning when the base without any LFR scores better than the chosen end on every metric (means over
    seeds): the rule only chooses among LFR ends, so on such a bundle the right stop is no LFR at all."""
    scores, choice = stored["scores"], stored["choice"]
    if "base" not in scores:
        return ""
    mean = {row: {m: statistics.mean(r[m] for r in scores[row]) for m in stored["metrics"]} for row in scores}
    if not all(mean["base"][m] < mean[choice][m] for m in stored["metrics"]):
        return ""
    return (
        f" **But the base without an LFR scores better** ({cell('base')}) on every metric: on this bundle "
        "every LFR end makes the samples worse, and the right stop is no LFR (the rule only chooses among "
        "LFR ends)."
    )
