"""Member pages of a project: who is in it, and the owner adding, re-roling and removing people."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from projects import services
from projects.access import membership_for
from projects.forms import MemberAddForm, MemberRoleForm
from projects.models import Membership, Role


@login_required
def member_list(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_for(user=request.user, project_id=project_id)
    project = membership.project
    is_owner = membership.allows(Role.OWNER)
    form = MemberAddForm(request.POST or None)
    if request.method == "POST":
        if not is_owner:
            raise Http404("No such page")
        if form.is_valid():
            try:
                added = services.member_add(project=project, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error("username", exc)
            else:
                messages.success(request, f"Added {added.user.username} as {added.role}.")
                return redirect("member_list", project.pk)
    members = project.memberships.select_related("user")
    context = {
        "project": project,
        "membership": membership,
        "members": members,
        "form": form,
        "is_owner": is_owner,
        "roles": Role.choices,
    }
    return render(request, "projects/member_list.html", context)


@login_required
@require_POST
def member_update(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.OWNER).project
    membership = get_object_or_404(Membership, pk=member_id, project=project)
    try:
        if request.POST.get("action") == "remove":
            services.member_remove(membership=membership)
            messages.success(request, f"Removed {membership.user.username}.")
        else:
            form = MemberRoleForm(request.POST)
            if form.is_valid():
                services.member_set_role(membership=membership, role=form.cleaned_data["role"])
                messages.success(request, f"{membership.user.username} is now {membership.role}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("member_list", project.pk)
