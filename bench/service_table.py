"""The attack table of docs/SECURITY.md, made from the committed results of the three service probes.

    python -m bench.service_table [--check]

Reads ``bench/results/attack.json`` (``python -m bench.attack``: floods, concurrency, upload, origin, bad
values), ``fuzz.json`` (``python -m bench.fuzz``: every event on both channels, malformed items and bodies)
and ``soak.json`` (``python -m bench.soak``: chunked bodies, a 30-minute soak, SIGTERM) and writes the table
between the ``service-table`` markers of docs/SECURITY.md; ``--check`` exits 1 when the document differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "SECURITY.md"
START, END = "<!-- service-table:start -->", "<!-- service-table:end -->"


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def rows(attack: dict, fuzz: dict, soak: dict) -> list[tuple[str, str]]:
    """(probe, result) rows; every number read from the probes' JSON."""
    r, q, u, o = (
        attack["rest_flood"],
        attack["queue_flood"],
        attack["upload_300MB"],
        attack["origin_and_schema"],
    )
    per_channel = {k.split()[0]: 0 for k in fuzz["statuses"]}
    for key, count in fuzz["statuses"].items():
        per_channel[key.split()[0]] += count
    chunked = soak["chunked_bodies"]
    refused = sorted({str(c["status"]) for c in chunked})
    first, last, _ = soak["rss_first_last_max_mb"]
    return [
        (
            f"fuzz: {fuzz['requests']:,} malformed requests over every event "
            f"({', '.join(f'{n:,} {c}' for c, n in sorted(per_channel.items()))})",
            f"{fuzz['http_500']} HTTP 500, {fuzz['answers_with_internal_text']} answers with internal text, "
            f"{fuzz['tracebacks_on_stderr']} tracebacks in the log",
        ),
        (
            f"{chunked[0]['mb_sent_before_refusal']} MB chunked bodies (no Content-Length) on {len(chunked)} "
            f"routes, `/login` included",
            f"refused ({'/'.join(refused)}); server RSS growth at most "
            f"{max(c['rss_growth_mb'] for c in chunked)} MB",
        ),
        (
            f"soak: {soak['soak_requests']:,} Refine requests in {soak['samples'][-1]['minute']:g} minutes "
            f"({soak['rate_per_s']}/s), each a new session id",
            f"{soak['soak_errors']} errors; RSS {first} → {last} MB, growth after the first "
            f"{soak['warm_up_minutes']:g} minutes {soak['rss_growth_after_warm_up_mb']} MB (max "
            f"{soak['rss_max_minus_warm_up_mb']}); result folders at most {soak['disk_max_mb']} MB",
        ),
        (
            "SIGTERM after the soak",
            f"exit status {soak['sigterm_exit_status']}; {len(soak['app_folders_left_after_sigterm'])} of "
            f"{len(soak['app_folders'])} private folders left",
        ),
        (f"{r['requests']} concurrent POSTs to a direct REST route", f"{r['refused_404']} refused (404)"),
        (
            f"{q['jobs']} jobs at once through the queue (visible and hidden events)",
            f"peak {q['peak_concurrent']} computing (limit {q['limit']}); {q['completed']} completed",
        ),
        (
            "bias lab from 8 threads at once",
            f"{attack['bias_lab_8_threads']['identical_to_single_user']}/8 identical to a single user",
        ),
        (f"{u['megabytes_offered']} MB upload", f"HTTP {u['status']}, {u['bytes_stored']} bytes stored"),
        ("POST from the same host on another port", f"HTTP {o['other_port_origin_status']}"),
        ("`GET /openapi.json`", f"HTTP {o['openapi_status']}"),
        (
            "answers to bad values holding a server path",
            f"{len(attack['bad_inputs']['answers_with_absolute_paths'])} of "
            f"{len(attack['bad_inputs']['answers'])}",
        ),
    ]


def table() -> str:
    lines = [
        "| probe | result |",
        "|---|---|",
        *(f"| {a} | {b} |" for a, b in rows(load("attack"), load("fuzz"), load("soak"))),
    ]
    commands = ", ".join(f"`{load(n)['command'].strip()}`" for n in ("fuzz", "soak", "attack"))
    return "\n".join([*lines, "", f"Made by `python -m bench.service_table` from {commands}."])


def with_table(doc: str) -> str:
    """``doc`` with the text between the markers replaced by :func:`table`."""
    if START not in doc or END not in doc:
        raise ValueError(f"{DOC.name} has no {START} … {END} markers")
    head, rest = doc.split(START, 1)
    return f"{head}{START}\n{table()}\n{END}{rest.split(END, 1)[1]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/SECURITY.md's table is not current")
    args = ap.parse_args(argv)
    doc = DOC.read_text()
    new = with_table(doc)
    if args.check:
        if new != doc:
            print(f"{DOC} is out of date: run python -m bench.service_table", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
