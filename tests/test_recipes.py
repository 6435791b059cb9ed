"""The build recipes (bfr_core/recipes.py) and their runner (``python -m bfr_core build``)."""

import argparse
import json
import shutil
from pathlib import Path

import pytest

from bfr_core import recipes
from bfr_core.cli import build as build_cli
from bfr_core.cli.main import build_parser, main
from bfr_core.recipes import RECIPES, Recipe, Stage

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_stage_of_every_recipe_is_a_command_the_cli_accepts(name, tmp_path):
    """Each stage's filled template parses (normal, smoke and GPU builds), so a recipe cannot rot silently."""
    recipe = RECIPES[name]
    for smoke, device in ((False, "cpu"), (True, "cpu"), (False, "cuda")):
        settings = recipe.resolve(smoke=smoke, device=device)
        for stage, argv in build_cli.stage_commands(recipe, settings, tmp_path, True, smoke):
            args = build_parser().parse_args(argv)
            assert args.command == stage.args.split()[0], (name, stage.name)
            assert "{" not in " ".join(argv), (name, stage.name, argv)


def test_the_mnist_recipe_builds_what_ships():
    """The recipe's card and shared files equal the shipped bundles' (the build that made them)."""
    for name in ("mnist", "mnist-euler8", "mnist-wide", "mnist-alpha", "mnist-leak"):
        recipe, shipped = RECIPES[name], CHECKPOINTS / name
        if recipe.card is not None:
            assert json.loads((shipped / "bundle.json").read_text()) == recipe.card, name
        if recipe.shared:
            shared = json.loads((shipped / "shared.json").read_text())
            assert {k for k, v in shared.items() if v == "mnist"} >= set(recipe.shared), name


def test_settings_fill_the_templates_and_overrides_are_checked(tmp_path):
    recipe = RECIPES["mnist"]
    settings = recipe.resolve({"lfr_steps": "7", "refiner_steps": "9"})
    cmds = dict(
        (s.name, argv) for s, argv in build_cli.stage_commands(recipe, settings, tmp_path, False, False)
    )
    assert cmds["train-lfr"][cmds["train-lfr"].index("--steps") + 1] == "7"
    assert cmds["train-dfr"][cmds["train-dfr"].index("--steps") + 1] == "9"
    assert "--resume" not in cmds["train-dfr"]
    # a setting written as another's template follows it: the digits LFR trains refiner_steps
    digits = RECIPES["digits"].resolve({"refiner_steps": "11"})
    assert digits["lfr_steps"] == "11" and digits["reflow_steps"] == "11"
    with pytest.raises(ValueError, match="recipe mnist has no setting 'lfr_step'; its settings: .*lfr_steps"):
        recipe.resolve({"lfr_step": "7"})
    with pytest.raises(ValueError, match="--set takes NAME=VALUE, got 'lfr_steps'"):
        build_cli.parse_settings(["lfr_steps"])
    # the GPU build takes the shipped DFR's recipe, the CPU build the CPU one
    gpu = build_cli.stage_commands(recipe, recipe.resolve(device="cuda"), tmp_path, False, False)
    dfr = dict((s.name, argv) for s, argv in gpu)["train-dfr"]
    assert dfr[dfr.index("--pool") + 1] == "10000" and dfr[dfr.index("--device") + 1] == "cuda"


def build_args(recipe: str, out, **kw) -> argparse.Namespace:
    base = dict(
        recipe=recipe, out=out, set=[], smoke=False, resume=False, device="cpu", dry_run=False, stages=None
    )
    return argparse.Namespace(**{**base, "data_dir": None, "quiet": True, **kw})


def test_a_build_runs_its_stages_in_order_and_a_resumed_one_skips_the_finished(tmp_path, monkeypatch):
    ran: list[list[str]] = []

    def run(argv):
        ran.append(argv)
        return 0 if "reflow-lfr" not in argv else 2  # the reflow fails

    with pytest.raises(ValueError, match="stage reflow-lfr failed .exit 2.; rerun the build with --resume"):
        build_cli.cmd_build(build_args("moons", tmp_path / "b"), run)
    assert [a[1] for a in ran] == ["train-base", "invert", "train-lfr", "reflow-lfr"]
    assert sorted(p.name for p in (tmp_path / "b" / ".times").iterdir()) == [
        "invert",
        "train-base",
        "train-lfr",
    ]
    ran.clear()
    build_cli.cmd_build(build_args("moons", tmp_path / "b", resume=True), lambda argv: ran.append(argv) or 0)
    assert [a[1] for a in ran] == ["reflow-lfr", "train-dfr", "latent-map", "bias-plane", "evaluate"]
    assert all("--resume" in a for a in ran if a[1] in ("reflow-lfr", "train-dfr"))
    times = json.loads((tmp_path / "b" / "build_times.json").read_text())
    assert set(times) == {s.name for s in RECIPES["moons"].stages} | {"total", "parallel_chains"}
    # on another machine (no .times markers), a build of some stages keeps the times of the others
    shutil.rmtree(tmp_path / "b" / ".times")
    build_cli.cmd_build(build_args("moons", tmp_path / "b", stages=["evaluate"]), lambda argv: 0)
    again = json.loads((tmp_path / "b" / "build_times.json").read_text())
    assert (
        set(again) == set(times) and list(again)[:2] == sorted(set(again) - {"total", "parallel_chains"})[:2]
    )
    assert {k: again[k] for k in times if k not in ("evaluate", "total")} == {
        k: times[k] for k in times if k not in ("evaluate", "total")
    }
    assert again["total"] >= times["total"]  # every run's wall time, summed


def test_a_parallel_recipe_runs_its_two_chains_as_child_processes(tmp_path, monkeypatch):
    toy = Recipe(
        "toy",
        "moons",
        (
            Stage("first", "sample --help"),
            Stage("left", "invert --help", chain="lfr"),
            Stage("right", "train-dfr --help", chain="dfr"),
            Stage("last", "evaluate --help"),
        ),
        card={"description": "α"},
        parallel=True,
    )
    monkeypatch.setitem(RECIPES, "toy", toy)
    ran: list[list[str]] = []
    build_cli.cmd_build(build_args("toy", tmp_path / "b"), lambda argv: ran.append(argv) or 0)
    assert [a[1] for a in ran] == ["sample", "evaluate"]  # in process; the chains in children
    times = tmp_path / "b" / ".times"
    assert {p.name for p in times.iterdir()} >= {
        "first",
        "left",
        "right",
        "last",
        "lfr_chain.log",
        "dfr_chain.log",
    }
    assert "usage: python -m bfr_core invert" in (times / "lfr_chain.log").read_text()
    assert json.loads((tmp_path / "b" / "bundle.json").read_text(encoding="utf-8")) == {"description": "α"}


def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path, capsys):
    assert main(["build", "mnist-alpha", "--out", str(tmp_path / "a"), "--dry-run", "--set", "eval_n=5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("alpha-map: python -m bfr_core sweep --bundle") and "--n 5 " in lines[-1]
    assert not (tmp_path / "a").exists()
    assert main(["build", "mnist-alpha", "--dry-run", "--set", "nope=1"]) == 2
    assert "recipe mnist-alpha has no setting 'nope'" in capsys.readouterr().err


def test_a_build_can_run_only_some_of_its_stages(tmp_path, capsys):
    """--stages runs the named stages in the recipe's order; an unknown name is refused with the list."""
    ran: list[list[str]] = []
    args = build_args("cifar10-cpu", tmp_path / "c", stages=["reference", "train-classifier"])
    build_cli.cmd_build(args, lambda argv: ran.append(argv) or 0)
    assert [a[1] for a in ran] == ["train-classifier", "reference"]
    assert sorted(p.name for p in (tmp_path / "c" / ".times").iterdir()) == ["reference", "train-classifier"]
    assert main(["build", "cifar10-cpu", "--stages", "train-bse", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "recipe cifar10-cpu has no stage train-bse; its stages: train-base, train-classifier," in err


def test_recipes_module_states_its_placeholders():
    """Every {name} a stage uses is a setting of its recipe, or out/resume."""
    for recipe in RECIPES.values():
        known = set(recipe.resolve()) | {"out", "resume"}
        assert recipe.placeholders() <= known, (recipe.name, recipe.placeholders() - known)
    assert recipes.CHAINS == ("lfr", "dfr")
