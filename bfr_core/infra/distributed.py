"""Data-parallel training under ``torchrun``: one process per rank, the same code path as one process.

Launched as ``torchrun --standalone --nproc_per_node N -m bfr_core <command> …``, the CLI joins the
process group (gloo on CPU, nccl on CUDA) from torchrun's environment. Every rank draws the same
*global* batch from the shared seed and trains on its own contiguous shard of it, so the gradient
that DistributedDataParallel averages over ranks is the full batch's gradient: N processes follow
the single-process run up to the order of floating-point sums. ``--batch-size`` stays the global
batch. Rank 0 alone writes checkpoints and shows progress; every rank reads the same state to resume.
Drawing the global batch on every rank repeats that (cheap) work, e.g. the OT assignment, N times.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """True under torchrun with more than one process (its WORLD_SIZE environment variable)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    """Join the process group torchrun describes (gloo on CPU, nccl with CUDA); a no-op otherwise."""
    if launched() and not dist.is_initialized():
        if torch.cuda.is_available():  # one GPU per rank, before nccl starts
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def shard(n: int) -> slice:
    """The rows of a global batch of ``n`` that this rank trains on (contiguous, equal sizes)."""
    rank, world = rank_and_world()
    if n % world:
        raise ValueError(f"the global batch size {n} must be divisible by the number of processes {world}")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model DistributedDataParallel averages gradients for, when there are several ranks."""
    if rank_and_world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def barrier() -> None:
    if rank_and_world()[1] > 1:
        dist.barrier()


def gather_rows(x: torch.Tensor, total: int) -> torch.Tensor:
    """Concatenate every rank's rows (rank order) of a tensor sharded with ``rows_of``; ``total`` rows."""
    rank, world = rank_and_world()
    if world == 1:
        return x
    per = -(-total // world)
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else x.device
    padded = torch.zeros((per, *x.shape[1:]), dtype=x.dtype, device=on)  # nccl gathers GPU tensors only
    padded[: len(x)] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat(
        [p[: len(range(total)[rows_of(total, r, world)])].to(x.device) for r, p in enumerate(parts)]
    )


def rows_of(total: int, rank: int | None = None, world: int | None = None) -> slice:
    """Rank ``rank``'s contiguous share of ``total`` rows (the last share may be shorter)."""
    if rank is None or world is None:
        rank, world = rank_and_world()
    per = -(-total // world)
    return slice(min(rank * per, total), min((rank + 1) * per, total))
