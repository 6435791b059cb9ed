"""The app as a long-running service: chunked giant bodies on every route, a soak with a new session per
request sampling memory and disk, then SIGTERM and what is left on disk.

    python -m bench.soak [--minutes 30] [--rate 3.4] [--chunked-mb 300]

Runs ``python app.py`` as its own process (so its RSS is the server's alone), then:
1. **chunked bodies**: ``--chunked-mb`` MB sent with ``Transfer-Encoding: chunked`` (no Content-Length) to
   every route that takes a body; the status, the MB sent before the refusal and the server's RSS growth;
2. **soak**: ``--rate`` requests a second for ``--minutes`` over the API (Refine on digits and mnist with 200
   seeds, so new pictures keep being written; each request a new session id), RSS and the app's result
   folders sampled every 30 s; errors counted (any answer other than a completed event);
3. **SIGTERM**: the exit status, and whether the app's private folders are gone.
Writes ``bench/results/soak.{json,md}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.attack import disk_bytes, free_port

ROOT = Path(__file__).resolve().parent.parent
BODY_ROUTES = (
    "/gradio_api/queue/join",
    "/gradio_api/call/refine",
    "/gradio_api/call/v2/refine",
    "/login",
    "/gradio_api/upload",
    "/",
)
SAMPLE_EVERY_S = 30.0
# the soak's first minutes fill what the app keeps by design (256 sessions at 3.4 new ones a second: 75 s; the
# 64 cached Refine answers; each worker thread's first buffers): growth is judged after this
WARM_UP_MINUTES = 5.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def app_folders(before: set[Path]) -> list[Path]:
    return sorted(set(Path(tempfile.gettempdir()).glob("bfr-explorer-*")) - before)


def request(port: int, seed: int, session: str) -> bool:
    """One API call on a new session (Refine on digits, or mnist every fourth); True when it completed."""
    if seed % 4:
        name, data = "refine", ["digits", seed, 8, "any", "rk4", 20, "lfr+dfr", "ode", 4, 0.2, 4, "dfr"]
    else:
        name, data = "refine", ["mnist", seed, 8, "any", "rk4", 20, "dfr", "ode", 4, 0.2, 4, "dfr"]
    url = f"http://127.0.0.1:{port}/gradio_api/call/{name}"
    body = json.dumps({"data": data, "session_hash": session}).encode()
    try:
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        event = json.loads(urllib.request.urlopen(req, timeout=120).read())["event_id"]
        text = urllib.request.urlopen(f"{url}/{event}", timeout=300).read().decode()
    except (OSError, ValueError, KeyError):
        return False
    return "event: complete" in text


def chunked_body(port: int, route: str, megabytes: int, pid: int) -> dict:
    """POST ``megabytes`` of 1 MB chunks with Transfer-Encoding: chunked; the status and the RSS growth."""
    before = rss_mb(pid)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.putrequest("POST", route)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk, sent = b"[" + b" " * (2**20 - 1), 0
    t0 = time.perf_counter()
    try:
        for _ in range(megabytes):
            conn.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += 1
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered and closed: the rest is never read
    try:
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        status = f"closed ({type(e).__name__})"
    conn.close()
    time.sleep(0.5)
    return {
        "route": route,
        "status": status,
        "mb_sent_before_refusal": sent,
        "rss_growth_mb": round(rss_mb(pid) - before, 1),
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def soak(port: int, pid: int, folders: list[Path], minutes: float, rate: float) -> dict:
    """Start a request every 1/rate s (each on its own thread) for ``minutes``, sampling as it goes."""
    samples, counts, lock = [], {"sent": 0, "errors": 0}, threading.Lock()
    rng = random.Random(0)
    stop = time.monotonic() + minutes * 60

    def sample(t0):
        samples.append(
            {
                "minute": round((time.monotonic() - t0) / 60, 2),
                "rss_mb": round(rss_mb(pid), 1),
                "disk_mb": round(sum(disk_bytes(f) for f in folders) / 2**20, 2),
                "requests": counts["sent"],
                "errors": counts["errors"],
            }
        )

    t0 = time.monotonic()
    sample(t0)
    threads = []
    next_sample = t0 + SAMPLE_EVERY_S
    while time.monotonic() < stop:
        t = threading.Thread(target=worker_once, args=(port, rng, lock, counts))
        t.start()
        threads.append(t)
        threads = [t for t in threads if t.is_alive()]
        if time.monotonic() >= next_sample:
            sample(t0)
            next_sample += SAMPLE_EVERY_S
        time.sleep(1 / rate)
    for t in threads:
        t.join()
    sample(t0)
    return {"samples": samples, **counts}


def worker_once(port, rng, lock, counts):
    """One request on a new session, a seed of 200; an answer that is not a completed event is an error."""
    with lock:
        counts["sent"] += 1
        n = counts["sent"]
        seed = rng.randrange(200)
    if not request(port, seed, f"soak{n}"):
        with lock:
            counts["errors"] += 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=3.4, help="requests started per second")
    ap.add_argument("--chunked-mb", type=int, default=300)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    before = set(Path(tempfile.gettempdir()).glob("bfr-explorer-*"))
    port = free_port()
    log = open(args.out_dir / "soak_server.log", "w")
    # the app's own temp folders (importing app.service here set GRADIO_TEMP_DIR for this process only)
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    cmd = [sys.executable, "app.py", "--port", str(port)]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log, env=env)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        folders = app_folders(before)
        for seed in range(8):  # warm-up: every model loaded, the first answers computed
            request(port, seed, f"warm{seed}")
        time.sleep(5)
        warm_rss = rss_mb(server.pid)
        chunked = [chunked_body(port, route, args.chunked_mb, server.pid) for route in BODY_ROUTES]
        result = soak(port, server.pid, folders, args.minutes, args.rate)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            exit_status = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_status = "killed after 60 s"
        log.close()
    left = [str(f) for f in folders if f.exists()]
    rss = [s["rss_mb"] for s in result["samples"]]
    after_warm_up = [s["rss_mb"] for s in result["samples"] if s["minute"] >= WARM_UP_MINUTES] or rss[-1:]
    summary = {
        "command": "python -m bench.soak " + " ".join(sys.argv[1:] if argv is None else argv),
        "rss_after_warm_up_mb": round(warm_rss, 1),
        "chunked_bodies": chunked,
        "soak_requests": result["sent"],
        "soak_errors": result["errors"],
        "rate_per_s": round(result["sent"] / (args.minutes * 60), 2),
        "rss_first_last_max_mb": [rss[0], rss[-1], max(rss)],
        "rss_growth_over_soak_mb": round(rss[-1] - rss[0], 1),
        "warm_up_minutes": WARM_UP_MINUTES,
        "rss_growth_after_warm_up_mb": round(rss[-1] - after_warm_up[0], 1),
        "rss_max_minus_warm_up_mb": round(max(after_warm_up) - after_warm_up[0], 1),
        "disk_max_mb": max(s["disk_mb"] for s in result["samples"]),
        "sigterm_exit_status": exit_status,
        "app_folders": [f.name for f in folders],
        "app_folders_left_after_sigterm": left,
        "samples": result["samples"],
    }
    (args.out_dir / "soak.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out_dir / "soak.md").write_text(markdown(summary))
    print(markdown(summary))
    return 0


def markdown(s: dict) -> str:
    lines = [
        f"Command: `{s['command']}` (the app as its own process, `python app.py`)",
        "",
        "| chunked body route | status | MB sent before the refusal | server RSS growth (MB) |",
        "|---|---|---|---|",
        *(
            f"| `{c['route']}` | {c['status']} | {c['mb_sent_before_refusal']} | {c['rss_growth_mb']} |"
            for c in s["chunked_bodies"]
        ),
        "",
        "| soak | value |",
        "|---|---|",
        f"| requests (each a new session id) | {s['soak_requests']} ({s['rate_per_s']}/s) |",
        f"| errors | {s['soak_errors']} |",
        f"| RSS after warm-up, first / last / max sample (MB) | {s['rss_after_warm_up_mb']}, "
        + " / ".join(map(str, s["rss_first_last_max_mb"]))
        + " |",
        f"| RSS growth over the soak (MB) | {s['rss_growth_over_soak_mb']} |",
        f"| RSS growth after the first {s['warm_up_minutes']:g} minutes (sessions and caches filled): "
        f"last / max (MB) | {s['rss_growth_after_warm_up_mb']} / {s['rss_max_minus_warm_up_mb']} |",
        f"| result folders on disk, max (MB) | {s['disk_max_mb']} |",
        f"| SIGTERM: exit status; app folders left | {s['sigterm_exit_status']}; "
        f"{len(s['app_folders_left_after_sigterm'])} of {len(s['app_folders'])} |",
        "",
        "| minute | RSS (MB) | result folders (MB) | requests | errors |",
        "|---|---|---|---|---|",
        *(
            f"| {x['minute']} | {x['rss_mb']} | {x['disk_mb']} | {x['requests']} | {x['errors']} |"
            for x in s["samples"]
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
