"""Fuzz every event of the app over both HTTP channels, as an untrusted LAN client would; record what held.

    python -m bench.fuzz [--seconds 600]

Launches the app in this process (``app.service.launch``, the code path of ``python app.py``) on a free
loopback port. For every event it starts from the widgets' own values and sends, on the queue channel
(``/gradio_api/queue/join``) and, for events with an API name, on the call channel
(``/gradio_api/call/NAME``): each item replaced in turn by a null, a boolean, a list, an object, a
2,000-character string, ±10¹², -1, a fraction, NaN, infinity, an empty string, a NUL, a path and a list and an
object nested 30 deep, and the data with too few, too many and a hundredfold items; then whole bodies that are
no event's JSON (20,000-deep lists and objects, broken JSON, bytes that are not UTF-8, a bare number).
For every call the guard let through, the answer stream is read too. Counted: HTTP statuses, 500s,
answers carrying internal text (a traceback, a source line, a server path, or an error over 300 characters),
and tracebacks written to stderr. Writes bench/results/fuzz.json and fuzz.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.error import HTTPError, URLError

from app import service
from app.ui import build_demo
from bench.attack import free_port

ROOT = Path(__file__).resolve().parent.parent
SERVER_PATHS = (str(ROOT), tempfile.gettempdir() + "/", sys.prefix, str(Path.home()))
INTERNAL = ("Traceback", 'File "', *SERVER_PATHS)
NESTED = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
DEEP_OBJECT = {"v": None}
for _ in range(30):
    DEEP_OBJECT = {"v": DEEP_OBJECT}
REPLACEMENTS = [None, True, [1], {"v": 1}, "x" * 2000, 10**12, -(10**12), 0.5, "\u0000", NESTED]
REPLACEMENTS += [-1, "", float("nan"), float("inf"), "../../../etc/passwd", DEEP_OBJECT]
# whole bodies that are not an event's JSON object: 20,000-deep lists and objects, broken JSON, bytes that are
# not UTF-8, a bare scalar
RAW_BODIES = {
    "list 20,000 deep": b"[" * 20_000 + b"]" * 20_000,
    "object 20,000 deep": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "unclosed JSON": b'{"data": [1, 2',
    "not UTF-8": b'{"data": ["\xff\xfe"]}',
    "bare number": b"7",
}


def post(url: str, body: dict | bytes) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except URLError as e:
        return 0, str(e)


def stream(url: str) -> str:
    """The answer stream of an accepted call (its ``data`` or ``error`` events), cut at 30 s."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read(200_000).decode("utf-8", "replace")
    except (HTTPError, URLError, TimeoutError) as e:
        return f"(stream: {e})"


def cases(base: list) -> list[tuple[str, list]]:
    """(name, data) of every malformed variant of one event's valid ``base`` data."""
    out = [("no items", []), ("one too few", base[:-1]), ("one too many", [*base, 0]), ("x100", base * 100)]
    for i in range(len(base)):
        for r in REPLACEMENTS:
            out.append((f"item {i} = {json.dumps(r)[:20]}", [*base[:i], r, *base[i + 1 :]]))
    return out


def internal(text: str) -> bool:
    """Whether an answer carries what a client must not read: a traceback, a source line, a server path, or
    an error message over 300 characters (a refusal's JSON ``error``, or an ``error`` event of a stream)."""
    if any(marker in text for marker in INTERNAL):
        return True
    messages = []
    for line in text.splitlines():
        body = line.removeprefix("data: ").strip()
        if body.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                payload = json.loads(body)
                messages.append(payload.get("error") if isinstance(payload, dict) else None)
    return any(isinstance(m, str) and len(m) > 300 for m in messages)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600, help="stop sending after this long")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    demo, port = build_demo(), free_port()
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        service.launch(demo, "127.0.0.1", port, block=False)
        url = f"http://127.0.0.1:{port}/"
        statuses, leaks, accepted = Counter(), [], Counter()

        def send(channel: str, target: str, body: dict | bytes, event, case: str) -> None:
            """One request; its status counted, a call's answer stream read, any 500 or internal text kept."""
            if isinstance(body, dict):
                body = {**body, "session_hash": f"fuzz{statuses.total()}"}
            status, text = post(target, body)
            statuses[f"{channel} {status}"] += 1
            if status == 200:
                accepted[channel] += 1
                if channel == "call" and '"event_id"' in text:
                    text += stream(f"{target}/{json.loads(text)['event_id']}")
            if status >= 500 or internal(text):
                served = "event: complete" in text and tempfile.gettempdir() in text
                leak = {"event": event, "case": case, "channel": channel, "status": status}
                leaks.append(leak | {"served_file_path": served, "answer": text[:300]})

        t0 = time.perf_counter()
        for i, fn in demo.fns.items():
            base = [getattr(c, "value", None) for c in fn.inputs]
            api = fn.api_name if isinstance(fn.api_name, str) else None
            for name, data in cases(base):
                if time.perf_counter() - t0 > args.seconds:
                    break
                send(
                    "join",
                    url + "gradio_api/queue/join",
                    {"data": data, "fn_index": int(i)},
                    api or int(i),
                    name,
                )
                if api:
                    send("call", url + f"gradio_api/call/{api}", {"data": data}, api, name)
        for name, body in RAW_BODIES.items():
            send("join", url + "gradio_api/queue/join", body, "any", name)
            send("call", url + "gradio_api/call/refine", body, "refine", name)
        sent = statuses.total()
        wall = time.perf_counter() - t0
        time.sleep(2)
        demo.close()
    err = captured.getvalue()
    tracebacks = err.count("Traceback")
    last_lines = [
        block.strip().splitlines()[-1][:200] for block in err.split("Traceback")[1:] if block.strip()
    ]
    result = {
        "command": "python -m bench.fuzz " + " ".join(sys.argv[1:] if argv is None else argv),
        "requests": sent,
        "wall_s": round(wall, 1),
        "statuses": dict(statuses),
        "accepted_by_the_guard": dict(accepted),
        "http_500": sum(v for k, v in statuses.items() if k.endswith(" 500")),
        "answers_with_internal_text": len(leaks),
        "examples": leaks[:20],
        "tracebacks_on_stderr": tracebacks,
        "traceback_endings": sorted(set(last_lines)),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "fuzz.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [
        f"Command: `{result['command']}` (in-process app on loopback; {sent} requests in "
        f"{result['wall_s']} s)",
        "",
        "| what | count |",
        "|---|---|",
        *(f"| HTTP {k} | {v} |" for k, v in sorted(statuses.items())),
        f"| accepted by the guard (valid values; call answers read too) | {dict(accepted)} |",
        f"| HTTP 500 | {result['http_500']} |",
        f"| answers with internal text (traceback, source, server path, error > 300 chars) | {len(leaks)} |",
        f"| tracebacks written to stderr | {tracebacks} |",
        f"| of those: a completed answer naming a served file's path (Gradio's answer format) | "
        f"{sum(e['served_file_path'] for e in leaks)} |",
    ]
    (args.out_dir / "fuzz.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
