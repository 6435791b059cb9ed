"""Put back bias-zoo rows dropped only because commit f00c2c4 changed how zoo.py fingerprints a run.

    python scripts/restore_zoo_rows.py   # run once, after the zoo runs that recomputed the base rows

f00c2c4 added the bundle card to the fingerprint that decides whether kept rows are still valid, so the
next `bench/zoo.py` run of each bundle started its runs afresh and kept only the rows it was asked for.
A row of the old file is merged into the recomputed run of the same key only when the two runs' base rows
have the same FID, FID2, KID and KID2 (to 1e-9): same model files, same prior draws — the old rows stand.
Each restored row is named in the run's "restored_rows" and in the commands listed under its table.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # zoo.py is a script, not a package module

import zoo  # noqa: E402

OLD = "f00c2c4"


def main() -> None:
    path = ROOT / "bench" / "results" / "zoo.json"
    current = json.loads(path.read_text())
    shown = subprocess.run(
        ["git", "show", f"{OLD}:bench/results/zoo.json"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    old = json.loads(shown.stdout)
    for key, run in old["runs"].items():
        now = current["runs"].get(key)
        if now is None:
            continue
        same = all(
            abs(run["rows"]["base"][m] - now["rows"]["base"][m]) < 1e-9
            for m in ("fid", "fid2", "kid", "kid2")
        )
        added = [r for r in run["rows"] if r not in now["rows"]]
        print(key, "base identical" if same else "base differs: nothing restored", "restoring", added)
        if same and added:
            now["rows"].update({r: run["rows"][r] for r in added})
            note = (
                f"rows {', '.join(added)} kept from earlier runs (bench/results/zoo.json at {OLD}, "
                f"last command there: {old.get('command', '?')})"
            )
            now["commands"] = list(dict.fromkeys(now.get("commands", []) + [note]))
            now.setdefault("restored_rows", {}).update(
                {r: f"computed before {OLD}; same base metrics" for r in added}
            )
    path.write_text(json.dumps(current, indent=1))
    zoo.write_markdown(current, ROOT / "bench" / "results" / "zoo.md")


if __name__ == "__main__":
    main()
