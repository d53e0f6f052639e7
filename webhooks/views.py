"""The owners' webhooks page: endpoints, their deliveries with every attempt, and redelivery."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from api.access import project_access
from projects.models import Role
from webhooks import services
from webhooks.forms import EndpointForm
from webhooks.models import Delivery, Endpoint

DELIVERIES_SHOWN = 50


@login_required
def endpoint_list(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_access(request, project_id, needs=Role.OWNER)
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = services.endpoint_create(
            project=project,
            url=form.cleaned_data["url"],
            events=form.cleaned_data["events"],
            user=request.user,
        )
        messages.success(request, f"Added {endpoint.url}; its signing secret is shown below.")
        return redirect("webhook_endpoint", project.pk, endpoint.pk)
    endpoints = project.webhook_endpoints.all()
    return render(
        request, "webhooks/endpoint_list.html", {"project": project, "endpoints": endpoints, "form": form}
    )


@login_required
def endpoint_detail(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    project = project_access(request, project_id, needs=Role.OWNER)
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id, project=project)
    deliveries = endpoint.deliveries.prefetch_related("log")[:DELIVERIES_SHOWN]
    context = {"project": project, "endpoint": endpoint, "deliveries": deliveries}
    return render(request, "webhooks/endpoint_detail.html", context)


@login_required
@require_POST
def endpoint_delete(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    project = project_access(request, project_id, needs=Role.OWNER)
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id, project=project)
    endpoint.delete()
    messages.success(request, f"Removed {endpoint.url}.")
    return redirect("webhook_list", project.pk)


@login_required
@require_POST
def delivery_redeliver(request: HttpRequest, project_id: int, delivery_id: int) -> HttpResponse:
    project = project_access(request, project_id, needs=Role.OWNER)
    delivery = get_object_or_404(Delivery, pk=delivery_id, endpoint__project=project)
    services.delivery_redeliver(delivery=delivery)
    messages.success(request, f"{delivery.event} queued for delivery again.")
    return redirect("webhook_endpoint", project.pk, delivery.endpoint_id)
