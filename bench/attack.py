"""Attack the app as a LAN client would, on loopback only, with bounded loops; record what held.

    python -m bench.attack [--flood 60]

Launches the app in this process through ``app.service.launch`` (the code path of ``python app.py``)
on a free loopback port, then: floods the direct REST route; floods the queue across visible and
hidden events and reads the peak of callbacks running at once; calls the bias lab from 8 threads
and compares with a single call; streams a 300 MB upload; sends malformed values (fraction and
boolean seeds, wrong arity, null, a 1 MB string) and scans every answer for absolute paths.
Writes bench/results/attack.json and attack.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import tempfile
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.error import HTTPError

ROOT = Path(__file__).resolve().parent.parent

from app import policy, service
from app.tabs import refine
from app.ui import build_demo

REFINE = ["mnist", 0, 64, "any", "rk4", 20, "lfr+dfr", "ode", 4, 0.2, 4, "dfr"]
SERVER_PATHS = (str(ROOT), tempfile.gettempdir() + "/", sys.prefix, str(Path.home()))  # what must never leak


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body, headers=None) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except HTTPError as e:
        return e.code, e.read().decode()


def rest_flood(url: str, n: int) -> dict:
    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(lambda _: post(url + "gradio_api/run/refine", {"data": REFINE})[0], range(n)))
    return {"requests": n, "refused_404": codes.count(404), "other": [c for c in codes if c != 404]}


def raw_job(url: str, fn_index: int, data: list, session: str) -> bool:
    """Join the queue as the browser does (any event, hidden ones too); read the event stream to its end."""
    status, _ = post(
        url + "gradio_api/queue/join", {"data": data, "fn_index": fn_index, "session_hash": session}
    )
    if status != 200:
        return False
    with urllib.request.urlopen(url + f"gradio_api/queue/data?session_hash={session}", timeout=600) as stream:
        for line in stream:
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return bool(msg.get("success"))
    return False


def queue_flood(url: str, n: int, fns: list[tuple[int, list]]) -> dict:
    """n jobs through the queue, cycling over the given (fn_index, data) events (hidden ones included)."""
    policy.COMPUTING.peak = 0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        ok = list(pool.map(lambda i: raw_job(url, *fns[i % len(fns)], f"flood{i}"), range(n)))
    return {
        "jobs": n,
        "events": [f for f, _ in fns],
        "completed": sum(ok),
        "refused_or_failed": n - sum(ok),
        "peak_concurrent": policy.COMPUTING.peak,
        "limit": service.CONCURRENCY,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def bias_lab_threads(url: str) -> dict:
    from gradio_client import Client

    def run(_):
        return json.dumps(
            Client(url, verbose=False).predict("moons", 60, 250, "", api_name="/bias_lab"),
            sort_keys=True,
            default=str,
        )

    alone = run(None)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    return {"threads": 8, "identical_to_single_user": sum(r == alone for r in results)}


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def big_upload(host: str, port: int, megabytes: int = 300) -> dict:
    store = Path(os.environ["GRADIO_TEMP_DIR"])  # where Gradio would keep an upload (set by app.service)
    before = disk_bytes(store)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    t0 = time.perf_counter()
    conn.putrequest("POST", "/gradio_api/upload")
    conn.putheader("content-type", "multipart/form-data; boundary=x")
    conn.putheader("content-length", str(megabytes * 2**20))
    conn.endheaders()
    sent = 0
    try:
        chunk = b"\0" * 2**20
        for _ in range(megabytes):
            conn.send(chunk)
            sent += 1
    except OSError:
        pass  # the server answered and closed: the rest is never read
    status = conn.getresponse().status
    return {
        "megabytes_offered": megabytes,
        "megabytes_sent_before_refusal": sent,
        "status": status,
        "bytes_stored": disk_bytes(store) - before,
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def foreign_origin_and_schema(url: str) -> dict:
    """A POST from the same host on another port (another site to a browser) and the API schema page."""
    status, _ = post(
        url + "gradio_api/queue/join",
        {"data": REFINE, "fn_index": 0, "session_hash": "origin"},
        headers={"Origin": "http://127.0.0.1:9999"},
    )
    try:
        schema = urllib.request.urlopen(url + "openapi.json", timeout=30).status
    except HTTPError as e:
        schema = e.code
    return {"other_port_origin_status": status, "openapi_status": schema}


def bad_inputs(url: str) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False)
    answers = {}
    cases = {
        "seed 0.6": [REFINE[0], 0.6, *REFINE[2:]],
        "bundle path": ["/etc/passwd", *REFINE[1:]],
        "huge mode": [*REFINE[:6], "x" * 2**20, *REFINE[7:]],
    }
    for name, data in cases.items():
        try:
            client.predict(*data, api_name="/refine")
            answers[name] = "accepted"
        except Exception as e:  # noqa: BLE001 - the message the client sees
            answers[name] = str(e)[:400]
    join = url + "gradio_api/queue/join"
    for name, data in {
        "seed true": [REFINE[0], True, *REFINE[2:]],
        "one item too many": REFINE + [1],
        "1,008 items": REFINE * 84,
        "null solver": [*REFINE[:4], None, *REFINE[5:]],
    }.items():
        status, text = post(join, {"data": data, "fn_index": 0, "session_hash": "attack"})
        answers[name] = f"HTTP {status}: {text[:200]}"
    leaks = [k for k, v in answers.items() if any(p in v for p in SERVER_PATHS)]
    return {"answers": answers, "answers_with_absolute_paths": leaks}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flood", type=int, default=60)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    demo, port = build_demo(), free_port()
    service.launch(demo, "127.0.0.1", port, block=False)
    url = f"http://127.0.0.1:{port}/"
    events = [
        (i, REFINE if len(fn.inputs) == 12 else REFINE[:6])
        for i, fn in demo.fns.items()
        if fn.fn in (refine.refine, refine.generate)
    ]  # the buttons and the hidden slider events
    result = {
        "command": "python -m bench.attack " + " ".join(sys.argv[1:] if argv is None else argv),
        "rest_flood": rest_flood(url, args.flood),
        "queue_flood": queue_flood(url, 24, events),
        "bias_lab_8_threads": bias_lab_threads(url),
        "upload_300MB": big_upload("127.0.0.1", port),
        "bad_inputs": bad_inputs(url),
        "origin_and_schema": foreign_origin_and_schema(url),
    }
    demo.close()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "attack.json").write_text(json.dumps(result, indent=1) + "\n")
    q, r, u = result["queue_flood"], result["rest_flood"], result["upload_300MB"]
    md = [
        f"Command: `{result['command']}` (in-process app on loopback, the `python app.py` code path)",
        "",
        "| attack | result |",
        "|---|---|",
        f"| {r['requests']} concurrent POSTs to `/gradio_api/run/refine` | "
        f"{r['refused_404']} refused (404) |",
        f"| {q['jobs']} jobs at once through the queue over events {q['events']} (refine, generate, hidden "
        f"slider events; 64 MNIST samples each) | "
        f"peak {q['peak_concurrent']} computing at once (limit {q['limit']}); {q['completed']} completed, "
        f"{q['refused_or_failed']} refused |",
        f"| bias lab from 8 threads at once | {result['bias_lab_8_threads']['identical_to_single_user']}/8 "
        f"identical to a single user |",
        f"| {u['megabytes_offered']} MB upload | HTTP {u['status']}, {u['bytes_stored']} bytes stored "
        f"({u['megabytes_sent_before_refusal']} MB written to the socket before the refusal was read) |",
    ]
    o = result["origin_and_schema"]
    md.append(
        f"| POST with `Origin: http://127.0.0.1:9999` (same host, other port) | "
        f"HTTP {o['other_port_origin_status']} |"
    )
    md.append(f"| `GET /openapi.json` | HTTP {o['openapi_status']} |")
    for name, answer in result["bad_inputs"]["answers"].items():
        md.append(f"| {name} | {answer[:160].replace('|', '/').replace(chr(10), ' ')} |")
    md.append(
        f"| answers holding a server path (repository, temp dir, Python prefix, home) | "
        f"{len(result['bad_inputs']['answers_with_absolute_paths'])} |"
    )
    (args.out_dir / "attack.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
