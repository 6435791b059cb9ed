"""The app as a network service: one compute queue, a request guard, safe exposure.

- **One queue.** Every event runs in the concurrency group ``COMPUTE_ID`` with at most
  ``CONCURRENCY`` computations at once across *all* events (hidden ones included), at most
  ``QUEUE_SIZE`` waiting; the direct REST routes are closed (``queue(api_open=False)``).
- **The guard** (an ASGI middleware in front of Gradio) refuses, before any work:
  uploads (the app takes none), the monitoring pages, request bodies over ``MAX_BODY_BYTES``,
  a POST whose ``Origin`` is another site, a ``Host`` outside ``allowed_hosts`` (non-loopback
  binds), and a queue join whose ``data`` has the wrong number of items, a ``null``/boolean item, a
  choice outside a dropdown's or radio's options, or a number outside its slider (see :func:`event_rules`).
- **Exposure.** Telemetry is off; ``--auth USER:PASS`` (or a file of such lines) is required for
  a non-loopback ``--host`` or ``--share``.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from app.malloc_arenas import limit_malloc_arenas


def private_dir(prefix: str = "bfr-explorer-") -> Path:
    """A fresh directory only this user can read (mode 0700), removed when the process exits (``app.py``
    turns SIGTERM into an exit, so a stopped server leaves nothing behind either)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


limit_malloc_arenas()  # before any worker thread allocates: memory flat over a long run
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere
# Gradio copies every served file into its temp folder: this process's own, removed at exit, not a shared one
# (one given in GRADIO_TEMP_DIR is the user's: used as it is, never pruned or removed)
OWN_GRADIO_DIR = None if "GRADIO_TEMP_DIR" in os.environ else private_dir("bfr-explorer-gradio-")
if OWN_GRADIO_DIR is not None:
    os.environ["GRADIO_TEMP_DIR"] = str(OWN_GRADIO_DIR)

CONCURRENCY = 4  # computations at once, all events together; more only thrash a 2-core CPU
QUEUE_SIZE = 64  # waiting requests beyond this are refused instead of piling up
COMPUTE_ID = "compute"  # the one concurrency group every event belongs to
MAX_BODY_BYTES = 64 * 1024  # every legitimate request of this app is a few hundred bytes
LOOPBACK = ("127.0.0.1", "localhost", "::1")
BLOCKED_PREFIXES = ("/gradio_api/upload", "/upload", "/gradio_api/monitoring", "/monitoring")
CLOSED_PATHS = ("/openapi.json", "/docs", "/redoc")  # FastAPI's schema pages: nothing a visitor needs
QUEUE_JOIN = "/gradio_api/queue/join"
CALL_PREFIX = "/gradio_api/call/"  # POST /gradio_api/call/[v2/]NAME runs the event whose api_name is NAME
CLOSED_PREFIXES = ("/gradio_api/run/",)  # the direct REST routes (closed by queue(api_open=False))
LOGIN = "/login"
LOGIN_ATTEMPTS = 10  # POSTs to /login per client per LOGIN_WINDOW_S seconds
LOGIN_WINDOW_S = 60.0
MAX_JSON_DEPTH = 20  # the app's bodies are 3 levels deep; deeper JSON is refused unparsed
# Per-session memory: Gradio keeps each session's state; past this many sessions the least recently used one
# is dropped (~0.25 MB each measured: 1,000 sessions cost +255 MB). A class of 30, several tabs each, fits.
SESSIONS = 256
CACHE_CLEANING = (300, 1800)  # every 5 minutes Gradio deletes the result files it wrote over 30 minutes ago

log = logging.getLogger("bfr_explorer")

COMPUTE = {"concurrency_id": COMPUTE_ID, "concurrency_limit": CONCURRENCY}  # kwargs for every event


def input_rule(component) -> tuple:
    """What one input accepts: ("choice", values) for dropdowns and radios, ("range", lo, hi, whole) for
    sliders and bounded numbers (``whole``: only integers, for a widget of integer step from an integer
    minimum), ("text", max characters) for bounded text boxes, ("any",) otherwise."""
    choices = getattr(component, "choices", None)
    if choices:
        return ("choice", frozenset(value for _, value in choices))
    lo, hi = getattr(component, "minimum", None), getattr(component, "maximum", None)
    if lo is not None and hi is not None:
        step = getattr(component, "step", None) or 1
        return ("range", lo, hi, float(step).is_integer() and float(lo).is_integer())
    if getattr(component, "max_length", None):
        return ("text", component.max_length)
    return ("any",)


def event_rules(demo) -> dict:
    """(label, rule) of every input of every event, keyed by the ``fn_index`` a queue join names and by the
    ``api_name`` a ``/gradio_api/call/NAME`` names."""
    rules = {}
    for i, fn in demo.fns.items():
        if fn.fn is None:  # a browser-only event (e.g. the latent map's click hook): nothing to run here
            continue
        inputs = [(str(c.label or f"item {k}"), input_rule(c)) for k, c in enumerate(fn.inputs)]
        rules[int(i)] = inputs
        if isinstance(getattr(fn, "api_name", None), str):
            rules[fn.api_name] = inputs
    return rules


def json_depth_ok(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the brackets of a JSON text nest at most ``limit`` deep (checked before parsing: a deeply
    nested body would exhaust the parser's recursion)."""
    depth, in_string, escaped = 0, False, False
    for ch in body.decode("utf-8", "replace"):
        if in_string:
            escaped, in_string = (not escaped and ch == "\\"), in_string and (escaped or ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def number(x: float) -> str:
    """A bound as a visitor reads it: 2147483647, 0.5."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def check_item(i: int, label: str, value, rule: tuple) -> str | None:
    """Why data item ``i`` (the input ``label``) breaks its rule, or None; values echoed ≤ 40 characters."""
    shown = json.dumps(value)[:40]
    name = f"data item {i} ({label.split(' — ')[0].split(' (')[0]})"
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return f"{name} must be a number or a string, got {shown}"
    if rule[0] == "choice" and value not in rule[1]:
        return f"{name} must be one of {', '.join(sorted(map(str, rule[1])))}, got {shown}"
    if rule[0] == "range" and (not isinstance(value, (int, float)) or not rule[1] <= value <= rule[2]):
        return f"{name} must be a number in {number(rule[1])}..{number(rule[2])}, got {shown}"
    if rule[0] == "range" and rule[3] and value != int(value):
        return f"{name} must be an integer in {number(rule[1])}..{number(rule[2])}, got {shown}"
    if rule[0] == "text" and (not isinstance(value, str) or len(value) > rule[1]):
        return f"{name} must be text of at most {rule[1]:,} characters"
    return None


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """``USER:PASS``, or the path of a file with one ``USER:PASS`` per line, as Gradio's auth list."""
    if not value:
        return None
    lines = Path(value).read_text(encoding="utf-8").splitlines() if Path(value).is_file() else [value]
    pairs = []
    for line in (l.strip() for l in lines):
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth needs USER:PASS (or a file of USER:PASS lines)")
        pairs.append((user, password))
    if not pairs:
        raise ValueError("--auth file holds no USER:PASS line")
    return pairs


def host_of(value: str) -> str:
    """The host part of a ``Host`` header or an origin URL (no scheme, no port)."""
    value = value.split("://", 1)[-1].split("/", 1)[0]
    if value.startswith("["):  # [::1]:7860
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """ASGI middleware that refuses what this app never needs (see the module docstring)."""

    def __init__(
        self, app, allowed_hosts: tuple[str, ...] | None = None, rules: dict[int, list] | None = None
    ):
        self.app, self.allowed_hosts, self.rules = app, allowed_hosts, rules or {}
        self.logins: dict[str, list[float]] = {}  # client → times of its recent POSTs to /login

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        problem = self.refusal(scope, headers)
        if problem is None and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            # every body is read here, counted as it arrives (chunked or not), before the app sees it
            body, problem = await self.read_body(receive)
            if problem is None and scope["path"] == QUEUE_JOIN:
                problem = self.check_join(body)
            elif problem is None and scope["path"].startswith(CALL_PREFIX):
                problem = self.check_call(scope["path"], body)
            receive = replay(body)
        if problem is not None:
            status, text = problem
            log.warning("refused %s %s: %s", scope["method"], scope["path"][:80], text)
            return await respond(send, status, text)
        return await self.app(scope, receive, send)

    def refusal(self, scope, headers) -> tuple[int, str] | None:
        path, method = scope["path"], scope["method"]
        host = host_of(headers.get("host", ""))
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return 400, "unknown Host header"
        if path.startswith(BLOCKED_PREFIXES):
            return 403, "this app takes no uploads and has no public monitoring"
        if path in CLOSED_PATHS or path.startswith(CLOSED_PREFIXES):
            return 404, "no such route"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return 413, f"request body over {MAX_BODY_BYTES} bytes"
        origin = headers.get("origin")
        if (
            method not in ("GET", "HEAD", "OPTIONS")
            and origin is not None
            and not same_origin(origin, headers)
        ):
            return 403, "cross-origin request refused"
        if method == "POST" and path == LOGIN and not self.login_allowed(scope):
            return 429, f"too many login attempts: at most {LOGIN_ATTEMPTS} a minute"
        return None

    def login_allowed(self, scope) -> bool:
        """Count this client's POSTs to /login in the last LOGIN_WINDOW_S seconds (at most LOGIN_ATTEMPTS)."""
        now, client = time.monotonic(), (scope.get("client") or ("?",))[0]
        recent = [t for t in self.logins.get(client, []) if now - t < LOGIN_WINDOW_S]
        if len(self.logins) > 10_000:  # bounded: forget clients idle for a window
            self.logins = {c: ts for c, ts in self.logins.items() if ts and now - ts[-1] < LOGIN_WINDOW_S}
        self.logins[client] = recent + [now]
        return len(recent) < LOGIN_ATTEMPTS

    async def read_body(self, receive) -> tuple[bytes, tuple[int, str] | None]:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BODY_BYTES:
                return b"", (413, f"request body over {MAX_BODY_BYTES} bytes")
            if not message.get("more_body"):
                return b"".join(chunks), None

    def check_join(self, body: bytes) -> tuple[int, str] | None:
        payload, problem = parse_object(body)
        if problem:
            return problem
        fn = payload.get("fn_index")
        if isinstance(fn, bool) or not isinstance(fn, int) or fn not in self.rules:
            return 422, "unknown fn_index"
        return self.check_data(self.rules[fn], payload.get("data"))

    def check_call(self, path: str, body: bytes) -> tuple[int, str] | None:
        """A ``/gradio_api/call/[v2/]NAME`` POST: NAME must be an event's api_name, its data as for a join."""
        name = path[len(CALL_PREFIX) :].removeprefix("v2/")
        if "/" in name or name not in self.rules or isinstance(name, int):
            return 404, "no such endpoint"
        payload, problem = parse_object(body)
        return problem or self.check_data(self.rules[name], payload.get("data"))

    def check_data(self, rules: list, data) -> tuple[int, str] | None:
        if not isinstance(data, list) or len(data) != len(rules):
            return 422, f"this event takes exactly {len(rules)} data items"
        for i, (value, (label, rule)) in enumerate(zip(data, rules)):
            problem = check_item(i, label, value, rule)
            if problem:
                return 422, problem
        return None


def parse_object(body: bytes) -> tuple[dict, tuple[int, str] | None]:
    """(the JSON object of a body, None), or ({}, a refusal) for anything else, however malformed."""
    if not json_depth_ok(body):
        return {}, (422, "the request body nests too deep")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return {}, (422, "the request body is not JSON")
    if not isinstance(payload, dict):
        return {}, (422, "the request body must be a JSON object")
    return payload, None


def same_origin(origin: str, headers: dict) -> bool:
    """Whether an ``Origin`` names this very server: scheme-default ports filled in, host and port equal to
    the ``Host`` header's ("null" and other ports refused)."""
    if origin == "null" or "://" not in origin:
        return False
    scheme, rest = origin.split("://", 1)
    default = {"http": "80", "https": "443"}.get(scheme)

    def authority(value: str) -> tuple[str, str | None]:
        value = value.split("/", 1)[0]
        tail = value.rsplit("]", 1)[-1]  # after an IPv6 literal's brackets, if any
        port = tail.rsplit(":", 1)[1] if ":" in tail and tail.count(":") == 1 else None
        return host_of(value), port or default

    return authority(rest) == authority(headers.get("host", ""))


def replay(body: bytes):
    """A ``receive`` callable that hands the already-read body to the app."""
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def respond(send, status: int, text: str) -> None:
    """A JSON refusal; a 422 also carries ``detail`` in the form gradio_client prints to its user."""
    payload = {"error": text}
    if status == 422:
        payload["detail"] = [
            {"__type__": "validate", "is_valid": False, "parameter_name": "request", "message": text}
        ]
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def allowed_hosts_for(host: str, extra: list[str] | None) -> tuple[str, ...] | None:
    """Loopback binds accept any Host (DNS rebinding needs a non-loopback server to reach); others only
    the bind address, loopback names and ``extra``."""
    if host in LOOPBACK and not extra:
        return None
    return tuple({host, *LOOPBACK, *(extra or [])} - {"0.0.0.0", "::"})


def check_exposure(host: str, share: bool, credentials, public_demo: bool) -> None:
    """A server reachable beyond this machine needs a login, unless it is declared a public demo."""
    if (share or host not in LOOPBACK) and credentials is None and not public_demo:
        raise ValueError(
            "--host other than loopback, or --share, needs --auth USER:PASS (or a password file), "
            "or --public-demo for a deliberately public demo"
        )


def launch(
    demo,
    host: str,
    port: int,
    share: bool = False,
    auth: str | None = None,
    allowed_hosts: list[str] | None = None,
    block: bool = True,
    public_demo: bool = False,
):
    """Queue every event through one compute group and serve ``demo`` behind the guard.

    ``public_demo`` serves without a login and accepts any Host: a deliberately public demo behind a
    hosting proxy (Hugging Face Spaces). Every other guard (queue, sizes, origins, inputs) stays on.
    """
    from starlette.middleware import Middleware

    from app.served_paths import HideServedPaths

    credentials = parse_auth(auth)
    check_exposure(host, share, credentials, public_demo)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, api_open=False)
    demo.delete_cache = demo.delete_cache or CACHE_CLEANING
    hosts = None if public_demo else allowed_hosts_for(host, allowed_hosts)
    guard = Middleware(RequestGuard, allowed_hosts=hosts, rules=event_rules(demo))
    # the answers name served images by an alias, not by this folder's absolute path
    hide = Middleware(HideServedPaths, folder=os.path.realpath(os.environ["GRADIO_TEMP_DIR"]))
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=credentials,
        show_error=True,
        max_file_size=1,
        state_session_capacity=SESSIONS,
        enable_monitoring=False,
        mcp_server=False,
        quiet=not block,
        prevent_thread_lock=not block,
        app_kwargs={"middleware": [guard, hide]},
        **getattr(demo, "launch_options", {}),
    )
