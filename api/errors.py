"""Every API error is JSON: {"code": <stable machine code>, "message": <for a person>, ...}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from generation.services import RunRefused
from projects.importers import StoryFormatError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class RateLimited(ApiError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "rate_limited", f"Too many requests; try again in {retry_after} s.")
        self.retry_after = retry_after


def field_error(field: str, message: str, *, status: int = 422) -> ApiError:
    return ApiError(status, "validation_error", message, errors=[{"field": field, "message": message}])


def _field_of(loc: list | tuple) -> str:
    # ("body", "payload", "title") -> "title"; ("query", "limit") -> "limit"; a file part -> its name.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body" and len(parts) > 2:
        parts = parts[2:]
    elif parts and parts[0] in {"body", "query", "path", "file", "form"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(api: NinjaAPI) -> None:
    def respond(request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
        return api.create_response(request, {"code": code, "message": message, **extra}, status=status)

    @api.exception_handler(ApiError)
    def api_error(request, exc: ApiError):
        response = respond(request, exc.status, exc.code, exc.message, **exc.extra)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response

    @api.exception_handler(NinjaValidationError)
    def invalid(request, exc: NinjaValidationError):
        errors = [{"field": _field_of(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        return respond(request, 422, "validation_error", message, errors=errors)

    @api.exception_handler(DjangoValidationError)
    def invalid_model(request, exc: DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        errors = [{"field": f, "message": m} for f, ms in fields.items() for m in ms]
        return respond(request, 422, "validation_error", " ".join(exc.messages), errors=errors)

    @api.exception_handler(StoryFormatError)
    def bad_story(request, exc: StoryFormatError):
        message = f"Nothing was imported. {exc}"
        return respond(request, 422, "story_format", message, errors=[{"field": "text", "message": str(exc)}])

    @api.exception_handler(RunRefused)
    def refused(request, exc: RunRefused):
        missing = [{"id": c.pk, "name": c.name} for c in exc.missing]
        return respond(request, 409, "run_refused", exc.message, missing=missing)

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, "not_found", str(exc) or "Not found.")

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return respond(request, 403, "forbidden", str(exc) or "You cannot do this.")

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        message = "Authenticate with 'Authorization: Bearer <token>' or a session."
        return respond(request, 401, "unauthenticated", message)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        code = {403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return respond(request, exc.status_code, code, str(exc))
