"""App performance and load test against a real `python app.py` process on loopback.

    python -m bench.app_perf [--users 8] [--requests 25]

Measures: start → ready (HTTP 200); every view's first answer on the default MNIST bundle from
that fresh process (started as a user starts it: `python app.py`, with its background warm-up of the
default Latents map and bias-lab run), and its next answer (a second setting: what scrubbing a slider
costs); the digits Latents view; then, on a second process started with ``--no-answer-cache`` (every
Refine request samples: the app otherwise keeps its last answers), a Refine click (16 digits samples,
default settings) and a load test — ``users`` concurrent gradio_client users × ``requests`` Refine
calls each, every result compared with the single-user result for the same seed and settings.
Writes bench/results/app_perf.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = ["digits", 0, 16, "any", "rk4", 20, "lfr+dfr", "ode", 4, 0.2, 4, "dfr"]
VIEWS = [  # (view, api name, first call's inputs, next call's inputs) on the default bundle
    (
        "Refine, MNIST (16 samples, LFR → DFR)",
        "/refine",
        ["mnist", *DEFAULTS[1:]],
        ["mnist", 1, *DEFAULTS[2:]],
    ),
    (
        "Refine, mnist-wide (64-channel LFR → 64-channel DFR; not warmed)",
        "/refine",
        ["mnist-wide", *DEFAULTS[1:]],
        ["mnist-wide", 1, *DEFAULTS[2:]],
    ),
    (
        "Refine, CIFAR-10 (cifar10-cpu: 16 colour samples, LFR → DFR; not warmed)",
        "/refine",
        ["cifar10-cpu", *DEFAULTS[1:]],
        ["cifar10-cpu", 1, *DEFAULTS[2:]],
    ),
    (
        "Latents, MNIST (stored map of every slider setting; next: LFR NFE 2)",
        "/latents",
        ["mnist", 0.2, 4],
        ["mnist", 0.2, 2],
    ),
    (
        "Latents, mnist-alpha (α-conditioned LFR: α 0.35 with NFE 7, then α 0.5 with NFE 10; stored)",
        "/latents",
        ["mnist-alpha", 0.35, 7],
        ["mnist-alpha", 0.5, 10],
    ),
    (
        "Latents: a clicked ring's round trip, MNIST (#5, then #956)",
        "/inspect_latent",
        ["mnist", 5, 0.2, 4],
        ["mnist", 956, 0.2, 4],
    ),
    (
        "Latents: a clicked latent, moons (2-D; #3, then #10)",
        "/inspect_latent",
        ["moons", 3, 0.2, 4],
        ["moons", 10, 0.2, 4],
    ),
    (
        "Trajectories (solve, then scrub t)",
        "/trajectory",
        ["mnist", 0, 20, 4, 1.0],
        ["mnist", 0, 20, 4, 0.45],
    ),
    (
        "Inspect (round trip + bias meter)",
        "/inspect",
        ["mnist", 0, "rk4", 20, 0.2],
        ["mnist", 5, "rk4", 20, 0.2],
    ),
    (
        "Over-refinement (stored curves)",
        "/overrefine",
        ["mnist", 0.2, "precomputed"],
        ["mnist", 0.2, "precomputed"],
    ),
    ("Overshoot to t = 1.5 then 2, MNIST", "/overshoot", ["mnist", 0.2, 1.5], ["mnist", 0.2, 2.0]),
    ("Is refinement worth its NFE? (stored chart; next: digits)", "/worth_nfe", ["mnist"], ["digits"]),
    (
        "Worth its NFE: A/B on the same noise, MNIST (base +4 vs LFR, then base +16 vs DFR, seed 3)",
        "/ab_compare",
        ["mnist", "base +4", "lfr", 0],
        ["mnist", "base +16", "dfr", 3],
    ),
    (
        "Over-refinement map α × NFE (stored; mnist-alpha, then digits)",
        "/alpha_map",
        ["mnist-alpha"],
        ["digits"],
    ),
    (
        "Bias lab, defaults (moons, then 8gaussians)",
        "/bias_lab",
        ["moons", 60, 250, ""],
        ["8gaussians", 60, 250, ""],
    ),
]


def pixels(result) -> np.ndarray:
    path = result["path"] if isinstance(result, dict) else result
    return np.asarray(Image.open(path))


def percentile(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def start_app(port: int, *flags: str) -> tuple[subprocess.Popen, float]:
    """``python app.py --port PORT FLAGS`` as a user starts it; returns (process, seconds to HTTP 200)."""
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), *flags],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc, time.perf_counter() - t0
        except OSError:
            if time.perf_counter() - t0 > 120 or proc.poll() is not None:
                stop(proc)
                raise SystemExit("the app did not start") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--port", type=int, default=7911)
    args = ap.parse_args()
    from gradio_client import Client

    url = f"http://127.0.0.1:{args.port}/"
    proc, start_s = start_app(args.port)
    try:
        client = Client(url, verbose=False)
        views = {}
        for view, api, first, then in VIEWS:  # in a fresh process: each view's first answer
            timings = []
            for inputs in (first, then):
                t = time.perf_counter()
                client.predict(*inputs, api_name=api)
                timings.append(round(time.perf_counter() - t, 2))
            views[view] = {"first_s": timings[0], "next_s": timings[1]}
            print(view, timings, flush=True)

        def refine(seed, bundle=DEFAULTS[0]):
            t = time.perf_counter()
            out = client.predict(*([bundle, seed] + DEFAULTS[2:]), api_name="/refine")
            return time.perf_counter() - t, pixels(out[1])

        t = time.perf_counter()  # ▶ play streams the scrubber's frames: the first frame, then t = 1
        job = client.submit("mnist", 0, 20, 4, api_name="/play")
        next(iter(job))
        play_first_frame = time.perf_counter() - t
        job.result()
        play_done = time.perf_counter() - t
        t = time.perf_counter()  # the bias lab streams its loss curves: the first update, then the end
        job = client.submit("checkerboard", 60, 250, "", api_name="/bias_lab")
        next(iter(job))
        lab_first_update = time.perf_counter() - t
        job.result()
        lab_done = time.perf_counter() - t
        clicks = []  # a clicked ring on the MNIST map once the start-up warm-up is over (these rows run late)
        for ring in (11, 222, 333, 444, 555):
            t = time.perf_counter()
            client.predict("mnist", ring, 0.2, 4, api_name="/inspect_latent")
            clicks.append(time.perf_counter() - t)
        lab_scrubs = []  # the lab's time scrubber on the run just trained: each t a picture of kept paths
        for when in (0.0, 0.25, 0.45, 0.7, 0.95):
            t = time.perf_counter()
            client.predict("checkerboard", 60, 250, "", when, api_name="/lab_scrub")
            lab_scrubs.append(time.perf_counter() - t)
        t = time.perf_counter()
        job = client.submit("checkerboard", 60, 250, "", api_name="/lab_play")
        next(iter(job))
        lab_play_first = time.perf_counter() - t
        job.result()
        lab_play_done = time.perf_counter() - t
        t = time.perf_counter()
        client.predict("digits", 0.2, 4, api_name="/latents")
        first_latents = time.perf_counter() - t
        latents = []
        for alpha, nfe in ((0.0, 4), (0.1, 2), (0.3, 9), (0.4, 1), (0.5, 6)):  # on the sliders' grid
            t = time.perf_counter()
            client.predict("digits", alpha, nfe, api_name="/latents")
            latents.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.predict("digits", 0.33, 4, api_name="/latents")  # off the grid (a shared link): fitted live
        latents_live = time.perf_counter() - t
    finally:
        stop(proc)
    # The compute path: a server that keeps no Refine answers, so every request below samples.
    url = f"http://127.0.0.1:{args.port + 1}/"
    proc, _ = start_app(args.port + 1, "--no-answer-cache", "--no-warm-up")
    try:
        client = Client(url, verbose=False)
        refine(0)  # the first call loads the bundle
        single = [refine(0)[0] for _ in range(10)]
        refine(0, "cifar10-cpu")  # the target: 16 CIFAR-10 samples, LFR → DFR, in ≤ 2 s
        single_cifar = [refine(0, "cifar10-cpu")[0] for _ in range(10)]

        seeds = list(range(5))
        expected = {s: refine(s)[1] for s in seeds}

        def user(u):
            c = Client(url, verbose=False)
            out = []
            for r in range(args.requests):
                seed = seeds[(u + r) % len(seeds)]
                t = time.perf_counter()
                try:
                    res = c.predict(*([DEFAULTS[0], seed] + DEFAULTS[2:]), api_name="/refine")
                    out.append(
                        (time.perf_counter() - t, bool(np.array_equal(pixels(res[1]), expected[seed])), None)
                    )
                except Exception as e:  # noqa: BLE001 - counted as a failure
                    out.append((time.perf_counter() - t, False, repr(e)[:200]))
            return out

        t = time.perf_counter()
        with ThreadPoolExecutor(args.users) as pool:
            results = [r for rs in pool.map(user, range(args.users)) for r in rs]
        load_wall = time.perf_counter() - t
    finally:
        stop(proc)
    lat = [r[0] for r in results]
    report = {
        "command": "python -m bench.app_perf " + " ".join(sys.argv[1:]),
        "machine": "the project's 2-core CPU machine",
        "start_to_ready_s": round(start_s, 2),
        "views_mnist": views,
        "refine_16_digits_median_s": round(statistics.median(single), 3),
        "refine_16_cifar10_median_s": round(statistics.median(single_cifar), 3),
        "play_mnist_first_frame_s": round(play_first_frame, 2),
        "play_mnist_all_21_frames_s": round(play_done, 2),
        "bias_lab_checkerboard_first_update_s": round(lab_first_update, 2),
        "bias_lab_checkerboard_done_s": round(lab_done, 2),
        "clicked_ring_median_s": round(statistics.median(clicks), 3),
        "lab_scrub_median_s": round(statistics.median(lab_scrubs), 3),
        "lab_play_first_frame_s": round(lab_play_first, 2),
        "lab_play_all_21_frames_s": round(lab_play_done, 2),
        "latents_first_fit_s": round(first_latents, 2),
        "latents_update_median_s": round(statistics.median(latents), 3),
        "latents_off_grid_live_fit_s": round(latents_live, 2),
        "load": {
            "users": args.users,
            "requests_per_user": args.requests,
            "total": len(results),
            "failed": sum(r[2] is not None for r in results),
            "identical_to_single_user": sum(r[1] for r in results),
            "p50_s": round(percentile(lat, 50), 3),
            "p95_s": round(percentile(lat, 95), 3),
            "wall_s": round(load_wall, 1),
            "throughput_req_per_s": round(len(results) / load_wall, 2),
            "errors": sorted({r[2] for r in results if r[2]})[:5],
        },
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "app_perf.json").write_text(json.dumps(report, indent=1))
    L = report["load"]
    md = (
        f"Command: `{report['command'].strip()}`\n\n| measure | value |\n|---|---|\n"
        f"| app start → ready | {report['start_to_ready_s']} s |\n"
        + "".join(
            f"| {view}: first answer after start / next setting | {v['first_s']} s / {v['next_s']} s |\n"
            for view, v in views.items()
        )
        + "| Refine, 16 digits samples, default settings, computed each time (median of 10) | "
        f"{report['refine_16_digits_median_s']} s |\n"
        "| Refine, 16 CIFAR-10 samples (cifar10-cpu), LFR → DFR, computed each time (median of 10) | "
        f"{report['refine_16_cifar10_median_s']} s |\n"
        f"| Trajectories ▶ play, MNIST (21 frames, 0.2 s apart): first frame / last frame | "
        f"{report['play_mnist_first_frame_s']} s / {report['play_mnist_all_21_frames_s']} s |\n"
        f"| Bias lab, checkerboard (not warmed): first streamed loss curves / every panel | "
        f"{report['bias_lab_checkerboard_first_update_s']} s / {report['bias_lab_checkerboard_done_s']} s |\n"
        f"| Latents: a clicked ring's round trip, MNIST, after the warm-up (median of 5 rings) | "
        f"{report['clicked_ring_median_s']} s |\n"
        f"| Bias lab scrubber, checkerboard run: move t (median of 5) | {report['lab_scrub_median_s']} s |\n"
        f"| Bias lab ▶ play the paths (21 frames, 0.2 s apart): first frame / last frame | "
        f"{report['lab_play_first_frame_s']} s / {report['lab_play_all_21_frames_s']} s |\n"
        f"| Latents, digits: first view (stored map) | {report['latents_first_fit_s']} s |\n"
        f"| Latents, digits: another α and NFE on the sliders' grid (stored map, median of 5) | "
        f"{report['latents_update_median_s']} s |\n"
        f"| Latents, digits: α = 0.33, off the grid (a live joint UMAP fit) | "
        f"{report['latents_off_grid_live_fit_s']} s |\n"
        f"| load: {L['users']} users × {L['requests_per_user']} Refine requests, each computed "
        f"(`app.py --no-answer-cache`) | {L['failed']} failed, "
        f"{L['identical_to_single_user']}/{L['total']} identical to the single-user result |\n"
        f"| load latency P50 / P95 | {L['p50_s']} s / {L['p95_s']} s ({L['throughput_req_per_s']} req/s) |\n"
    )
    (out / "app_perf.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
