"""Answers name the files they serve by an alias, never by the server's folder.

Gradio answers an image as ``{"path": "<its temp folder>/<hash>/image.png", "url":
"…/gradio_api/file=<its temp folder>/<hash>/image.png"}``: the absolute path of a private folder on the
server, in every answer. :class:`HideServedPaths` (an ASGI middleware) replaces that folder by ``ALIAS``
in the JSON and event streams going out, and maps a request for ``/gradio_api/file=ALIAS/…`` back to the
folder coming in, so a client can still fetch every image it was answered with and reads no server path.
"""

from __future__ import annotations

ALIAS = "/results"
FILE_ROUTE = "/gradio_api/file="
REWRITTEN_TYPES = (b"application/json", b"text/event-stream", b"text/plain")


def held_back(data: bytes, needle: bytes) -> int:
    """How many bytes at the end of ``data`` could be the start of ``needle`` (to wait for the next chunk
    before rewriting): the longest proper prefix of ``needle`` that ``data`` ends with."""
    for k in range(min(len(needle) - 1, len(data)), 0, -1):
        if data.endswith(needle[:k]):
            return k
    return 0


class HideServedPaths:
    """Replace ``folder`` by :data:`ALIAS` in outgoing JSON/event-stream bodies; map ``FILE_ROUTE + ALIAS``
    requests back to ``folder``. Other bodies (images, HTML, scripts) pass untouched."""

    def __init__(self, app, folder: str):
        self.app = app
        self.folder = folder.rstrip("/").encode()
        self.alias = ALIAS.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        alias_route = FILE_ROUTE + ALIAS + "/"
        if scope["path"].startswith(alias_route):
            real = FILE_ROUTE + self.folder.decode() + "/" + scope["path"][len(alias_route) :]
            scope = {**scope, "path": real, "raw_path": real.encode()}
        return await self.app(scope, receive, self.rewriting(send))

    def rewriting(self, send):
        state = {"rewrite": False, "pending": b""}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                state["rewrite"] = kind.split(b";")[0].strip() in REWRITTEN_TYPES
                if state["rewrite"]:  # the length changes: let the server send it chunked
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and state["rewrite"]:
                data = (state["pending"] + message.get("body", b"")).replace(self.folder, self.alias)
                keep = held_back(data, self.folder) if message.get("more_body") else 0
                state["pending"] = data[len(data) - keep :] if keep else b""
                message = {**message, "body": data[: len(data) - keep]}
            await send(message)

        return wrapped
