"""``python -m bfr_core build RECIPE``: run a recipe of ``bfr_core/recipes.py``, timing every stage.

Writes OUT (default ``checkpoints/RECIPE``), its ``bundle.json`` card and ``shared.json`` where the
recipe has them, ``OUT/.times/STAGE`` (seconds) as each stage finishes and ``OUT/build_times.json`` at the
end (every stage's seconds, earlier builds' kept; ``total``: the wall time of every build run, summed).
Stages run in this process, one after another; a parallel recipe runs its LFR and DFR chains side by side
as two child processes with one thread each (their output in ``OUT/.times/<chain>_chain.log``). With
``--resume`` a stage already timed is skipped and training stages continue from their last checkpoint;
``--stages A B`` runs only those (e.g. the stages that do not need the base while it still trains elsewhere).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from bfr_core.recipes import CHAINS, RECIPES, Recipe, Stage


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """``["base_steps=20", ...]`` → a dict; a ValueError names a pair without ``=``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes NAME=VALUE, got {pair!r}")
        out[key] = value
    return out


def stage_commands(
    recipe: Recipe, settings: dict, out: Path, resume: bool, smoke: bool, data_dir=None, only=None
):
    """(stage, argv) for every stage the build runs, templates filled; ``only``, when given, names the
    stages to run (a ValueError names an unknown one and lists the recipe's)."""
    fill = {**settings, "out": str(out), "resume": "--resume" if resume else ""}
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    stages = recipe.stages_run(smoke)
    unknown = sorted(set(only or ()) - {s.name for s in stages})
    if unknown:
        known = ", ".join(s.name for s in stages)
        raise ValueError(f"recipe {recipe.name} has no stage {', '.join(unknown)}; its stages: {known}")
    return [(stage, stage.argv(fill) + extra) for stage in stages if not only or stage.name in only]


def groups(commands):
    """Consecutive stages grouped: a run of chain stages becomes one group {chain: [(stage, argv), ...]}; any
    other stage is a group of its own."""
    out: list[dict[str, list]] = []
    for stage, argv in commands:
        if stage.chain in CHAINS and out and "" not in out[-1]:
            out[-1].setdefault(stage.chain, []).append((stage, argv))
        else:
            out.append({stage.chain if stage.chain in CHAINS else "": [(stage, argv)]})
    return out


class Build:
    """One build: where it writes, whether it resumes, and how a stage's command is run in this process."""

    def __init__(self, out: Path, resume: bool, run: Callable[[list[str]], int], quiet: bool):
        self.out, self.resume, self.run, self.quiet = out, resume, run, quiet
        self.times = out / ".times"

    def done(self, stage: Stage) -> bool:
        return self.resume and (self.times / stage.name).is_file()

    def record(self, stage: Stage, seconds: float) -> None:
        (self.times / stage.name).write_text(f"{seconds:.1f}\n")

    def in_process(self, stage: Stage, argv: list[str]) -> None:
        if self.done(stage):
            print(f"== {stage.name}: done before, skipped")
            return
        print(f"== {stage.name}: python -m bfr_core {shlex.join(argv)}", flush=True)
        t0 = time.perf_counter()
        rc = self.run(["--quiet", *argv] if self.quiet else argv)
        if rc != 0:
            raise ValueError(
                f"stage {stage.name} failed (exit {rc}); rerun the build with --resume to continue"
            )
        self.record(stage, time.perf_counter() - t0)

    def chain_in_child(self, chain: str, commands, failures: list[str]) -> None:
        """One chain's stages as child processes (one thread each), output in OUT/.times/<chain>_chain.log"""
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(self.times / f"{chain}_chain.log", "a") as log:
            for stage, argv in commands:
                if self.done(stage):
                    continue
                log.write(f"== {stage.name}: python -m bfr_core {shlex.join(argv)}\n")
                log.flush()
                t0 = time.perf_counter()
                cmd = [sys.executable, "-m", "bfr_core", *(["--quiet"] if self.quiet else []), *argv]
                if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode != 0:
                    failures.append(f"stage {stage.name} failed: see {log.name}")
                    return
                self.record(stage, time.perf_counter() - t0)

    def side_by_side(self, chains: dict[str, list]) -> None:
        failures: list[str] = []
        threads = [
            threading.Thread(target=self.chain_in_child, args=(c, cmds, failures))
            for c, cmds in chains.items()
        ]
        print(f"== {' and '.join(chains)} chains side by side (logs in {self.times}/)", flush=True)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise ValueError("; ".join(failures) + "; rerun the build with --resume to continue")


def write_card_and_shared(recipe: Recipe, out: Path) -> None:
    if recipe.card is not None:
        (out / "bundle.json").write_text(json.dumps(recipe.card, ensure_ascii=False) + "\n")
    if recipe.shared:
        (out / "shared.json").write_text(
            json.dumps({name: recipe.shared_from for name in recipe.shared}) + "\n"
        )


def cmd_build(args, run: Callable[[list[str]], int]) -> None:
    recipe = RECIPES[args.recipe]
    settings = recipe.resolve(parse_settings(args.set), smoke=args.smoke, device=args.device)
    out = args.out or Path("checkpoints") / recipe.name
    commands = stage_commands(recipe, settings, out, args.resume, args.smoke, args.data_dir, args.stages)
    if args.dry_run:
        for stage, argv in commands:
            print(f"{stage.name}: python -m bfr_core {shlex.join(argv)}")
        return
    build = Build(out, args.resume, run, args.quiet)
    build.times.mkdir(parents=True, exist_ok=True)
    write_card_and_shared(recipe, out)
    t0 = time.perf_counter()
    for group in groups(commands):
        chains = {c: cmds for c, cmds in group.items() if c}
        if recipe.parallel and len(chains) > 1:
            build.side_by_side(chains)
        else:
            for cmds in group.values():
                for stage, argv in cmds:
                    build.in_process(stage, argv)
    record = out / "build_times.json"
    earlier = json.loads(record.read_text()) if record.is_file() else {}
    times = stage_times(earlier, build.times)
    times |= {
        "total": round(earlier.get("total", 0.0) + time.perf_counter() - t0, 1),
        "parallel_chains": recipe.parallel,
    }
    record.write_text(json.dumps(times, indent=1) + "\n")
    print(json.dumps(times, indent=1))


def stage_times(earlier: dict, markers: Path) -> dict[str, float]:
    """Seconds per stage: those of an ``earlier`` build_times.json, updated by this machine's ``.times``
    markers (not committed: a build resumed with ``--stages`` on another machine has only its own), sorted by
    stage name."""
    times = {k: v for k, v in earlier.items() if k not in ("total", "parallel_chains")}
    times |= {p.name: float(p.read_text()) for p in markers.iterdir() if not p.suffix}
    return dict(sorted(times.items()))
