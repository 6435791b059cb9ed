"""Pack a lease's new model files into tarballs that fit the device tool's return limits.

    python scripts/gpu_lease_pack.py OUT MARKER FOLDER [FOLDER ...]

For every run NAME in each FOLDER (``NAME.safetensors`` and its snapshots ``NAME_stepS.safetensors``),
keep the 4,000-step snapshot and the two latest files, then fill tarballs of at most 15 MB in
order of size. Only model files written after the file MARKER are taken. A file is stored under its
last two folders (``mnist/capacity/NAME.safetensors``): unpack the tarballs in ``checkpoints/``.
"""

import json
import re
import sys
import tarfile
from pathlib import Path

from safetensors import safe_open

LIMIT = 15_000_000


def steps_of(path: Path) -> int:
    with safe_open(str(path), "pt") as f:
        return int(json.loads(f.metadata()["bfr"])["steps"])


def chosen(folder: Path, since: float) -> list[Path]:
    runs: dict[str, list[Path]] = {}
    for path in folder.glob("*.safetensors"):
        if path.name.startswith("latents") or path.stat().st_mtime <= since:
            continue
        runs.setdefault(re.sub(r"_step\d+$", "", path.stem), []).append(path)
    keep = []
    for files in runs.values():
        files.sort(key=steps_of)
        keep += sorted(set(files[-2:]) | {f for f in files if steps_of(f) == 4000})
    return keep


def arcname(path: Path) -> str:
    return "/".join(path.parts[-3:])


def main(out: str, marker: str, *folders: str) -> None:
    since = Path(marker).stat().st_mtime
    picked = [f for folder in folders for f in chosen(Path(folder), since)]
    files = sorted(picked, key=lambda p: p.stat().st_size, reverse=True)
    bins: list[list[Path]] = []
    for f in files:  # first fit, largest first
        for b in bins:
            if sum(p.stat().st_size for p in b) + f.stat().st_size <= LIMIT:
                b.append(f)
                break
        else:
            bins.append([f])
    for i, b in enumerate(bins):
        with tarfile.open(Path(out) / f"models_{i}.tar", "w") as tar:
            for f in b:
                tar.add(f, arcname=arcname(f))
        print(f"models_{i}.tar:", ", ".join(f"{f.name} ({steps_of(f)} steps)" for f in b))


if __name__ == "__main__":
    main(*sys.argv[1:])
