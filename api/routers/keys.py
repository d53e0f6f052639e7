"""A project's own provider keys, for owners (the Keys page's twin): set, list by hint, remove."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema, Status

from api.access import project_access
from api.errors import field_error
from generation.services import provider_key_remove, provider_key_set
from projects.models import Role

router = Router(tags=["provider keys"])
KEYS = "/projects/{int:project_id}/provider-keys"


class KeyIn(Schema):
    secret: str = Field(max_length=400, description="The provider's API key; never returned")


class KeyOut(Schema):
    provider: str
    label: str
    hint: str = Field(description="The key's last characters")
    updated: datetime


@router.get(KEYS, response=list[KeyOut], url_name="provider_key_list")
def provider_key_list(request: HttpRequest, project_id: int):
    return list(project_access(request, project_id, needs=Role.OWNER).provider_keys.all())


@router.put(KEYS + "/{provider}", response=KeyOut, url_name="provider_key_set")
def provider_key_put(request: HttpRequest, project_id: int, provider: str, payload: KeyIn):
    project = project_access(request, project_id, needs=Role.OWNER)
    try:
        return provider_key_set(project=project, provider=provider, secret=payload.secret, user=request.user)
    except ValidationError as exc:
        raise field_error(exc.code or "secret", " ".join(exc.messages)) from exc


@router.delete(KEYS + "/{provider}", response={204: None}, url_name="provider_key_delete")
def provider_key_delete(request: HttpRequest, project_id: int, provider: str):
    project = project_access(request, project_id, needs=Role.OWNER)
    if not provider_key_remove(project=project, provider=provider, user=request.user):
        raise Http404("The project has no key for this provider")
    return Status(204, None)
