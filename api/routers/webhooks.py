"""Webhook endpoints of a project and their deliveries, for owners (the Webhooks page's twin)."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from api.access import project_access
from api.errors import field_error
from projects.models import Role
from webhooks import services
from webhooks.models import Delivery, Endpoint

router = Router(tags=["webhooks"])
HOOKS = "/projects/{int:project_id}/webhooks"


class EndpointIn(Schema):
    url: str = Field(max_length=500)
    events: list[str] = Field(default_factory=list, description="Empty: every event")


class EndpointOut(Schema):
    id: int
    url: str
    events: list[str]
    active: bool
    secret: str = Field(description="The signing secret of X-SceneStudio-Signature")
    created: datetime


class AttemptLog(Schema):
    number: int
    status_code: int | None
    response_ms: int | None
    error: str
    created: datetime


class DeliveryOut(Schema):
    id: int
    event: str
    event_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_response_ms: int | None
    last_error: str
    created: datetime
    delivered: datetime | None
    log: list[AttemptLog]

    @staticmethod
    def resolve_event_id(obj) -> str:
        return str(obj.event_id)

    @staticmethod
    def resolve_log(obj) -> list:
        return list(obj.log.all())


@router.get(HOOKS, response=list[EndpointOut], url_name="webhook_list")
@paginate(LimitOffsetPagination)
def webhook_list(request: HttpRequest, project_id: int):
    return project_access(request, project_id, needs=Role.OWNER).webhook_endpoints.all()


@router.post(HOOKS, response={201: EndpointOut}, url_name="webhook_create")
def webhook_create(request: HttpRequest, project_id: int, payload: EndpointIn):
    project = project_access(request, project_id, needs=Role.OWNER)
    try:
        endpoint = services.endpoint_create(
            project=project, url=payload.url, events=payload.events, user=request.user
        )
    except ValidationError as exc:
        field = "events" if getattr(exc, "code", "") == "events" else "url"
        raise field_error(field, " ".join(exc.messages)) from exc
    return Status(201, endpoint)


@router.delete(HOOKS + "/{int:endpoint_id}", response={204: None}, url_name="webhook_delete")
def webhook_delete(request: HttpRequest, project_id: int, endpoint_id: int):
    project = project_access(request, project_id, needs=Role.OWNER)
    get_object_or_404(Endpoint, pk=endpoint_id, project=project).delete()
    return Status(204, None)


@router.get(
    HOOKS + "/{int:endpoint_id}/deliveries", response=list[DeliveryOut], url_name="webhook_deliveries"
)
@paginate(LimitOffsetPagination)
def webhook_deliveries(request: HttpRequest, project_id: int, endpoint_id: int):
    project = project_access(request, project_id, needs=Role.OWNER)
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id, project=project)
    return endpoint.deliveries.prefetch_related("log")


@router.post(
    HOOKS + "/deliveries/{int:delivery_id}/redeliver",
    response={201: DeliveryOut},
    url_name="webhook_redeliver",
)
def webhook_redeliver(request: HttpRequest, project_id: int, delivery_id: int):
    project = project_access(request, project_id, needs=Role.OWNER)
    delivery = get_object_or_404(Delivery, pk=delivery_id, endpoint__project=project)
    return Status(201, services.delivery_redeliver(delivery=delivery))
