"""The 2-D bias lab: train a deliberately short base on a toy set, expose its bias, correct it.

Everything is small enough to train live on a CPU in seconds: a base flow N(0, I) → data,
its inverted latents z_b = G⁻¹(x) (visibly not N(0, I)), an LFR (N(0, I) → z_b, OT coupling)
and a DFR (G(z) → data, OT coupling), with trajectories for plotting.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from bfr_core.infra.data import load_dataset
from bfr_core.infra.dataset import Dataset
from bfr_core.eval.metrics import energy_distance
from bfr_core.generative.nets import MLPVelocity, init_weights
from bfr_core.generative.flow import base_batches, train_flow
from bfr_core.generative.ode import flow_map
from bfr_core.generative.inversion import invert
from bfr_core.refiners.dfr import Augment, dfr_batches
from bfr_core.refiners.lfr import lfr_batches
from bfr_core.generative.train import TrainConfig
from bfr_core.views.trajectories import Path

MAX_LAB_STEPS = 3000
MAX_LAB_POINTS = 5000
DEFAULT_LAB = ("moons", 60, 250)  # toy set, base steps, refiner steps: the view's first setting
LAB_CACHE_SIZE = 32
USER_POINTS = (50, 1000)  # how many points a user may paste as their own data set
USER_POINTS_CHARS = 30_000  # the pasted text's bound (1,000 lines of "x, y" fit easily)
USER_TEST_SHARE = 0.2  # results kept by cached_bias_lab (each ~100 kB)


@dataclass
class LabResult:
    real: torch.Tensor
    generated: torch.Tensor
    prior: torch.Tensor
    biased_latents: torch.Tensor
    lfr_latents: torch.Tensor
    lfr_points: torch.Tensor
    dfr_points: torch.Tensor
    dfr_trajectory: torch.Tensor  # (steps + 1, n, 2)
    energy: dict
    lfr_field: tuple[torch.Tensor, torch.Tensor] | None = None  # (grid points, v(0, z)) in latent space
    dfr_field: tuple[torch.Tensor, torch.Tensor] | None = None  # (grid points, v(0, x)) in data space
    curves: dict[str, list[tuple[int, float]]] | None = None  # stage → (step, training loss) per step
    paths: dict[str, Path] | None = None  # the scrubber's "base", "lfr" (latent space), "dfr" paths


PATH_STEPS = 10  # solver steps of the scrubber's paths: frames every 0.1 of t


@torch.no_grad()
def scrubber_paths(base, lfr, prior: torch.Tensor, dfr_path: torch.Tensor) -> dict[str, Path]:
    """The paths the lab's time scrubber draws, all from the same prior draws z: the base ODE x_t from z to
    G(z) (RK4, PATH_STEPS steps), the LFR's path z_t from z towards the biased latents (Euler, PATH_STEPS
    steps; in latent space, where 2-D can be looked at directly) and the DFR's path from G(z) to
    F_DFR(G(z)) (the lab's own Euler solve)."""
    times = torch.linspace(0.0, 1.0, PATH_STEPS + 1)
    solve = {"base": (base, "rk4", 4 * PATH_STEPS), "lfr": (lfr, "euler", PATH_STEPS)}
    paths = {
        name: Path(times, flow_map(net, prior, solver=solver, nfe=nfe, return_trajectory=True).trajectory)
        for name, (net, solver, nfe) in solve.items()
    }
    paths["dfr"] = Path(torch.linspace(0.0, 1.0, len(dfr_path)), dfr_path)
    return paths


@torch.no_grad()
def velocity_grid(net, points: torch.Tensor, n: int = 15) -> tuple[torch.Tensor, torch.Tensor]:
    """A refiner's learned velocity v(0, ·) on an n×n grid spanning the 2nd–98th percentiles of ``points``.

    Returns (grid (n², 2), velocity (n², 2)): one Euler step of size 1 moves a grid point by its velocity.
    """
    lo, hi = torch.quantile(points, 0.02, dim=0), torch.quantile(points, 0.98, dim=0)
    axes = [torch.linspace(float(lo[i]), float(hi[i]), n) for i in range(2)]
    grid = torch.cartesian_prod(*axes)
    return grid, net(torch.zeros(len(grid)), grid, None, None)


def points_dataset(text: str, seed: int = 0) -> Dataset:
    """A user's own 2-D points as the lab's data set.

    Args:
        text: one point per line, "x, y" (comma, semicolon, space or tab between the two numbers);
            blank lines are skipped. USER_POINTS[0]..USER_POINTS[1] finite points, at most
            USER_POINTS_CHARS characters.
        seed: the split's seed.

    Returns:
        A Dataset "my points": standardised (x − mean) / RMS so the points have the prior's scale, then
        shuffled and split, USER_TEST_SHARE of them held out as the test set.

    Raises:
        ValueError: naming the first bad line, or the count / length bound broken.
    """
    if not isinstance(text, str) or len(text) > USER_POINTS_CHARS:
        raise ValueError(f"your points must be text of at most {USER_POINTS_CHARS:,} characters")
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.replace(",", " ").replace(";", " ").split()
        if not parts:
            continue
        try:
            values = [float(v) for v in parts]
        except ValueError:
            values = []
        if len(values) != 2 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"line {number} of your points is not two finite numbers: {line.strip()[:40]!r}")
        rows.append(values)
    lo, hi = USER_POINTS
    if not lo <= len(rows) <= hi:
        raise ValueError(f"paste between {lo} and {hi} points, one 'x, y' per line; got {len(rows)}")
    x = torch.tensor(rows, dtype=torch.float32)
    x = x - x.mean(0)
    rms = x.pow(2).mean().sqrt()
    if rms < 1e-6:
        raise ValueError("your points all lie on one spot; paste points that spread out")
    x = x / rms
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))]
    k = max(1, int(len(x) * USER_TEST_SHARE))
    zeros = torch.zeros(len(x), dtype=torch.long)
    return Dataset("my points", x[k:], zeros[k:], x[:k], zeros[:k], num_classes=1)


def run_bias_lab(
    name: str = "moons",
    base_steps: int = 60,
    refine_steps: int = 250,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.1,
    progress=None,
    data: Dataset | None = None,
    curves: dict[str, list[tuple[int, float]]] | None = None,
) -> LabResult:
    """Train base → invert → LFR → DFR on a 2-D point set, in seconds, and score every stage.

    Args:
        name: a toy set (``TOY_SETS``), unless ``data`` is given (e.g. :func:`points_dataset`).
        base_steps, refine_steps: training steps of the base and of each refiner (10..MAX_LAB_STEPS);
            a short base is a biased one.
        n: real points, latents and scored samples (at most); seed: every draw's seed.
        alpha: the LFR's mixing coefficient α.
        progress: ``progress(fraction, text)`` after each stage.
        curves: every step's training loss is appended to ``curves[stage]`` as it happens (stages
            "base", "LFR", "DFR"; a fresh dict when None), so another thread can draw them live.

    Returns:
        LabResult: the points of every stage (real, base, LFR, DFR), the latents (prior, biased,
        refined), the energy distance of each stage to held-out real points, the learned fields and
        the loss curves.
    """
    if not (isinstance(base_steps, int) and 10 <= base_steps <= MAX_LAB_STEPS):
        raise ValueError(f"base steps must be an integer in 10..{MAX_LAB_STEPS}, got {base_steps!r}")
    if not (isinstance(refine_steps, int) and 10 <= refine_steps <= MAX_LAB_STEPS):
        raise ValueError(f"refiner steps must be an integer in 10..{MAX_LAB_STEPS}, got {refine_steps!r}")
    if not (isinstance(n, int) and 100 <= n <= MAX_LAB_POINTS):
        raise ValueError(f"points must be an integer in 100..{MAX_LAB_POINTS}, got {n!r}")
    ds = data if data is not None else load_dataset(name, seed=seed)
    real, test = ds.x_train[:n], ds.x_test[:n]
    total = base_steps + 2 * refine_steps
    curves = {} if curves is None else curves

    def reporter(offset, label):
        curve = curves.setdefault(label, [])

        def report(step, loss):
            curve.append((step, loss))
            if progress and step % 25 == 0:
                progress((offset + step) / total, f"{label}: step {step}, loss {loss:.3f}")

        return report

    def net():  # every network starts from the same seeded weights, drawn from its own generator
        return init_weights(MLPVelocity((2,), hidden=64, depth=2), torch.Generator().manual_seed(seed))

    def cfg(steps):
        return TrainConfig(steps=steps, lr=2e-3, ema_decay=0.99, seed=seed, progress=False)

    base = train_flow(
        net(),
        base_batches(ds.x_train, ds.y_train, False),
        "independent",
        0.0,
        128,
        cfg(base_steps),
        on_step=reporter(0, "base"),
    ).model
    g = torch.Generator().manual_seed(seed)
    prior = torch.randn(n, 2, generator=g)
    generated = flow_map(base, prior, solver="rk4", nfe=8).x
    z_b = invert(base, real, solver="rk4", nfe=8, desc=None)
    lfr = train_flow(
        net(),
        lfr_batches(z_b, torch.zeros(len(z_b), dtype=torch.long), False, alpha=alpha),
        "ot",
        0.0,
        128,
        cfg(refine_steps),
        on_step=reporter(base_steps, "LFR"),
    ).model
    z_ref = flow_map(lfr, prior, solver="rk4", nfe=4).x
    lfr_points = flow_map(base, z_ref, solver="rk4", nfe=8).x
    dfr = train_flow(
        net(),
        dfr_batches(
            generated, torch.zeros(n, dtype=torch.long), ds.x_train, ds.y_train, False, Augment(blur_p=0.0)
        ),
        "ot",
        0.0,
        128,
        cfg(refine_steps),
        on_step=reporter(base_steps + refine_steps, "DFR"),
    ).model
    mapped = flow_map(dfr, generated, solver="euler", nfe=10, return_trajectory=True)
    dfr_points, traj = mapped.x, mapped.trajectory
    energy = {
        k: energy_distance(v, test)
        for k, v in (("base", generated), ("lfr", lfr_points), ("dfr", dfr_points), ("train", real))
    }
    energy["latents_vs_prior"] = energy_distance(z_b, prior)
    fields = (
        velocity_grid(lfr, torch.cat([prior, z_b])),
        velocity_grid(dfr, torch.cat([generated, real])),
    )
    paths = scrubber_paths(base, lfr, prior, traj)
    return LabResult(
        real, generated, prior, z_b, z_ref, lfr_points, dfr_points, traj, energy, *fields, curves, paths
    )


_kept: OrderedDict[tuple, LabResult] = OrderedDict()
_kept_lock = threading.Lock()


def kept_bias_lab(name: str, base_steps: int, refine_steps: int, points: str | None = None):
    """The kept result of ``cached_bias_lab`` with these arguments (most recently used), or None."""
    key = (name, base_steps, refine_steps, points)
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    return None


def cached_bias_lab(
    name: str, base_steps: int, refine_steps: int, progress=None, points: str | None = None, curves=None
) -> LabResult:
    """``run_bias_lab(name, base_steps, refine_steps)`` at its default n, seed and α, remembered;
    with ``points`` (text for :func:`points_dataset`) the user's points replace the toy set.

    The result is a pure function of these arguments (every network and draw is seeded), so the
    last LAB_CACHE_SIZE results are kept and a repeated request — or one warmed at start-up — costs
    nothing. ``progress`` is only called, and ``curves`` only filled, when the lab actually trains.
    """
    key = (name, base_steps, refine_steps, points)
    kept = kept_bias_lab(*key)
    if kept is not None:
        return kept
    data = None if points is None else points_dataset(points)  # parsed only when the lab trains
    result = run_bias_lab(name, base_steps, refine_steps, progress=progress, data=data, curves=curves)
    with _kept_lock:
        _kept[key] = result
        while len(_kept) > LAB_CACHE_SIZE:
            _kept.popitem(last=False)
    return result
