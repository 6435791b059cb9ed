"""The app as a network service: one queue, the request guard, errors without internals, reproducibility."""

import json
import os
import stat
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError

import pytest
import torch

from app import pictures, policy, service
from bfr_core.infra.dataset import DataError
from bfr_core.views.lab import run_bias_lab
from bfr_core.generative.nets import build_net, default_velocity_config

REFINE = ["digits", 0, 4, "any", "rk4", 20, "lfr+dfr", "ode", 4, 0.2, 4, "dfr"]


def post(url, body, headers=None):
    """(status, parsed JSON body) of a POST; never raises on an HTTP error status."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except HTTPError as e:
        return e.code, json.loads(e.read())


def join(server, data, fn_index=0, headers=None):
    return post(
        server + "gradio_api/queue/join", {"data": data, "fn_index": fn_index, "session_hash": "t"}, headers
    )


def test_direct_rest_route_is_closed(server):
    status, body = post(server + "gradio_api/run/refine", {"data": REFINE})
    assert status == 404 and body["error"] == "no such route"  # refused before Gradio sees it


def test_queue_join_accepts_a_well_formed_same_origin_request(server):
    status, body = join(server, REFINE, headers={"origin": server.rstrip("/")})
    assert status == 200 and "event_id" in body


@pytest.mark.parametrize(
    "data,message",
    [
        (REFINE[:3], "exactly 12 data items"),
        (REFINE + [1], "exactly 12 data items"),
        ([None] + REFINE[1:], "data item 0 (bundle) must be a number or a string, got null"),
        (REFINE[:1] + [True] + REFINE[2:], "data item 1 (seed) must be a number or a string, got true"),
        (["/etc/passwd"] + REFINE[1:], "data item 0 (bundle) must be one of cifar10-cpu, digits, mnist"),
        (REFINE[:5] + [10**6] + REFINE[6:], "data item 5 (base NFE) must be a number in 4..40, got 1000000"),
    ],
)
def test_queue_join_refuses_wrong_arity_and_null_or_boolean_values(server, data, message):
    status, body = join(server, data)
    assert status == 422 and message in body["error"]


def test_upload_monitoring_cross_origin_and_big_bodies_are_refused(server):
    assert post(server + "gradio_api/upload", b"x" * 100)[0] == 403
    assert urllib.request.urlopen(server + "config").status == 200  # GETs still work
    with pytest.raises(HTTPError) as e:
        urllib.request.urlopen(server + "gradio_api/monitoring")
    assert e.value.code == 403
    assert join(server, REFINE, headers={"origin": "http://evil.example"}) == (
        403,
        {"error": "cross-origin request refused"},
    )
    assert join(server, REFINE, headers={"origin": "null"})[0] == 403
    status, body = post(server + "gradio_api/queue/join", b"[" * (service.MAX_BODY_BYTES + 1))
    assert status == 413 and "over" in body["error"]


def test_every_event_shares_one_compute_limit():
    from app.ui import build_demo

    fns = list(build_demo().fns.values())
    assert len(fns) >= 7  # the visible routes and the hidden slider / load events
    assert {(f.concurrency_id, f.concurrency_limit) for f in fns} == {
        (service.COMPUTE_ID, service.CONCURRENCY)
    }


def test_fractional_seed_is_refused_through_the_api(server):
    from gradio_client import Client

    with pytest.raises(Exception, match=r"\(seed\) must be an integer in 0..2147483647, got 0.6"):
        Client(server, verbose=False).predict("digits", 0.6, *REFINE[2:], api_name="/refine")


def test_public_messages_hold_no_paths_and_are_bounded():
    msg = policy.public_message(ValueError("bundle /home/alice/secret/checkpoints/x.safetensors: bad shape"))
    assert msg == "bundle x.safetensors: bad shape"
    assert "/" not in policy.public_message(DataError("mnist: not found in /srv/data; set BFR_DATA_DIR"))
    assert len(policy.public_message(ValueError("x" * 10**6))) == policy.MAX_MESSAGE


def test_a_bug_is_not_turned_into_a_user_message():
    @policy.user_errors
    def broken():
        raise TypeError("a programming error")

    with pytest.raises(TypeError):
        broken()


def test_result_images_live_in_a_private_directory():
    mode = stat.S_IMODE(os.stat(pictures.PNG_DIR).st_mode)
    assert mode == 0o700 and str(pictures.PNG_DIR) != "/tmp/bfr-explorer-png"


@pytest.mark.parametrize("value,pairs", [("ann:pw", [("ann", "pw")]), (None, None)])
def test_parse_auth(value, pairs):
    assert service.parse_auth(value) == pairs


def test_parse_auth_file_and_errors(tmp_path):
    f = tmp_path / "users"
    f.write_text("# users\nann:pw1\nbob:pw:2\n")
    assert service.parse_auth(str(f)) == [("ann", "pw1"), ("bob", "pw:2")]
    with pytest.raises(ValueError, match="USER:PASS"):
        service.parse_auth("nocolon")


def test_exposure_needs_auth_and_limits_hosts():
    with pytest.raises(ValueError, match="needs --auth"):
        service.launch(None, "0.0.0.0", 7860)
    with pytest.raises(ValueError, match="needs --auth"):
        service.launch(None, "127.0.0.1", 7860, share=True)
    service.check_exposure("0.0.0.0", False, None, public_demo=True)  # declared public: no login needed
    service.check_exposure("0.0.0.0", False, [("a", "b")], public_demo=False)


def test_on_hugging_face_spaces_the_app_serves_publicly_on_all_interfaces(monkeypatch):
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("app_main", ROOT / "app.py")
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    seen = {}
    monkeypatch.setattr(launcher.service, "launch", lambda demo, *a, **k: seen.update(args=a, kwargs=k))
    monkeypatch.setattr(launcher, "build_demo", lambda: None)
    # only the launch decision is tested here: no warm-up, and this test process keeps its signal handlers
    # and its background work (main's stop would end every later test's warm-up and bias lab)
    monkeypatch.setattr(launcher.warmup, "start", lambda: pytest.fail("warmed up with --no-warm-up"))
    monkeypatch.setattr(launcher.background, "stop", lambda timeout: [])
    monkeypatch.setattr(launcher.signal, "signal", lambda *a: None)
    monkeypatch.setenv("SPACE_ID", "someone/bfr-explorer")
    assert launcher.main(["--no-warm-up"]) == 0
    assert seen["args"][0] == "0.0.0.0" and seen["kwargs"]["public_demo"] is True
    monkeypatch.delenv("SPACE_ID")
    assert launcher.main(["--no-warm-up"]) == 0
    assert seen["args"][0] == "127.0.0.1" and seen["kwargs"]["public_demo"] is False
    assert service.allowed_hosts_for("127.0.0.1", None) is None
    assert set(service.allowed_hosts_for("0.0.0.0", ["demo.lan"])) == {
        "demo.lan",
        "127.0.0.1",
        "localhost",
        "::1",
    }
    assert [service.host_of(h) for h in ("localhost:7860", "http://a.b:1/x", "[::1]:7860", "evil")] == [
        "localhost",
        "a.b",
        "::1",
        "evil",
    ]


def test_network_initialisation_reads_no_global_state():
    cfg = default_velocity_config((1, 28, 28), 10, channels=8)
    a = build_net(cfg, torch.Generator().manual_seed(5)).state_dict()
    torch.rand(100)  # moving the global generator must not matter
    b = build_net(cfg, torch.Generator().manual_seed(5)).state_dict()
    c = build_net(cfg, torch.Generator().manual_seed(6)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_bias_lab_is_bit_reproducible_with_8_threads_at_once():
    def run(_):
        r = run_bias_lab("moons", 20, 20, n=200)
        return torch.cat([r.generated, r.lfr_points, r.dfr_points])

    alone = run(None)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    assert all(torch.equal(alone, r) for r in results)


def test_cli_training_is_bit_reproducible_with_8_threads_at_once(tmp_path):
    from bfr_core.infra.checkpoint import load_model
    from bfr_core.cli.main import main

    def train(i):
        out = tmp_path / f"run{i}"
        assert main(["--quiet", "train-base", "--dataset", "moons", "--out", str(out), "--steps", "15"]) == 0
        return load_model(out / "base.safetensors")[0].state_dict()

    alone = train("alone")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(train, range(8)))
    assert all(all(torch.equal(alone[k], r[k]) for k in alone) for r in results)


def fn_index_of(api_name: str) -> int:
    from app.ui import build_demo

    return next(int(i) for i, fn in build_demo().fns.items() if fn.api_name == api_name)


def chunked_post(server, path, size, chunk=1 << 20):
    """(status, body) of a POST whose ``size`` bytes arrive chunked, with no Content-Length."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(server)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    body = (b"x" * min(chunk, size - k) for k in range(0, size, chunk))
    try:
        conn.request(
            "POST", path, body=body, headers={"content-type": "application/json"}, encode_chunked=True
        )
        r = conn.getresponse()
        return r.status, r.read()
    except (BrokenPipeError, ConnectionResetError):  # the server stopped reading: refused before the end
        return 413, b""
    finally:
        conn.close()


def test_the_guard_answers_any_json_with_a_refusal_not_a_crash(server):
    """A list or object where a choice goes, and JSON nested 20,000 deep: refused with 422, never a 500."""
    status, body = join(server, [["mnist"], *REFINE[1:]])
    assert status == 422 and "data item 0 (bundle) must be a number or a string" in body["error"]
    assert join(server, [{"a": 1}, *REFINE[1:]])[0] == 422
    status, body = post(server + "gradio_api/queue/join", b"[" * 20_000)
    assert status == 422 and "nests too deep" in body["error"]


def test_every_route_that_runs_code_checks_its_items(server):
    """/gradio_api/call/NAME is guarded like a join (count, type, range, whole numbers); unknown names and
    FastAPI's schema pages are 404; fractional seeds and indices are refused on every view, not rounded."""
    call = server + "gradio_api/call/"
    assert post(call + "refine", {"data": REFINE[:3]}) == (
        422,
        post(call + "refine", {"data": REFINE[:3]})[1],
    )
    status, body = post(call + "refine", {"data": ["digits", "abc", *REFINE[2:]]})
    assert (
        status == 422 and body["error"] == 'data item 1 (seed) must be a number in 0..2147483647, got "abc"'
    )
    assert post(call + "refine", {"data": REFINE})[0] == 200
    assert post(call + "nope", {"data": []})[0] == 404 and post(call + "v2/nope", {"data": []})[0] == 404
    status, body = join(server, ["digits", 0.6, 20, 4, 1.0], fn_index=fn_index_of("trajectory"))
    assert status == 422 and "must be an integer in 0..2147483647, got 0.6" in body["error"]
    with pytest.raises(HTTPError) as e:
        urllib.request.urlopen(server + "openapi.json")
    assert e.value.code == 404


def test_bodies_are_counted_as_they_arrive_on_every_route(server):
    """A chunked body (no Content-Length) over the limit is refused on the call route and on /login."""
    for path in ("/gradio_api/call/refine", "/login"):
        status, _ = chunked_post(server, path, 8 * service.MAX_BODY_BYTES)
        assert status == 413, path


def test_the_origin_check_reads_the_port_and_login_attempts_are_limited(server):
    other_port = server.rstrip("/").rsplit(":", 1)[0] + ":9"
    assert join(server, REFINE, headers={"origin": other_port})[0] == 403
    assert join(server, REFINE, headers={"origin": server.rstrip("/")})[0] == 200
    form = b"username=a&password=b"
    codes = []
    for _ in range(service.LOGIN_ATTEMPTS + 1):
        req = urllib.request.Request(
            server + "login",
            data=form,
            method="POST",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        try:
            codes.append(urllib.request.urlopen(req, timeout=30).status)
        except HTTPError as e:
            codes.append(e.code)
    assert codes[-1] == 429 and codes[0] == 200  # (the chunked body test posted to /login too)


def test_a_browser_only_event_cannot_be_run_from_outside(server):
    """The latent map's click hook runs in the page only: joining it is refused (it used to raise an
    IndexError with a traceback in the log)."""
    from app.ui import build_demo

    js_only = [int(i) for i, fn in build_demo().fns.items() if fn.fn is None]
    assert js_only and join(server, [], fn_index=js_only[0]) == (
        422,
        join(server, [], fn_index=js_only[0])[1],
    )
    assert join(server, [], fn_index=js_only[0])[1]["error"] == "unknown fn_index"
