"""What a run may still spend: the project's budget less what its runs spent, and the requesting
person's monthly budget less what their runs spent this month. None = no cap."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from generation.costs.models import Budget


def spent_on_project(project_id: int) -> Decimal:
    from generation.models import BatchRun

    return BatchRun.objects.filter(project_id=project_id).aggregate(s=Sum("cost"))["s"] or Decimal(0)


def spent_this_month(user_id: int) -> Decimal:
    from generation.models import BatchRun

    start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    runs = BatchRun.objects.filter(requested_by_id=user_id, created__gte=start)
    return runs.aggregate(s=Sum("cost"))["s"] or Decimal(0)


def budget_left(*, project_id: int, user_id: int | None, exclude_run: int | None = None) -> Decimal | None:
    """The smaller of the project's and the person's remaining budget, or None when neither has one.
    `exclude_run`: a run in progress whose own spending the caller counts itself."""
    from generation.models import BatchRun

    left: list[Decimal] = []
    own = Decimal(0)
    if exclude_run is not None:
        own = BatchRun.objects.filter(pk=exclude_run).values_list("cost", flat=True).first() or Decimal(0)
    project_budget = Budget.objects.filter(project_id=project_id).first()
    if project_budget is not None:
        left.append(project_budget.amount - spent_on_project(project_id) + own)
    if user_id is not None:
        user_budget = Budget.objects.filter(user_id=user_id).first()
        if user_budget is not None:
            left.append(user_budget.amount - spent_this_month(user_id) + own)
    return min(left) if left else None
