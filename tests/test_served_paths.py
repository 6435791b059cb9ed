"""Answers name served images by an alias (app/served_paths.py), never by the server's temp folder."""

import asyncio
import json
import os
import urllib.request

from app.served_paths import ALIAS, HideServedPaths, held_back

FOLDER = "/tmp/bfr-explorer-gradio-abc123"


def test_held_back_is_the_longest_tail_that_could_start_the_folder():
    assert held_back(b'"path": "/tmp/bfr-ex', FOLDER.encode()) == len("/tmp/bfr-ex")
    assert held_back(b"data: done\n\n", FOLDER.encode()) == 0
    assert held_back(b"x/", FOLDER.encode()) == 1  # "/" starts the folder
    assert held_back(FOLDER[:-1].encode(), FOLDER.encode()) == len(FOLDER) - 1  # all but its last byte


def run_through(messages, request_path="/gradio_api/queue/data", content_type=b"text/event-stream"):
    """Send ``messages`` (body chunks) through the middleware; return (path the app saw, what went out)."""
    seen, out = {}, []

    async def app(scope, receive, send):
        seen["path"], seen["raw_path"] = scope["path"], scope["raw_path"]
        headers = [(b"content-type", content_type), (b"content-length", b"999")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(messages):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(messages) - 1})

    async def send(message):
        out.append(message)

    scope = {"type": "http", "path": request_path, "raw_path": request_path.encode()}
    asyncio.run(HideServedPaths(app, FOLDER)(scope, None, send))
    return seen, out


def test_the_folder_is_replaced_even_when_a_chunk_boundary_splits_it():
    answer = f'data: {{"path": "{FOLDER}/h/x.png", "url": "http://h/gradio_api/file={FOLDER}/h/x.png"}}\n\n'
    cut = answer.index(FOLDER) + 9  # inside the first occurrence
    _, out = run_through([answer[:cut].encode(), answer[cut:].encode()])
    body = b"".join(m.get("body", b"") for m in out[1:]).decode()
    assert body == answer.replace(FOLDER, ALIAS) and FOLDER not in body
    assert (b"content-length", b"999") not in out[0]["headers"]  # the length changed: sent chunked
    assert out[1]["more_body"] and not out[2]["more_body"]


def test_images_and_other_bodies_pass_untouched_with_their_length():
    png = b"\x89PNG" + FOLDER.encode()  # bytes that happen to hold the folder are not rewritten
    _, out = run_through([png], content_type=b"image/png")
    assert out[1]["body"] == png and (b"content-length", b"999") in out[0]["headers"]


def test_a_request_for_an_aliased_file_reaches_the_real_one():
    seen, _ = run_through([b""], request_path=f"/gradio_api/file={ALIAS}/h/x.png")
    assert seen["path"] == f"/gradio_api/file={FOLDER}/h/x.png" and seen["raw_path"] == seen["path"].encode()
    seen, _ = run_through([b""], request_path="/gradio_api/file=/etc/passwd")  # anything else: as it came
    assert seen["path"] == "/gradio_api/file=/etc/passwd"


def test_a_served_answer_names_no_server_folder_and_its_image_loads(server):
    req = urllib.request.Request(
        server + "gradio_api/call/generate",
        data=json.dumps({"data": ["digits", 2, 8, "any", "rk4", 20]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    event = json.loads(urllib.request.urlopen(req, timeout=120).read())["event_id"]
    text = urllib.request.urlopen(server + f"gradio_api/call/generate/{event}", timeout=300).read().decode()
    assert "event: complete" in text
    assert (
        os.environ["GRADIO_TEMP_DIR"] not in text
        and os.path.realpath(os.environ["GRADIO_TEMP_DIR"]) not in text
    )
    image = json.loads(text.split("data:")[-1])[0]
    assert image["path"].startswith(ALIAS + "/") and f"file={ALIAS}/" in image["url"]
    with urllib.request.urlopen(image["url"], timeout=60) as resp:
        assert resp.status == 200 and resp.read(4) == b"\x89PNG"
