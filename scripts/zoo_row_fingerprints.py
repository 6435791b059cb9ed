"""Give every kept bias-zoo row the fingerprint of the files it uses, from the run-wide one it had.

    python scripts/zoo_row_fingerprints.py REV   # once, with REV the commit the kept runs were made at

Until this change, `bench/zoo.py` kept one fingerprint per run (the card and every model file), so
retraining one refiner threw away every row of the bundle. Now each row carries the fingerprint of
the card (less its description) and of the files *it* uses (base, its refiners, the extractors). A
run is migrated only when its run-wide fingerprint, recomputed from REV's checkout of the bundle
(files not tracked at REV: as they are now), equals the stored one; its rows then get their own
fingerprints from the same files, so a later zoo run recomputes exactly the rows whose files changed.
"""

import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # zoo.py is a script, not a package module

import zoo  # noqa: E402
from bfr_core.pipeline import Bundle  # noqa: E402


def run_wide(bundle, overrides) -> str:
    """The fingerprint zoo.py kept per run until this change (the whole card, every model file)."""
    h = hashlib.sha256(json.dumps(bundle.card, sort_keys=True).encode())
    for name in zoo.MODELS:
        f = overrides.get(name) or bundle.file(name)
        if f is not None:
            h.update(name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def variants_of(run: dict, suffix: str) -> list[str]:
    """The ``--variant ROLE=FILE`` arguments of the command that made a run (its key keeps a short form:
    without a command, the short form plus ``.safetensors``, right for a file at most one folder deep)."""
    for command in run.get("commands", []):
        words = shlex.split(command)
        found = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--variant"]
        if zoo.variant_suffix(found) == suffix:
            return found
    return [v.rstrip("]") + ".safetensors" for v in suffix.split("[") if v]


def rels(variants: list[str]) -> list[str]:
    return [v.partition("=")[2] for v in variants]


def main(rev: str) -> None:
    path = ROOT / "bench" / "results" / "zoo.json"
    kept = json.loads(path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "worktree", "add", "-q", "--detach", tmp, rev], cwd=ROOT, check=True)
        try:
            for key, run in kept["runs"].items():
                if "fingerprint" not in run:
                    continue
                name = key.rsplit("/", 2)[0]  # BUNDLE[ROLE=DIR/FILE]/nN/seedS
                bundle_name = name.partition("[")[0]
                where = Path(tmp) / "checkpoints" / bundle_name
                variants = variants_of(run, name.removeprefix(bundle_name))
                here = ROOT / "checkpoints" / bundle_name
                if not all((where / r).is_file() or (here / r).is_file() for r in rels(variants)):
                    print(f"{key}: its variant files are not found; left as it is")
                    continue
                for rel in rels(variants):  # a variant file not tracked at REV: the one here now
                    if not (where / rel).is_file():
                        (where / rel).parent.mkdir(parents=True, exist_ok=True)
                        (where / rel).write_bytes((here / rel).read_bytes())
                bundle, overrides, _ = zoo.with_variants(Bundle(where), variants)
                if run_wide(bundle, overrides) != run["fingerprint"]:
                    print(f"{key}: its files changed before {rev}; left as it is (recomputed when run)")
                    continue
                known = [r for r in run["rows"] if r in zoo.ROWS or r == "reference-train"]
                fps = zoo.row_fingerprints(bundle, overrides, known)
                run["rows"] = {r: {**v, "fingerprint": fps.get(r)} for r, v in run["rows"].items()}
                del run["fingerprint"]
                print(f"{key}: {len(fps)} rows")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tmp], cwd=ROOT, check=True)
    path.write_text(json.dumps(kept, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
