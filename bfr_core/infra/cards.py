"""Model cards: the typed, validated view of a model file's metadata.

Every safetensors file the CLI writes carries its metadata as JSON (``checkpoint.save_model``): the
network config, the producing command, the steps, the sampling default and the refiner's settings. A
:class:`ModelCard` is that metadata read once, at load, with every field the pipeline relies on checked
— a file with a bad sampling default, an α outside [0, 1] or an unknown role is refused with a
CheckpointError naming the field, instead of failing later where the field is used. The free-form dict
stays available (``Bundle.meta``) for the provenance fields that are only shown, never computed with.
"""

from __future__ import annotations

from dataclasses import dataclass

from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.generative.ode import FIXED_SOLVERS, grid_steps


@dataclass(frozen=True)
class Sampling:
    """The solver and NFE a model runs at by default."""

    solver: str
    nfe: int


@dataclass(frozen=True)
class ModelCard:
    """What a model file says about itself.

    Attributes:
        role: which model of a bundle it is (None for files older than roles; then the file name says).
        dataset: the dataset it was trained on.
        shape: the data shape of its network, (C, H, W) or (D,).
        num_classes: the classes it is conditioned on (0: unconditional).
        cond_dim: the size of its extra conditioning input (1 for an α-conditioned LFR).
        steps: training steps, when recorded.
        command: the command that produced it, when recorded.
        sampling: its default solver and NFE (flows only).
        alpha: the fixed mixing coefficient of an LFR (None when α-conditioned).
        alpha_max: the top of the α range of an α-conditioned LFR.
        alpha_default: the α a conditioned LFR uses when none is given.
    """

    role: str | None
    dataset: str
    shape: tuple[int, ...]
    num_classes: int
    cond_dim: int
    steps: int | None
    command: str | None
    sampling: Sampling | None
    alpha: float | None = None
    alpha_max: float | None = None
    alpha_default: float | None = None

    @classmethod
    def from_meta(cls, meta: dict, where: str, roles: tuple[str, ...]) -> "ModelCard":
        """Validate ``meta`` (a file's metadata) into a card; a CheckpointError names ``where``, the field.
        ``roles``: the model files a bundle may hold (``bundle.MODEL_FILES``, from the refiner registry)."""

        def fail(field: str, why: str):
            raise CheckpointError(f"{where}: metadata field {field!r} {why}")

        role = meta.get("role")
        if role is not None and role not in roles:
            fail("role", f"is {role!r}, not one of {', '.join(roles)}")
        net = meta.get("net")
        if not isinstance(net, dict) or not isinstance(net.get("shape"), list):
            fail("net", "must hold the network config with its 'shape'")
        shape = net["shape"]
        if not shape or not all(type(d) is int and d > 0 for d in shape):
            fail("net.shape", f"must be positive integers, got {shape!r}")
        counts = {k: net.get(k, 0) for k in ("num_classes", "cond_dim")}
        for k, v in counts.items():
            if type(v) is not int or v < 0:
                fail(f"net.{k}", f"must be a non-negative integer, got {v!r}")
        steps = meta.get("steps")
        if steps is not None and (type(steps) is not int or steps < 0):
            fail("steps", f"must be a non-negative integer, got {steps!r}")
        command = meta.get("command")
        if command is not None and not isinstance(command, str):
            fail("command", "must be text")
        sampling = meta.get("sampling")
        if sampling is not None:
            try:
                ok = isinstance(sampling, dict) and sampling.get("solver") in FIXED_SOLVERS
                ok = ok and grid_steps(sampling["solver"], sampling.get("nfe")) > 0
            except ValueError:
                ok = False
            if not ok:
                fail("sampling", f"must be a fixed-step solver and a valid NFE, got {sampling!r}")
            sampling = Sampling(sampling["solver"], sampling["nfe"])
        alphas = {k: meta.get(k) for k in ("alpha", "alpha_max", "alpha_default")}
        for k, v in alphas.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
                fail(k, f"must be a number in [0, 1], got {v!r}")
        if role == "lfr" and alphas["alpha"] is None and alphas["alpha_max"] is None:
            fail("alpha", "is missing: an LFR records its fixed α or its α range (alpha_max)")
        return cls(
            role=role,
            dataset=str(meta.get("dataset", "unknown")),
            shape=tuple(shape),
            num_classes=counts["num_classes"],
            cond_dim=counts["cond_dim"],
            steps=steps,
            command=command,
            sampling=sampling,
            **alphas,
        )
