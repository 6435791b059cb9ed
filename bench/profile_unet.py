"""Profile the 28x28 UNet velocity net on this CPU: training-step time and evaluation throughput.

    python -m bench.profile_unet

Writes bench/results/profile_unet.json (medians; batch 128 training, batch 500 evaluation).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.generative.nets import build_net, default_velocity_config


def main() -> None:
    rows = {}
    for channels in (16, 32):
        net = build_net(default_velocity_config((1, 28, 28), 10, channels=channels))
        opt = torch.optim.Adam(net.parameters())
        x, t, y = torch.randn(128, 1, 28, 28), torch.rand(128), torch.randint(0, 10, (128,))
        steps = []
        for _ in range(7):
            t0 = time.perf_counter()
            loss = (net(t, x, y) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps.append(time.perf_counter() - t0)
        with torch.no_grad():
            xb, tb, yb = torch.randn(500, 1, 28, 28), torch.rand(500), torch.randint(0, 10, (500,))
            net(tb, xb, yb)
            evals = []
            for _ in range(3):
                t0 = time.perf_counter()
                net(tb, xb, yb)
                evals.append(time.perf_counter() - t0)
        rows[f"channels_{channels}"] = {
            "parameters": sum(p.numel() for p in net.parameters()),
            "train_step_batch128_s": round(statistics.median(steps[1:]), 3),
            "eval_images_x_nfe_per_s": round(500 / statistics.median(evals)),
        }
    out = ROOT / "bench" / "results" / "profile_unet.json"
    out.write_text(
        json.dumps(
            {"command": "python -m bench.profile_unet", "threads": torch.get_num_threads(), **rows}, indent=1
        )
    )
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
