"""Where a command computes: ``--device auto|cpu|cuda`` and optional bf16 autocast on CUDA.

The CPU path is the default and is untouched: nothing is wrapped or moved when the device is the CPU.
On CUDA, random draws stay on the CPU (the same ``torch.Generator`` streams as a CPU run), the batch
is moved to the GPU for the network, and the network's output comes back to the CPU where the loss
and the ODE solver's bookkeeping live. Under torchrun each rank takes the GPU of its ``LOCAL_RANK``.
No GPU was available to this project when this was written: the CUDA branches are exercised only by
the tests that say so in their skip reason.
"""

from __future__ import annotations

import os

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "cpu") -> torch.device:
    """``cpu`` → the CPU; ``cuda`` → this rank's GPU (a ValueError when there is none); ``auto`` → CUDA
    when available, else the CPU."""
    if name not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available to this torch build; use --device cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def check_bf16(device: torch.device, bf16: bool) -> None:
    if bf16 and device.type != "cuda":
        raise ValueError("--bf16 needs a CUDA device (--device cuda or auto on a machine with a GPU)")


def describe(device: torch.device, bf16: bool = False) -> str:
    """What a model's metadata records of where it was trained: ``cpu`` or ``cuda (NAME[, bf16])``."""
    if device.type != "cuda":
        return "cpu"
    return f"cuda ({torch.cuda.get_device_name(device)}{', bf16' if bf16 else ''})"


class OnDevice(torch.nn.Module):
    """Call ``net`` on ``device``: tensor arguments are moved there, the output is returned (in float32)
    on the first tensor argument's device; with ``bf16`` the call runs under CUDA bf16 autocast."""

    def __init__(self, net: torch.nn.Module, device: torch.device, bf16: bool = False):
        super().__init__()
        self.net, self.device, self.bf16 = net, device, bf16

    def forward(self, *args):
        home = next(a.device for a in args if torch.is_tensor(a))
        moved = [a.to(self.device) if torch.is_tensor(a) else a for a in args]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.net(*moved)
        return out.float().to(home)


def on_device(net: torch.nn.Module, device: torch.device, bf16: bool = False) -> torch.nn.Module:
    """``net`` itself on the CPU (nothing changes there), else it wrapped in :class:`OnDevice`."""
    return net if device.type == "cpu" else OnDevice(net, device, bf16)
