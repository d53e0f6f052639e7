"""{% cost_panel project run can_edit %}: the project's spent cost, the estimate link and a parked run's
daily-quota notice, for the project page."""

from __future__ import annotations

from django import template
from django.utils import timezone

from generation.costs.budgets import spent_on_project
from generation.costs.daily import parked_message
from generation.costs.models import Budget
from generation.costs.prices import money
from generation.models import BatchRun

register = template.Library()


@register.inclusion_tag("generation/_cost_panel.html")
def cost_panel(project, run, can_edit: bool) -> dict:
    parked = run is not None and run.status == BatchRun.Status.WAITING_DAILY_QUOTA and run.quota_resume_at
    budget = Budget.objects.filter(project=project).first()
    return {
        "project": project,
        "can_edit": can_edit,
        "spent": money(spent_on_project(project.pk)),
        "budget": money(budget.amount) if budget else "",
        "run_cost": money(run.cost, unpriced=run.unpriced) if run is not None else "",
        "parked": parked_message(provider=run.provider, resume_at=run.quota_resume_at, now=timezone.now())
        if parked
        else "",
    }
