"""Conditional flow matching, written once for the base model and both refiners.

Path (t = 0 source, t = 1 target):   x_t = (1 − t)·x0 + t·x1 + σ·ε,   ε ~ N(0, I)
Target velocity:                     u_t = x1 − x0
Loss:                                L = mean ‖v_θ(t, x_t, y, c) − u_t‖²,   t ~ U(0, 1)

Couplings decide which x0 is paired with which x1 inside a minibatch:
``independent`` keeps the drawn order; ``ot`` re-pairs by the exact minibatch optimal
transport plan for squared Euclidean cost (an assignment problem, solved exactly with
``scipy.optimize.linear_sum_assignment``); ``ot-per-class`` does the same within each
class so that labelled pairs stay same-class (DFR); ``paired`` keeps fixed pairs (reflow).
``coupled_batch`` can couple a larger *OT batch* and train on a uniform subset of its pairs:
the marginals stay exact and the pairs come closer to the full OT plan.
``train_flow`` is the training loop for any such flow; ``base_batches`` draws the base model's pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from scipy.optimize import linear_sum_assignment

from bfr_core.infra import distributed
from bfr_core.generative.train import TrainConfig, TrainResult, fit

COUPLINGS = ("independent", "ot", "ot-per-class", "paired")


@dataclass
class FlowBatch:
    """A minibatch of source/target pairs with optional labels and extra conditioning."""

    x0: torch.Tensor
    x1: torch.Tensor
    y: torch.Tensor | None = None
    cond: torch.Tensor | None = None


def sample_path(x0, x1, t, sigma=0.0, noise=None):
    """Return (x_t, u_t) for x_t = (1 − t)·x0 + t·x1 + σ·ε and u_t = x1 − x0.

    ``noise`` is ε (required when σ > 0: the caller draws it from its own generator).
    """
    tt = t.view(-1, *([1] * (x0.dim() - 1)))
    xt = (1 - tt) * x0 + tt * x1
    if sigma > 0:
        if noise is None:
            raise ValueError("path noise σ > 0 needs the noise ε drawn by the caller")
        xt = xt + sigma * noise
    return xt, x1 - x0


def cfm_loss(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """L = mean over batch and dimensions of (v − u)²."""
    return torch.mean((v - u) ** 2)


def ot_assignment(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Index ``perm`` minimising Σ_i ‖x0[perm[i]] − x1[i]‖² (exact, equal batch sizes)."""
    cost = torch.cdist(x0.flatten(1).double(), x1.flatten(1).double()) ** 2
    rows, cols = linear_sum_assignment(cost.numpy())
    perm = torch.empty(len(x1), dtype=torch.long)
    perm[torch.as_tensor(cols)] = torch.as_tensor(rows)
    return perm


def couple(batch: FlowBatch, coupling: str) -> FlowBatch:
    """Re-pair ``batch.x0`` against ``batch.x1`` (labels and cond follow x1)."""
    if coupling in ("independent", "paired"):
        return batch
    if coupling == "ot":
        return replace(batch, x0=batch.x0[ot_assignment(batch.x0, batch.x1)])
    if coupling == "ot-per-class":
        if batch.y is None:
            raise ValueError("ot-per-class coupling needs labels")
        x0 = batch.x0.clone()
        for c in torch.unique(batch.y):
            idx = torch.nonzero(batch.y == c).squeeze(1)
            x0[idx] = batch.x0[idx][ot_assignment(batch.x0[idx], batch.x1[idx])]
        return replace(batch, x0=x0)
    raise ValueError(f"unknown coupling {coupling!r}; choose one of {', '.join(COUPLINGS)}")


def take(batch: FlowBatch, idx: torch.Tensor) -> FlowBatch:
    """The rows ``idx`` of every field of ``batch``."""
    return FlowBatch(
        batch.x0[idx],
        batch.x1[idx],
        None if batch.y is None else batch.y[idx],
        None if batch.cond is None else batch.cond[idx],
    )


def coupled_batch(
    draw, coupling: str, batch_size: int, ot_batch: int | None, generator: torch.Generator
) -> FlowBatch:
    """Draw ``max(ot_batch, batch_size)`` pairs, couple them, and keep ``batch_size`` of them at
    random. With ``ot_batch`` ≤ ``batch_size`` (or None) this is ``couple(draw(g, batch_size))``."""
    n = max(ot_batch or 0, batch_size)
    batch = couple(draw(generator, n), coupling)
    if n == batch_size:
        return batch
    return take(batch, torch.randperm(n, generator=generator)[:batch_size])


def flow_loss(
    net, batch: FlowBatch, sigma: float, generator: torch.Generator, rows=slice(None)
) -> torch.Tensor:
    """CFM loss of ``net`` on one (already coupled) batch, with t ~ U(0, 1).

    t and the path noise are drawn for the whole batch; the loss is taken over ``rows`` only (a
    distributed rank's shard), so every rank consumes the same random stream as one process would.
    """
    t = torch.rand(len(batch.x1), generator=generator)
    noise = torch.randn(batch.x0.shape, generator=generator) if sigma > 0 else None
    if rows != slice(None):
        batch, t = take(batch, torch.arange(len(batch.x1))[rows]), t[rows]
        noise = None if noise is None else noise[rows]
    xt, ut = sample_path(batch.x0, batch.x1, t, sigma, noise)
    return cfm_loss(net(t, xt, batch.y, batch.cond), ut)


# ----------------------------------------------------------------------------- training
def train_flow(
    net,
    draw,
    coupling: str,
    sigma: float,
    batch_size: int,
    cfg: TrainConfig,
    state_path=None,
    resume=False,
    on_step=None,
    ot_batch: int | None = None,
) -> TrainResult:
    """Train ``net`` by flow matching: minimise E‖v(t, x_t) − (x1 − x0)‖² on x_t = (1 − t)·x0 + t·x1 + σ·ε.

    Args:
        net: the velocity network v(t, x, y, cond).
        draw: ``draw(generator, n) -> FlowBatch`` of sources x0, targets x1 (and classes, α).
        coupling: "independent", "ot" (minibatch OT) or "ot-per-class" pairing of x0 with x1.
        sigma: path noise σ; batch_size: the global batch (sharded over torchrun ranks).
        cfg: steps, lr, EMA, seed, device, snapshots (``TrainConfig``).
        state_path, resume: where the resumable state is saved, and whether to continue from it.
        on_step: called with (step, loss) after every step (the bias lab's live curves).
        ot_batch: when larger than ``batch_size``, couple that many pairs per step and train on
            ``batch_size`` of them (closer pairs; ``coupled_batch``).

    Returns:
        TrainResult: the EMA model on the CPU, the steps, the final loss, wall time and device.
    """

    def loss_fn(model, generator, step):
        batch = coupled_batch(draw, coupling, batch_size, ot_batch, generator)  # the global batch
        return flow_loss(model, batch, sigma, generator, distributed.shard(batch_size))

    return fit(net, loss_fn, cfg, state_path, resume, on_step)


def labels_or_none(y: torch.Tensor, conditional: bool):
    return y if conditional else None


def base_batches(x_train, y_train, conditional: bool, leak: float = 0.0):
    """Source N(0, I), target real data (with labels when the base is conditional).

    With ``leak`` l > 0 the source is x0 = √(1 − l²)·ε + l·x1 (ε ~ N(0, I)): the model is trained
    on sources that still hold a trace of their image, but sampled from pure N(0, I). This is the
    signal leak (non-zero terminal SNR) of the paper's MNIST base, made explicit.
    """
    if not 0.0 <= leak < 1.0:
        raise ValueError(f"leak must lie in [0, 1), got {leak}")

    def draw(g, bs):
        idx = torch.randint(0, len(x_train), (bs,), generator=g)
        x1 = x_train[idx]
        x0 = torch.randn(x1.shape, generator=g)
        if leak > 0:
            x0 = (1 - leak**2) ** 0.5 * x0 + leak * x1
        return FlowBatch(x0, x1, labels_or_none(y_train[idx], conditional))

    return draw
