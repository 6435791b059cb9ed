"""How each shipped bundle is built, as data: one table of recipes, each a list of CLI stages.

A :class:`Stage` is one ``python -m bfr_core`` command, written as a template: ``{out}`` is the bundle
directory, ``{resume}`` becomes ``--resume`` when an interrupted build is continued, and every other
``{name}`` is one of the recipe's settings (step counts, widths, the refiners' options). ``python -m bfr_core
build RECIPE`` (``cli/build.py``) fills the templates and runs the stages in order; ``--set name=value``
changes a setting, ``--smoke`` takes the recipe's smoke settings and leaves out the stages marked
``smoke=False``, ``--dry-run`` prints the commands.

Adding a dataset's recipe = one entry in :data:`RECIPES` (and the dataset's loader in ``infra/data.py``).
Why each setting has its value is said next to it; the measurements behind them are in ``bench/results/``.
"""

from __future__ import annotations


from bfr_core.infra.data import TOY_SETS
from bfr_core.recipe_types import CHAINS, DEFAULTS, Recipe, Stage

__all__ = ["CHAINS", "DEFAULTS", "RECIPES", "Recipe", "Stage"]

# ----------------------------------------------------------------------------- the stages, as templates

BASE = Stage(
    "train-base",
    "train-base --dataset {dataset} --out {out} --steps {base_steps} {net} {base_extra} {resume}",
)
CLASSIFIER = Stage(
    "train-classifier",
    "train-classifier --bundle {out} --steps {classifier_steps} {classifier_extra} {resume}",
)
# the independent second metric: another width, feature size, seed and augmentation (an MLP without
# augmentation was tried first: its FID ranked real test images worse than base samples)
CLASSIFIER2 = Stage(
    "train-classifier2",
    "train-classifier --bundle {out} --name classifier2 --arch cnn-wide --noise 0.3 --max-shift 0 --seed 777 "
    "--steps 1250 {resume}",
    smoke=False,
)
FEATURES = (  # the test features of every extractor (scoring needs no dataset) and 256 test images to inspect
    Stage("reference", "reference --bundle {out}"),
    Stage("examples", "examples --bundle {out}"),
)
INCEPTION = Stage(  # μ, Σ of the FID Inception's features of random training and test images
    "inception-reference", "inception-reference --bundle {out} --max-images {inception_n}", smoke=False
)
INVERT = Stage("invert", "invert --bundle {out} {invert_extra}", chain="lfr")
LFR = Stage(
    "train-lfr", "train-lfr --bundle {out} {lfr_args} --steps {lfr_steps} {net} {resume}", chain="lfr"
)
REFLOW = Stage(
    "reflow-lfr",
    "reflow-lfr --bundle {out} --steps {reflow_steps} --pairs {pairs} {reflow_extra} {resume}",
    "lfr",
)
DFR = Stage(
    "train-dfr",
    "train-dfr --bundle {out} --steps {refiner_steps} --pool {pool} {net} {dfr_args} {resume}",
    "dfr",
)
LATENT_MAP = Stage("latent-map", "latent-map --bundle {out} {map_extra}", smoke=False)  # the Latents UMAP
BIAS_PLANE = Stage("bias-plane", "bias-plane --bundle {out}", smoke=False)  # the faithful map, every LFR NFE
OVERSHOOT = Stage("overshoot", "overshoot --bundle {out}", smoke=False)  # the Over-refinement tab's view
STORED_VIEWS = (LATENT_MAP, BIAS_PLANE, OVERSHOOT)  # what the app's views read from a bundle with an LFR
# the Over-refinement tab's stored charts: quality over each refiner's NFE (overrefine.json), the equal-NFE
# chart (worth_nfe.json) and, for an α-conditioned LFR, the α × NFE map (alpha_nfe.json)
SWEEP = Stage("sweep", "sweep --bundle {out} --n {sweep_n} --seed 0")
WORTH_NFE = Stage("worth-nfe", "worth-nfe --bundle {out} --n {worth_n} --seed 0")
# a latents cache over the ~20 MiB a shipped file may hold (CIFAR-10: 10,000 × 3,072), cut to its first rows
KEEP_LATENTS = Stage("keep-latents", "keep-latents --bundle {out} --n {keep_latents}", smoke=False)
ALPHA_MAP = Stage(
    "alpha-map", "sweep --bundle {out} --n {alpha_map_n} --seed 0 --alphas 0.05 0.1 0.2 0.3 0.4 0.5"
)
EVALUATE = Stage("evaluate", "evaluate --bundle {out} --n {eval_n} --seed 0 --out {out}/evaluate_seed0.json")

# MNIST's ablations, same steps and coupling for every DFR variant (the paper's MNIST blur is the CLI default)
_ABLATION = (
    "train-dfr --bundle {out} --steps {ablation_steps} --pool {ablation_pool} {net} {resume} "
    "--name ablation/dfr_"
)
MNIST_ABLATIONS = (
    # the reflow from a fresh network; from the LFR's weights (the default) it does better on held-out
    # training images (bench/results/select_lfr_reflow_mnist.json): 7.82 fresh vs 7.64
    Stage("reflow-lfr-scratch", REFLOW.args + " --init scratch --name ablation/lfr_reflow_scratch", "lfr"),
    # the DFR's wider OT tried on the LFR: held-out FID base 8.84, shipped LFR 7.53, this 8.82
    # (bench/results/select_lfr_mnist.json), so it stays an ablation
    Stage(
        "lfr-ot1024",
        "train-lfr --bundle {out} {lfr_args} --steps {refiner_steps} {net} {resume} --ot-batch 1024 "
        "--name ablation/lfr_ot1024",
        "lfr",
    ),
    Stage("ablation-none", _ABLATION + "none --blur-p 0 --noise-p 0", "dfr"),
    Stage("ablation-noise", _ABLATION + "noise --blur-p 0 --noise-p 0.3 --noise-std 0.01", "dfr"),
    Stage("ablation-blur-paper", _ABLATION + "blur-paper", "dfr"),
    Stage("ablation-blur-strong", _ABLATION + "blur-strong --blur-sigma-min 0.5 --blur-sigma-max 1.0", "dfr"),
    # the augmentation sweep's strong end (bench/dfr_augment.py): blurs past the sweet spot, stronger noise
    Stage("ablation-blur-1to2", _ABLATION + "blur-1to2 --blur-sigma-min 1.0 --blur-sigma-max 2.0", "dfr"),
    Stage("ablation-blur-2to4", _ABLATION + "blur-2to4 --blur-sigma-min 2.0 --blur-sigma-max 4.0", "dfr"),
    Stage("ablation-noise-10", _ABLATION + "noise-10 --blur-p 0 --noise-p 0.3 --noise-std 0.1", "dfr"),
    Stage("ablation-noise-30", _ABLATION + "noise-30 --blur-p 0 --noise-p 0.3 --noise-std 0.3", "dfr"),
    # the paper's recipe (OT within the batch, its blur) at the shipped DFR's steps, for the comparison
    Stage(
        "dfr-paper-recipe", DFR.args.replace("{dfr_args}", "") + " --name ablation/dfr_paper-recipe", "dfr"
    ),
)
MNIST_NET = "--channels 16 --batch-size 128"
# DFR: OT over 1,024 pairs per step (128 trained on) and a real blur. FID against held-out training images
# (bench/results/select_dfr_mnist.json, not the test split): base 8.84, the paper's recipe 19.59, this 5.46
MNIST_DFR = "--ot-batch 1024 --blur-sigma-min 0.5 --blur-sigma-max 1.0"
# The shipped DFRs were trained on a GPU at these widths (chosen on held-out training images:
# bench/results/select_dfr_<bundle>_pool10k.json)
GPU_DFR = "train-dfr --bundle {out} {gpu_dfr} {dfr_args} --device cuda {resume}"


def _image_recipe(
    name: str, dataset: str, *, classifier2: bool = True, inception: bool = True, **kw
) -> Recipe:
    """A bundle with its own base and feature extractors: base, classifiers, features, the LFR chain
    (inversion, LFR, reflow), the DFR chain, the stored views and the evaluation."""
    ablations = kw.pop("ablations", ())
    head = (
        BASE,
        CLASSIFIER,
        *((CLASSIFIER2,) if classifier2 else ()),
        *FEATURES,
        *((INCEPTION,) if inception else ()),
    )
    lfr_chain = (INVERT, LFR, REFLOW) + tuple(s for s in ablations if s.chain == "lfr")
    dfr = Stage(DFR.name, DFR.args, "dfr", cuda_args=GPU_DFR if "gpu_dfr" in kw.get("settings", {}) else None)
    dfr_chain = (dfr,) + tuple(s for s in ablations if s.chain == "dfr")
    views = STORED_VIEWS + tuple(kw.pop("views", ()))
    finish = tuple(kw.pop("finish", ()))
    return Recipe(name, dataset, head + lfr_chain + dfr_chain + views + (EVALUATE,) + finish, **kw)


def _toy_recipe(name: str) -> Recipe:
    """A 2-D point cloud: no classifier, no overshoot view (its metrics are point-cloud distances)."""
    stages = (BASE, INVERT, LFR, REFLOW, DFR, LATENT_MAP, BIAS_PLANE, EVALUATE)
    return Recipe(
        name, name, stages, settings={"base_steps": 1500, "lfr_args": "--alpha-max 0.5 --alpha 0.1"}
    )


def _over_mnist(name: str, shared: str, card: dict, stages: tuple[Stage, ...], **settings) -> Recipe:
    """A card over the mnist bundle: every file listed in ``shared`` is mnist's (shared.json)."""
    return Recipe(
        name, "mnist", stages, settings, card=card, shared_from="mnist", shared=tuple(shared.split())
    )


MNIST_SETTINGS = dict(
    # deliberately brief (biased), so that refinement has work to do; ~0.3 s a step at batch 128 here
    # (bench/results/profile_unet.json)
    base_steps=4000,
    base_extra="--snapshot-at 1000",
    refiner_steps=2000,
    reflow_steps=1500,
    invert_extra="--n 10000",
    pairs=8192,
    reflow_extra="--batch-size 128",
    classifier_steps=6000,  # 2,000 steps gave 98.81% test accuracy, short of the 99% wanted for the metric
    net=MNIST_NET,
    # LFR: fixed α = 0.2 for 6,000 steps; the capacity study (bench/results/capacity_mnist_c16.md, held-out
    # training images) found the α-conditioned 2,000-step LFR under-trained: FID 7.53 → 6.20, FID2 6.19 → 4.66
    lfr_args="--alpha 0.2",
    lfr_steps=6000,
    dfr_args=MNIST_DFR,
    gpu_dfr="--pool 10000 --channels 64 --batch-size 128 --steps 4000",
    ablation_steps=600,
    ablation_pool=2048,
)

CIFAR_DFR = "--blur-p 0 --noise-p 0.3 --noise-std 0.01"  # the authors' CIFAR-10 augmentation: noise, no blur
CIFAR_SMOKE = dict(  # every stage in minutes: checks that the stages run, not their quality
    base_steps=20,
    refiner_steps=10,
    reflow_steps=10,
    invert_extra="--n 64 --nfe 4",
    pool=64,
    pairs=64,
    classifier_steps=20,
    classifier_extra="--batch-size 16",
    reflow_extra="--batch-size 16",
    net="--channels 8 --batch-size 16",
    base_extra="--nfe 4",
    dfr_args=CIFAR_DFR + " --ot-batch 32",
    eval_n=32,
)

RECIPES: dict[str, Recipe] = {
    "digits": _image_recipe(
        "digits",
        "digits",
        classifier2=False,
        inception=False,  # 8×8 digits: Inception features of them say little
        settings={"base_steps": 200, "lfr_args": "--alpha-max 0.5 --alpha 0.2"},
    ),
    **{name: _toy_recipe(name) for name in TOY_SETS},  # every toy 2-D set of the loader
    # on a 2-core CPU the LFR and DFR chains run side by side with one thread each: ~25% more steps a second
    "mnist": _image_recipe(
        "mnist",
        "mnist",
        settings=MNIST_SETTINGS,
        ablations=MNIST_ABLATIONS,
        parallel=True,
        card={"dfr_clip": True},
    ),
    "fashion-mnist": _image_recipe(
        "fashion-mnist", "fashion-mnist", settings=MNIST_SETTINGS, ablations=MNIST_ABLATIONS, parallel=True
    ),
    # The authors' kind of bias: trained from sources √(1−l²)·ε + l·x (l = 0.08, their β schedule's terminal
    # √ᾱ_T), sampled from pure N(0, I); mnist's feature extractors. Shipped DFR: 32 channels, pool 10,000,
    # 8,000 steps on a GPU (bench/results/select_dfr_mnist-leak_pool10k.json).
    "mnist-leak": Recipe(
        "mnist-leak",
        "mnist",
        (BASE, INVERT, LFR, REFLOW, Stage(DFR.name, DFR.args, "dfr", cuda_args=GPU_DFR))
        + STORED_VIEWS
        + (EVALUATE,),
        settings={
            **MNIST_SETTINGS,
            "base_steps": 3000,
            "base_extra": "--leak 0.08",
            "lfr_steps": 2000,
            "reflow_steps": 1000,
            "pairs": 4096,
            "gpu_dfr": "--pool 10000 --channels 32 --batch-size 128 --steps 8000",
        },
        card={"dfr_clip": True},
        shared_from="mnist",
        shared=("classifier", "classifier2", "reference", "examples", "inception_reference"),
        parallel=True,
    ),
    # Discretization bias: mnist's base sampled with 8 Euler steps (its latents inverted accurately); only the
    # DFR is trained, its overshoot view stored from its own base sampling.
    "mnist-euler8": _over_mnist(
        "mnist-euler8",
        "base lfr lfr_reflow latents latent_map bias_plane classifier classifier2 reference examples "
        "inception_reference",
        {
            "description": "discretization: the mnist base sampled with 8 Euler steps; its latents inverted "
            "accurately (RK4, 20 NFE)",
            "base_sampling": {"solver": "euler", "nfe": 8},
            "dfr_clip": True,
        },
        (DFR, OVERSHOOT),
        refiner_steps=2000,
        pool=8192,
        net=MNIST_NET,
        dfr_args=MNIST_DFR,
    ),
    # Model error, as mnist, with refiners chosen on held-out training images from GPU runs
    # (bench/results/capacity_mnist_gpu.md, select_lfr_reflow_mnist-wide.json): a 64-channel LFR and its
    # reflow from the LFR's weights; the DFR is mnist's. Sized for a GPU (~10 min on one H100; ~25 h here).
    "mnist-wide": _over_mnist(
        "mnist-wide",
        "base latents dfr classifier classifier2 reference examples inception_reference",
        {
            "description": "short training, as mnist, with wider refiners trained on a GPU: a 64-channel "
            "LFR, its 64-channel reflow, and mnist's 64-channel DFR",
            "dfr_clip": True,
        },
        (
            Stage(
                LFR.name,
                "train-lfr --bundle {out} --alpha 0.2 {wide} --steps {lfr_steps} --device {device} {resume}",
            ),
            Stage(
                REFLOW.name,
                "reflow-lfr --bundle {out} --teacher-nfe 16 --pairs {pairs} --steps {reflow_steps} "
                "--batch-size 128 --device {device} {resume}",
            ),
            *STORED_VIEWS,
            SWEEP,
            WORTH_NFE,
        ),
        wide="--channels 64 --batch-size 128",
        lfr_steps=16000,
        reflow_steps=16000,
        pairs=32768,
    ),
    # Over-refinement on MNIST: an α-conditioned LFR (α ∈ [0, 0.5], ~26 min here) mapped over α × LFR NFE.
    "mnist-alpha": _over_mnist(
        "mnist-alpha",
        "base latents dfr classifier classifier2 reference examples inception_reference",
        {
            "description": "the mnist base with an α-conditioned 16-channel LFR (α in [0, 0.5]): the α × NFE "
            "over-refinement map",
            "dfr_clip": True,
        },
        (
            Stage(
                LFR.name,
                "train-lfr --bundle {out} --alpha-max 0.5 --alpha 0.2 --steps {lfr_steps} {net} {resume}",
            ),
            LATENT_MAP,
            BIAS_PLANE,
            OVERSHOOT,
            ALPHA_MAP,
        ),
        lfr_steps=2000,
        net=MNIST_NET,
        eval_n=1000,
        map_extra="--points 400",
    ),
    # CIFAR-10 with the authors' settings: LFR at a fixed α = 0.5, path noise σ = 0; DFR sources get
    # N(0, 0.01²) noise with probability 0.3 and no blur. Sized for a GPU (a 64-channel UNet: weeks on this
    # 2-core CPU); --smoke runs every stage here in minutes.
    "cifar10": _image_recipe(
        "cifar10",
        "cifar10",
        settings=dict(
            base_steps=100000,
            refiner_steps=20000,
            reflow_steps=10000,
            invert_extra="--n 50000",
            pool=20000,
            classifier_steps=20000,
            net="--channels 64 --batch-size 128",
            reflow_extra="--batch-size 128",
            lfr_args="--alpha 0.5 --sigma 0",
            dfr_args=CIFAR_DFR + " --ot-batch 1024",
        ),
        smoke_settings=CIFAR_SMOKE,
    ),
    # CIFAR-10 sized for this 2-core CPU (~2 steps/s on one thread at 32 channels, batch 64; ~10 CPU-hours in
    # all, resumable stage by stage). The base is short, so its bias is large. The LFR is α-conditioned
    # (α ∈ [0, 0.5]) so that α is chosen afterwards on held-out training images; 0.2 is its default.
    "cifar10-cpu": _image_recipe(
        "cifar10-cpu",
        "cifar10",
        settings=dict(
            base_steps=20000,
            base_extra="--lr 5e-4 --save-every 200",
            refiner_steps=4000,
            reflow_steps=2000,
            pairs=8192,
            invert_extra="--n 10000",
            classifier_steps=6000,  # ~4 steps/s on one thread
            net="--channels 32 --batch-size 64",
            reflow_extra="--batch-size 64",
            lfr_args="--alpha-max 0.5 --alpha 0.2 --sigma 0",
            dfr_args=CIFAR_DFR + " --ot-batch 256",
            eval_n=1000,
            # every point of a sweep decodes its own samples through the base (20 NFE): ~160-200 network
            # evaluations a second on one thread here, so the sweep is 500 samples and the α map 200
            sweep_n=500,
            alpha_map_n=200,
            # the UMAP refines its prior draws at each of 110 slider settings (11 α × 10 NFE); the bias
            # plane only at the default α's 10
            map_extra="--points 300",
            keep_latents=2000,  # 12 MiB of float16; the map reads the first 300
        ),
        smoke_settings=CIFAR_SMOKE,
        views=(SWEEP, WORTH_NFE, ALPHA_MAP),  # the Over-refinement tab's charts, stored
        finish=(KEEP_LATENTS,),
        card={
            "description": "short training on a 2-core CPU (20,000 steps of a 32-channel UNet): model error "
            "on natural images",
            "dfr_clip": True,
        },
    ),
}
