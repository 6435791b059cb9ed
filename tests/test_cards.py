import pytest

from bfr_core.bundle import MODEL_FILES
from bfr_core.infra.cards import ModelCard, Sampling
from bfr_core.infra.checkpoint import CheckpointError

LFR = {
    "role": "lfr",
    "dataset": "mnist",
    "net": {"kind": "unet_velocity", "shape": [1, 28, 28], "num_classes": 10, "cond_dim": 0},
    "steps": 6000,
    "command": "python -m bfr_core train-lfr --bundle b",
    "sampling": {"solver": "rk4", "nfe": 4},
    "alpha": 0.2,
    "alpha_max": None,
    "alpha_default": 0.2,
}


def test_a_valid_file_becomes_a_typed_card():
    card = ModelCard.from_meta(LFR, "lfr.safetensors", MODEL_FILES)
    assert card.shape == (1, 28, 28) and card.num_classes == 10 and card.cond_dim == 0
    assert card.sampling == Sampling("rk4", 4) and card.alpha == 0.2 and card.steps == 6000
    old = ModelCard.from_meta({"net": {"shape": [2]}}, "old.safetensors", MODEL_FILES)  # written before roles
    assert old.role is None and old.sampling is None and old.dataset == "unknown"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"role": "sdedit"}, "'role'"),
        ({"net": {"shape": [1, 0, 28]}}, "'net.shape'"),
        ({"net": {"shape": [2], "num_classes": -1}}, "'net.num_classes'"),
        ({"net": None}, "'net'"),
        ({"steps": 2.5}, "'steps'"),
        ({"command": ["python"]}, "'command'"),
        ({"sampling": {"solver": "rk4", "nfe": 6}}, "'sampling'"),
        ({"sampling": {"solver": "dopri5", "nfe": 4}}, "'sampling'"),
        ({"alpha": 1.5}, "'alpha'"),
        ({"alpha_max": True}, "'alpha_max'"),
        ({"alpha": None, "alpha_max": None}, "'alpha' is missing"),
    ],
)
def test_a_bad_field_is_refused_by_name(change, field):
    with pytest.raises(CheckpointError, match=f"x.safetensors: metadata field {field}"):
        ModelCard.from_meta({**LFR, **change}, "x.safetensors", MODEL_FILES)


def test_the_roles_a_card_may_have_come_from_the_refiner_registry():
    """A refiner added to the registry is a valid role without touching cards.py."""
    from bfr_core.refiners import REFINERS

    assert MODEL_FILES == ("base", *REFINERS, "classifier", "classifier2")
    card = ModelCard.from_meta({**LFR, "role": "new_refiner"}, "x.safetensors", (*MODEL_FILES, "new_refiner"))
    assert card.role == "new_refiner"
