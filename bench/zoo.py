"""The bias zoo under two independent metrics: which refiner corrects which kind of bias.

    python -m bench.zoo --bundle checkpoints/mnist --bundle checkpoints/mnist-leak --n 1000 --seeds 0 1 2

Every bundle runs the same rows (``ROWS``) on the same prior draws per seed, scored against the
held-out test split under the bundle's classifier (``fid``, ``kid``) *and* its independent
``classifier2`` (``fid2``, ``kid2``), plus ``fid_train`` (main features, last 10,000 training
images: the paper's reference set). A refiner **helps** on a bundle only when both FID and FID2
drop on every seed and the mean paired drop exceeds twice its seed-to-seed standard deviation.
Results are kept per (bundle, seed, n, model files), so a rerun computes only what changed.
Writes bench/results/zoo.json and zoo.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.bundle import Bundle
from bfr_core.eval.evaluate import evaluate_bundle, scorer_for
from bfr_core.pipeline import Settings

ROWS = {  # name → settings; refiners at the bundle's default solver unless named
    "base": Settings(mode="none"),
    "lfr": Settings(mode="lfr"),
    "lfr-reflow-euler1": Settings(mode="lfr", lfr_variant="reflow"),
    "dfr": Settings(mode="dfr"),
    "dfr-euler1": Settings(mode="dfr", dfr_solver="euler", dfr_nfe=1),
    "dfr-euler10": Settings(mode="dfr", dfr_solver="euler", dfr_nfe=10),
    "lfr-euler10": Settings(mode="lfr", lfr_solver="euler", lfr_nfe=10),
    # discretization bias: the base sampled with 8 Euler steps;
    # the LFR was trained on accurately inverted latents
    "base-euler8": Settings(mode="none", base_solver="euler", base_nfe=8),
    "lfr@base-euler8": Settings(mode="lfr", base_solver="euler", base_nfe=8),
}
REFERENCE = {"lfr@base-euler8": "base-euler8"}  # the row a refiner row is compared with (default: base)
HEADLINE = ["base", "lfr", "lfr-reflow-euler1", "dfr"]
METRICS = ("fid", "fid2", "kid", "kid2", "fid_train")


MODELS = ("base", "lfr", "lfr_reflow", "dfr", "classifier", "classifier2")
SCORED_BY = ("classifier", "classifier2")


def fingerprint(bundle: Bundle, overrides: dict[str, Path], models=MODELS) -> str:
    """Hash of the bundle card (how the base samples, whether DFR clips) and of ``models``' files, so
    retraining a model or changing the card invalidates the kept rows that use them."""
    card = {k: v for k, v in bundle.card.items() if k != "description"}  # words change no sample
    h = hashlib.sha256(json.dumps(card, sort_keys=True).encode())
    for name in models:
        f = overrides.get(name) or bundle.file(name)
        if f is not None:
            h.update(name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def row_models(row: str) -> tuple[str, ...]:
    """The model files one row depends on: the base, the refiners it runs, the feature extractors."""
    if row == "reference-train":
        return SCORED_BY
    return ("base", *(r.name for r in ROWS[row].refiners()), *SCORED_BY)


def computed_elsewhere(kept: dict, n: int, seed: int, row: str, fp: str) -> dict | None:
    """A kept row of another run that used the very files of ``row`` on the same draws, if any."""
    for key, run in kept["runs"].items():
        found = run["rows"].get(row, {})
        if key.endswith(f"/n{n}/seed{seed}") and found.get("fingerprint") == fp:
            return found
    return None


def row_fingerprints(bundle: Bundle, overrides: dict[str, Path], rows) -> dict[str, str]:
    return {r: fingerprint(bundle, overrides, row_models(r)) for r in rows}


def with_variants(bundle: Bundle, variants: list[str]) -> tuple[Bundle, dict[str, Path], str]:
    """Apply ``ROLE=FILE`` overrides (FILE relative to the bundle), e.g. ``dfr=ablation/dfr_none.safetensors``
    or ``base=snapshots/base_step1000/base.safetensors``; returns (bundle, overrides, run-name suffix)."""
    overrides = {}
    for spec in variants:
        role, sep, rel = spec.partition("=")
        if not sep:
            raise SystemExit(f"--variant needs ROLE=FILE, got {spec!r}")
        overrides[role] = bundle.path / rel
        bundle = bundle.with_model(role, overrides[role])
    return bundle, overrides, variant_suffix(variants)


def variant_suffix(variants: list[str]) -> str:
    """The run-name suffix of ``ROLE=FILE`` overrides: ``[role=parent/stem]`` each, e.g.
    ``dfr=ablation/dfr_none.safetensors`` → ``[dfr=ablation/dfr_none]``."""
    return "".join(
        f"[{role}={Path(rel).parent.name + '/' if '/' in rel else ''}{Path(rel).stem}]"
        for role, _, rel in (v.partition("=") for v in variants)
    )


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN propagates for a missing metric)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), (float(a.std(ddof=1)) if len(a) > 1 else 0.0)


def relative_changes(per_seed: dict, row: str, metric: str) -> list[float]:
    """Per seed: (row − reference) / reference, on the same prior draws (reference: ``REFERENCE`` or base)."""
    ref = REFERENCE.get(row, "base")
    return [
        r[row][metric] / r[ref][metric] - 1
        for r in per_seed.values()
        if row in r and ref in r and metric in r[row]
    ]


def helps(per_seed: dict, row: str) -> str:
    """'yes' when FID and FID2 both drop on every seed by more than 2 std of the paired drop."""
    verdicts = []
    for metric in ("fid", "fid2"):
        d = relative_changes(per_seed, row, metric)
        if not d:
            return "n/a"
        m, s = mean_std(d)
        verdicts.append(max(d) < 0 and (len(d) == 1 or -m > 2 * s))
    return "yes" if all(verdicts) else "no"


FINDINGS = [  # the paper's claim, the row that should be better, the row it is compared with
    ("LFR at one RK4 step corrects the bias", "lfr", "base"),
    ("LFR over-refines: one RK4 step beats 10 Euler steps", "lfr", "lfr-euler10"),
    ("DFR at one RK4 step corrects the bias", "dfr", "base"),
    ("DFR benefits from more NFE: 10 Euler steps beat 1", "dfr-euler10", "dfr-euler1"),
    ("(ours) one-NFE LFR by reflow corrects the bias", "lfr-reflow-euler1", "base"),
]


def verdict(per_seed: dict, better: str, worse: str) -> str:
    """reproduced / refuted when both metrics agree on every seed that has both rows; mixed otherwise."""
    signs = [
        r[better][m] < r[worse][m]
        for r in per_seed.values()
        if better in r and worse in r
        for m in ("fid", "fid2")
        if m in r[better]
    ]
    if not signs:
        return "not measured"
    return "reproduced" if all(signs) else "refuted" if not any(signs) else "mixed"


def verdict_lines(by_bundle: dict) -> list[str]:
    names = list(by_bundle)
    lines = ["| finding (paper) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for claim, better, worse in FINDINGS:
        lines.append(
            f"| {claim} (`{better}` vs `{worse}`) | "
            + " | ".join(verdict(by_bundle[n], better, worse) for n in names)
            + " |"
        )
    return lines


VARIANT_FINDINGS = [  # claim, (run suffix, row) that should be better, (run suffix, row) compared with
    (
        "augmentation stabilises DFR: the paper's blur beats no augmentation",
        ("[dfr=ablation/dfr_blur-paper]", "dfr"),
        ("[dfr=ablation/dfr_none]", "dfr"),
    ),
    (
        "augmentation stabilises DFR: a real blur (σ 0.5–1 px) beats no augmentation",
        ("[dfr=ablation/dfr_blur-strong]", "dfr"),
        ("[dfr=ablation/dfr_none]", "dfr"),
    ),
]
TRANSFER = "[base=base_step1000/base]"  # refiners of the final base applied to an earlier one


def variant_lines(by_bundle: dict) -> list[str]:
    """Verdicts that compare rows of two runs (augmentation variants) or two gains (transfer)."""
    lines = []
    for bundle in sorted({k.split("[")[0].split(",")[0] for k in by_bundle}):

        def run(suffix):
            return next((v for k, v in by_bundle.items() if k.startswith(bundle + suffix + ",")), None)

        for claim, (sa, ra), (sb, rb) in VARIANT_FINDINGS:
            a, b = run(sa), run(sb)
            if a and b:
                merged = {seed: {"better": a[seed][ra], "worse": b[seed][rb]} for seed in a if seed in b}
                lines.append(
                    f"| {bundle}: {claim} | {verdict(merged, 'better', 'worse')} | "
                    f"`{bundle}{sa}` `{ra}` vs `{bundle}{sb}` `{rb}` |"
                )
        t = run(TRANSFER)
        if t:
            gains = {
                seed: {
                    "better": {m: r["dfr"][m] / r["base"][m] for m in ("fid", "fid2")},
                    "worse": {m: r["lfr"][m] / r["base"][m] for m in ("fid", "fid2")},
                }
                for seed, r in t.items()
                if {"dfr", "lfr", "base"} <= set(r)
            }
            lines.append(
                f"| {bundle}: DFR transfers to an earlier base better than LFR (relative FID change) | "
                f"{verdict(gains, 'better', 'worse')} | `{bundle}{TRANSFER}` `dfr`, `lfr` vs `base` |"
            )
    if not lines:
        return []
    return ["| finding (paper) | verdict | rows |", "|---|---|---|"] + lines


def bundle_table(name: str, per_seed: dict) -> list[str]:
    seeds = list(per_seed)
    rows = [r for r in [*ROWS, "reference-train"] if any(r in per_seed[s] for s in seeds)]
    lines = [
        f"#### {name} (seeds {', '.join(seeds)})",
        "",
        "| row | solver | extra NFE | FID | Δ FID | FID2 (independent) | Δ FID2 | KID | KID2 "
        "| FID vs train | helps |",
        "|" + "---|" * 11,
    ]
    for row in rows:
        have = [x for x in seeds if row in per_seed[x]]
        r0 = per_seed[have[0]][row]
        cells = []
        for metric in ("fid", "fid2"):
            m, s = mean_std([per_seed[x][row].get(metric, float("nan")) for x in have])
            d = relative_changes(per_seed, row, metric)
            dm, ds = mean_std(d) if d else (float("nan"), 0.0)
            plain = row.startswith("base") or row == "reference-train"
            cells += [f"{m:.2f} ± {s:.2f}", "—" if plain else f"{100 * dm:+.1f}% ± {100 * ds:.1f}"]
        kid1, kid2, ftr = (
            mean_std([per_seed[x][row].get(k, float("nan")) for x in have])[0]
            for k in ("kid", "kid2", "fid_train")
        )
        verdict = "" if plain else helps(per_seed, row) + (f" ({len(have)} seed)" if len(have) == 1 else "")
        lines.append(
            f"| {row} | {r0['solver']} | {r0['extra_nfe']} | {cells[0]} | {cells[1]} | {cells[2]} | "
            f"{cells[3]} | {kid1:.3f} | {kid2:.3f} | {ftr:.2f} | {verdict} |"
        )
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True, help="a bundle directory (repeat)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--rows",
        nargs="+",
        choices=list(ROWS),
        default=HEADLINE,
        help=f"rows to compute (default the headline rows: {' '.join(HEADLINE)})",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="ROLE=FILE",
        help="replace one model by another file of the bundle (e.g. dfr=ablation/dfr_none.safetensors)",
    )
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument(
        "--sample-cache",
        type=Path,
        default=None,
        help="also save every row's samples there (not committed), so --rescore can score them again",
    )
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="score the cached samples with the bundles' current extractors instead of sampling",
    )
    args = ap.parse_args(argv)
    if args.rescore:
        return rescore(args)
    out_json = args.out_dir / "zoo.json"
    kept = json.loads(out_json.read_text()) if out_json.is_file() else {"runs": {}}
    command = "python -m bench.zoo " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    rows = {r: ROWS[r] for r in ["base"] + [r for r in args.rows if r != "base"]}
    for path in args.bundle:
        bundle, overrides, suffix = with_variants(Bundle(path), args.variant)
        fps = row_fingerprints(bundle, overrides, [*ROWS, "reference-train"])
        for seed in args.seeds:
            key = f"{path.name}{suffix}/n{args.n}/seed{seed}"
            run = kept["runs"].get(key, {"rows": {}})
            valid = lambda r, v: v.get("fingerprint") is not None and v["fingerprint"] == fps.get(r)  # noqa: E731
            run["rows"] = {r: v for r, v in run["rows"].items() if valid(r, v)}
            taken = False
            for r in rows:  # the same files on the same draws in another run (a variant, a sibling)
                if r not in run["rows"] and (same := computed_elsewhere(kept, args.n, seed, r, fps[r])):
                    run["rows"][r], taken = same, True
            todo = {r: s for r, s in rows.items() if r not in run["rows"]}
            if not todo:
                print(f"{key}: kept")
                if taken:  # rows from another run: record them here
                    run["commands"] = list(dict.fromkeys([*run.get("commands", []), command]))
                    kept["runs"][key] = run
                    out_json.write_text(json.dumps(kept, indent=1))
                continue
            todo.setdefault("base", ROWS["base"])  # the reference row shares the prior draws
            for r in list(todo):
                if r in REFERENCE:
                    todo.setdefault(REFERENCE[r], ROWS[REFERENCE[r]])
            t0 = time.perf_counter()
            samples = {}
            result = evaluate_bundle(bundle, args.n, seed, rows=todo, progress=False, samples=samples)
            if args.sample_cache:
                save_samples(args.sample_cache / key, samples)
            run["rows"].update({r: {**v, "fingerprint": fps[r]} for r, v in result.items()})
            run["wall_s"] = round(run.get("wall_s", 0) + time.perf_counter() - t0, 1)
            run["commands"] = list(dict.fromkeys([*run.get("commands", []), command]))
            kept["runs"][key] = run
            args.out_dir.mkdir(parents=True, exist_ok=True)
            out_json.write_text(json.dumps(kept, indent=1))
            print(
                f"{key}: "
                + ", ".join(
                    f"{r} {v['fid']:.2f}/{v.get('fid2', float('nan')):.2f}" for r, v in result.items()
                ),
                flush=True,
            )
    write_markdown(kept, args.out_dir / "zoo.md")


def save_samples(folder: Path, samples: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for row, (x, labels) in samples.items():
        np.save(folder / f"{row}.npy", x.float().numpy())
        if labels is not None:
            np.save(folder / f"{row}.labels.npy", labels.numpy())


def rescore(args) -> None:
    """Metrics of the cached samples of every kept run under the bundles' current extractors."""
    import torch

    out_json = args.out_dir / "zoo.json"
    kept = json.loads(out_json.read_text())
    for path in args.bundle:
        bundle, overrides, suffix = with_variants(Bundle(path), args.variant)
        score, fps = scorer_for(bundle), row_fingerprints(bundle, overrides, [*ROWS, "reference-train"])
        for key, run in kept["runs"].items():
            if not key.startswith(f"{path.name}{suffix}/n{args.n}/"):
                continue
            for row in run["rows"]:
                f = args.sample_cache / key / f"{row}.npy"
                if not f.is_file():
                    continue
                lf = f.with_suffix(".labels.npy")
                labels = torch.from_numpy(np.load(lf)) if lf.is_file() else None
                kept_row = run["rows"][row]
                fresh = score(torch.from_numpy(np.load(f)), labels)
                run["rows"][row] = {**kept_row, **fresh, "fingerprint": fps[row]}
            print(f"rescored {key}", flush=True)
    out_json.write_text(json.dumps(kept, indent=1))
    write_markdown(kept, args.out_dir / "zoo.md")


def write_markdown(kept: dict, dest: Path) -> None:
    """zoo.md: one table per (bundle, n) with the commands that computed its rows, then the verdicts."""
    by_bundle: dict[str, dict] = {}
    commands: dict[str, list[str]] = {}
    for key, run in kept["runs"].items():
        name, n, seed = key.rsplit("/", 2)
        section = f"{name}, n = {n[1:]}"
        by_bundle.setdefault(section, {})[seed[4:]] = run["rows"]
        ran = run.get("commands") or ["(an earlier run: its command was not recorded per run)"]
        commands[section] = list(dict.fromkeys([*commands.get(section, []), *ran]))
    text = [
        "FID/KID on the bundle's classifier features and FID2/KID2 on its independent `classifier2`, "
        "both against the 10,000 test images; Δ is each seed's change against the base on the same prior "
        "draws (mean ± std over seeds). *helps*: both FIDs drop on every seed by more than 2 std. Under "
        "each table: the commands that computed its rows (a rerun recomputes only rows whose model files "
        "or bundle card changed).",
        "",
    ]
    for name, per_seed in by_bundle.items():
        text += bundle_table(name, per_seed) + [""] + [f"`{c}`  " for c in commands[name]] + [""]
    text += ["#### The paper's findings, per bundle (both metrics must agree on every seed)", ""]
    plain = {k: v for k, v in by_bundle.items() if "[" not in k}
    text += verdict_lines(plain) + [""] + variant_lines(by_bundle) + [""]
    dest.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
