"""Fake AUTOMATIC1111 web UI API: POST /sdapi/v1/txt2img, with optional HTTP basic auth."""

from __future__ import annotations

import base64
import binascii
import json
import random
from typing import TYPE_CHECKING

from aiohttp import web

from generation.fakeprovider.config import FakeConfig
from generation.fakeprovider.images import fit, image_base64
from generation.fakeprovider.styles import RECORD, SERVER, Style, json_reply

if TYPE_CHECKING:
    from generation.fakeprovider.server import FakeProviderServer


class A1111Style(Style):
    name = "a1111"

    def credential(self, request: web.Request) -> str:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return ""
        try:
            return base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""

    def authorized(self, request: web.Request, config: FakeConfig) -> bool:
        if not config.basic_auth:
            return True
        return self.credential(request) == ":".join(config.basic_auth)

    def auth_error(self, request: web.Request) -> web.Response:
        return json_reply(
            {"detail": "Incorrect credentials"}, status=401, headers={"WWW-Authenticate": "Basic"}
        )

    def server_error(self, status: int) -> web.Response:
        body = {"error": "OutOfMemoryError", "detail": "", "body": "", "errors": "CUDA out of memory."}
        return json_reply(body, status=status)


STYLE = A1111Style()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/sdapi/v1/txt2img", txt2img)


async def txt2img(request: web.Request) -> web.StreamResponse:
    server: FakeProviderServer = request.app[SERVER]
    body = request[RECORD].json

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        if not isinstance(body, dict):
            return "invalid", _unprocessable(["body"], "Input should be a valid dictionary")
        for name in ("width", "height", "steps", "seed"):
            if name in body and not isinstance(body[name], int):
                return "invalid", _unprocessable(["body", name], "Input should be a valid integer")
        seed = body.get("seed", -1)
        seed = seed if seed >= 0 else random.randrange(2**32)
        png = server.next_image(
            *fit(body.get("width", 512), body.get("height", 512), server.config.image_max_side)
        )
        info = {
            "prompt": body.get("prompt", ""),
            "seed": seed,
            "all_seeds": [seed],
            "steps": body.get("steps", 20),
        }
        answer = {"images": [image_base64(png, fault)], "parameters": body, "info": json.dumps(info)}
        return "ok", json_reply(answer, fault=fault)

    return await server.serve(request, STYLE, work)


def _unprocessable(location: list[str], message: str) -> web.Response:
    return json_reply({"detail": [{"loc": location, "msg": message, "type": "type_error"}]}, status=422)
