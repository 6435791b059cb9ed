"""One training loop for every model in the project (base flow, LFR, DFR, classifier).

Seeded through a single ``torch.Generator`` whose state is checkpointed with the weights,
optimizer and EMA, so ``resume=True`` continues a killed run exactly where its last
checkpoint left it (at most ``save_every`` steps are lost). Progress is shown with tqdm.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from bfr_core.infra import distributed
from bfr_core.infra.checkpoint import atomic_torch_save, load_train_state
from bfr_core.infra.device import check_bf16, describe, on_device, resolve_device


@dataclass
class TrainConfig:
    steps: int = 2000
    lr: float = 1e-3
    ema_decay: float = 0.999
    save_every: int = 500
    seed: int = 0
    grad_clip: float = 1.0
    progress: bool = True
    desc: str = "train"
    snapshots: tuple[int, ...] = ()  # steps after which ``on_snapshot(step, ema_model)`` is called
    device: str = "cpu"  # --device: cpu, cuda or auto (device.resolve_device)
    bf16: bool = False  # bf16 autocast of the forward pass (CUDA only)
    max_seconds: float | None = None  # time box: stop after the step that passes it (the steps done are kept)
    on_snapshot: Callable[[int, torch.nn.Module], None] | None = None


@dataclass
class TrainResult:
    model: torch.nn.Module  # the EMA weights when ema_decay > 0
    steps: int
    final_loss: float
    wall_s: float
    device: str = "cpu"  # where it was trained, e.g. "cuda (NVIDIA H200, bf16)"
    stopped_early: bool = False  # the time box ended it before cfg.steps: its resume state is worth keeping


def fit(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, torch.Generator, int], torch.Tensor],
    cfg: TrainConfig,
    state_path: str | Path | None = None,
    resume: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Minimise ``loss_fn(model, generator, step)`` with Adam for ``cfg.steps`` steps, or until
    ``cfg.max_seconds`` of this run's wall time have passed (then ``TrainResult.steps`` says how many ran).

    Under torchrun (``distributed``) ``loss_fn`` receives the DistributedDataParallel wrapper and
    takes its loss over this rank's shard of the global batch; only rank 0 writes state.

    Returns the EMA copy of the model: after step t, w_ema ← d_t·w_ema + (1 − d_t)·w with
    d_t = min(ema_decay, (1 + t) / (10 + t)), so short runs are not dominated by their start.
    """
    device = resolve_device(cfg.device)
    check_bf16(device, cfg.bf16)
    model.to(device)  # a no-op on the CPU
    generator = torch.Generator().manual_seed(cfg.seed)  # draws stay on the CPU whatever the device
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ema = copy.deepcopy(model).requires_grad_(False)
    start, wall_before, loss_value = 0, 0.0, float("nan")
    state_path = Path(state_path) if state_path else None
    if resume and state_path is not None and state_path.exists():
        state = load_train_state(state_path)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start, wall_before = int(state["step"]), float(state["wall_s"])

    def save(step: int, wall: float) -> None:
        if state_path is not None and distributed.is_main():
            atomic_torch_save(
                {
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": generator.get_state(),
                    "step": step,
                    "wall_s": wall,
                },
                state_path,
            )

    t0 = time.perf_counter()
    model.train()
    trained = distributed.wrap(model)  # under torchrun, DistributedDataParallel averages gradients over ranks
    trained = on_device(trained, device, cfg.bf16)  # on a GPU: batches in, outputs back to the CPU
    bar = tqdm(
        range(start, cfg.steps),
        initial=start,
        total=cfg.steps,
        desc=cfg.desc,
        disable=not cfg.progress or not distributed.is_main(),
        mininterval=1.0,
    )
    params = list(model.parameters())  # listed once: walking the modules every step costs ~10% on tiny nets
    ema_pairs = list(zip(ema.parameters(), params))
    buffer_pairs = list(zip(ema.buffers(), model.buffers()))
    done = cfg.steps
    for step in bar:
        if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
            done = step
            bar.write(
                f"{cfg.desc}: time box of {cfg.max_seconds:g} s reached after {step} of {cfg.steps} steps"
            )
            break
        loss = loss_fn(trained, generator, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{cfg.desc}: loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))  # warm-up: early EMA follows the model
            for pe, pm in ema_pairs:
                pe.lerp_(pm, 1 - d)
            for be, bm in buffer_pairs:
                be.copy_(bm)
        loss_value = loss.item()
        bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
        if on_step is not None:
            on_step(step + 1, loss_value)
        if cfg.on_snapshot is not None and step + 1 in cfg.snapshots and distributed.is_main():
            cfg.on_snapshot(step + 1, ema if cfg.ema_decay > 0 else model)
        if (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            save(step + 1, wall_before + time.perf_counter() - t0)
    wall = wall_before + time.perf_counter() - t0
    save(done, wall)
    final = ema if cfg.ema_decay > 0 else model
    return TrainResult(
        final.eval().cpu(), done, loss_value, wall, describe(device, cfg.bf16), done < cfg.steps
    )
