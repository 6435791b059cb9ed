"""Checkpoint files: safetensors weights + a JSON metadata block, written atomically.

A model file ``NAME.safetensors`` carries its tensors and, in the safetensors header's
``__metadata__``, a key ``bfr`` holding JSON: ``{"net": <build_net config>, ...}`` plus
whatever the producer records (dataset, steps, command, wall time, metrics).

Loading never executes code: safetensors is a plain header + raw buffers, and the training
state used for ``--resume`` is read with ``torch.load(weights_only=True)``. Every failure
raises :class:`CheckpointError` with a one-line message naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes

from bfr_core.generative.nets import build_net

MAX_FILE_BYTES = 64 * 2**20  # refuse anything bigger: shipped checkpoints are < 20 MiB
MAX_LATENTS_BYTES = (
    256 * 2**20
)  # a local latents file a training reads: 60,000 MNIST latents in fp16 are 94 MB


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, unsafe or does not match its config."""


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path: str | Path) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(buf.getvalue(), path)


def load_train_state(path: str | Path) -> dict:
    """Read a ``--resume`` training state with the weights-only (no code) unpickler."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure becomes one clear line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot resume from this training state ({first})") from None


def save_tensors(tensors: dict[str, torch.Tensor], meta: dict, path: str | Path) -> None:
    """Save tensors and a JSON metadata dict as one safetensors file (atomic)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(st_save_bytes(tensors, metadata={"bfr": json.dumps(meta)}), path)


def load_tensors(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a safetensors file written by :func:`save_tensors` and no larger than ``max_bytes``.

    Returns (tensors, metadata). Raises CheckpointError on a missing, oversized or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{path}: {size} bytes is over the {max_bytes} byte limit")
    data = path.read_bytes()
    try:
        tensors = st_load_bytes(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get("bfr", "null"))
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a valid safetensors checkpoint ({first})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: no 'bfr' metadata block; not a BFR Explorer checkpoint")
    return tensors, meta


def save_model(model: torch.nn.Module, net_config: dict, meta: dict, path: str | Path) -> None:
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}  # a GPU snapshot too
    save_tensors(weights, {**meta, "net": net_config}, path)


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a network from its file's config and load its weights, validating both.

    Returns (model in eval mode, metadata). Raises CheckpointError on any mismatch, so a
    half-loaded model is never returned.
    """
    tensors, meta = load_tensors(path)
    try:
        model = build_net(meta.get("net"))
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the config ({len(missing)} missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    for k, v in expected.items():
        if tensors[k].shape != v.shape:
            raise CheckpointError(
                f"{path}: tensor {k!r} has shape {tuple(tensors[k].shape)}, config expects {tuple(v.shape)}"
            )
        if not torch.isfinite(tensors[k].float()).all():
            raise CheckpointError(f"{path}: tensor {k!r} contains NaN or inf")
    model.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()})
    return model.eval(), meta


def load_stored_measurement(path: Path, valid, what: str) -> dict | None:
    """A JSON measurement stored in a bundle (``bfr sweep``, ``bfr worth-nfe``), or None when absent.

    ``valid(stored)`` checks its shape (a KeyError, TypeError or ValueError counts as invalid); the
    provenance fields ``n`` and ``command`` are required too. Raises CheckpointError("PATH: not a valid
    stored WHAT") for anything else, so an edited or corrupted file is refused by name.
    """
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        ok = bool(valid(stored))
        int(stored["n"]), str(stored["command"])
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: not a valid stored {what}")
    return stored
