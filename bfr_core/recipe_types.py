"""What a build recipe is: a :class:`Stage` (one CLI command as a template) and a :class:`Recipe` (a dataset,
its settings and stages, its card and shared files), with the settings every recipe starts from.

The recipes themselves are the table in ``bfr_core/recipes.py``.
"""

from __future__ import annotations

import shlex
import string
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

DEFAULTS = MappingProxyType(
    dict(
        refiner_steps=4000,  # LFR, DFR and the reflow unless a recipe says otherwise
        lfr_steps="{refiner_steps}",
        reflow_steps="{refiner_steps}",
        classifier_steps=2000,
        classifier_extra="",
        pool=4096,  # generated samples the DFR trains from
        pairs=20000,  # (prior, LFR(prior)) pairs the reflow trains on
        eval_n=2000,
        map_extra="",  # latent-map options (e.g. --points: prior draws refined at every slider setting)
        sweep_n="{eval_n}",  # samples per point of the NFE sweep
        alpha_map_n="{eval_n}",  # samples per point of the α × NFE map (α-conditioned LFRs)
        worth_n=500,  # samples per point of the equal-NFE chart
        inception_n=2000,  # images of each split in the Inception-FID statistics (~0.5 s each on one thread)
        net="",  # network width and batch, shared by the base and the refiners
        base_extra="",
        invert_extra="",
        reflow_extra="",
        lfr_args="",
        dfr_args="",
    )
)


CHAINS = ("lfr", "dfr")  # the two chains a parallel recipe runs side by side


@dataclass(frozen=True)
class Stage:
    """One CLI command of a build; ``chain`` "lfr"/"dfr" marks the two chains that depend only on the
    base (a parallel recipe runs them side by side); ``cuda_args`` replaces ``args`` on ``--device cuda``."""

    name: str
    args: str
    chain: str = ""
    smoke: bool = True
    cuda_args: str | None = None

    def argv(self, settings: Mapping[str, object]) -> list[str]:
        template = self.cuda_args if self.cuda_args and settings.get("device") == "cuda" else self.args
        return shlex.split(template.format_map(settings))


@dataclass(frozen=True)
class Recipe:
    """A bundle's build: its dataset, settings, stages, its ``bundle.json`` card and the files it shares
    with a sibling bundle (``shared.json``) instead of training them again."""

    name: str
    dataset: str
    stages: tuple[Stage, ...]
    settings: Mapping[str, object] = field(default_factory=dict)
    smoke_settings: Mapping[str, object] = field(default_factory=dict)
    card: Mapping[str, object] | None = None
    shared_from: str = ""
    shared: tuple[str, ...] = ()
    parallel: bool = False

    def resolve(self, overrides: Mapping[str, str] = (), *, smoke: bool = False, device: str = "cpu") -> dict:
        """The settings a build runs with: the recipe's, then its smoke settings, then ``overrides``
        (a ValueError names an unknown one)."""
        settings = {**DEFAULTS, "dataset": self.dataset, **self.settings, "device": device}
        if smoke:
            settings |= self.smoke_settings
        for key, value in dict(overrides).items():
            if key not in settings or key == "dataset":  # the dataset is the recipe's, not a setting
                known = ", ".join(sorted(k for k in settings if k != "dataset"))
                raise ValueError(f"recipe {self.name} has no setting {key!r}; its settings: {known}")
            settings[key] = value
        return {k: v.format_map(settings) if isinstance(v, str) else v for k, v in settings.items()}

    def stages_run(self, smoke: bool = False) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.smoke or not smoke)

    def placeholders(self) -> set[str]:
        """Every ``{name}`` the stage templates use."""
        fmt = string.Formatter()
        templates = [s.args for s in self.stages] + [s.cuda_args for s in self.stages if s.cuda_args]
        return {name for t in templates for _, name, _, _ in fmt.parse(t) if name}
