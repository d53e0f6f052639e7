"""The studio's JSON API: /api/, schema at /api/schema/, docs (ninja's vendored Swagger UI) at /api/docs/."""

from __future__ import annotations

from ninja import NinjaAPI

from api import errors
from api.auth import BearerToken, Session
from api.routers import characters, keys, projects, runs, scenes, webhooks

api = NinjaAPI(
    title="Scene Studio API",
    version="1",
    description="Projects, scenes, characters and runs of Scene Studio. Authenticate with "
    "`Authorization: Bearer <token>` (create one at /account/tokens/) or a browser session.",
    auth=[BearerToken(), Session()],
    urls_namespace="api",
    openapi_url="/schema/",
    docs_url="/docs/",
)
errors.install(api)
for module in (projects, scenes, characters, runs, webhooks, keys):
    api.add_router("", module.router)
