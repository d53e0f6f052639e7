"""How an attempt ends, as the fields of its row: what the recorder writes when a request comes back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import F

from generation.costs.prices import AttemptCost
from generation.engine.jobs import Job
from generation.engine.scheduler import Interrupted
from generation.models import GenerationAttempt
from generation.providers.base import ImageResult, ProviderError

# The engine's words for an attempt it closed before sending its request (see Scheduler._record_attempt).
NOT_SENT_MESSAGE = "Stopped before the request was sent"


def attempt_outcome(
    *, error: BaseException | None, result: ImageResult | None, latency: float, finished: datetime, model: str
) -> dict[str, Any]:
    """The closing fields of an attempt row; `model` is the run's, for an answer that names none."""
    fields: dict[str, Any] = {"finished": finished, "latency_ms": max(0, round(latency * 1000))}
    if result is not None:
        fields.update(status=GenerationAttempt.Status.SUCCEEDED, model=result.model or model)
    elif isinstance(error, Interrupted):
        # "not_sent": the row exists but no request went out, so it is not counted as one.
        fields.update(
            status=GenerationAttempt.Status.INTERRUPTED,
            error_kind="not_sent" if str(error) == NOT_SENT_MESSAGE else "interrupted",
            error_message=str(error),
        )
    else:
        fields.update(status=GenerationAttempt.Status.FAILED, **_error_fields(error))
    return fields


@dataclass(frozen=True)
class RunCost:
    """What attempts add to their run's totals: several written as one addition in a group commit."""

    cost: Decimal
    unpriced: int

    def __add__(self, other: RunCost) -> RunCost:
        return RunCost(self.cost + other.cost, self.unpriced + other.unpriced)

    def fields(self) -> dict[str, Any]:
        """The run row's update: added to what it holds, whoever wrote that."""
        return {"cost": F("cost") + self.cost, "unpriced": F("unpriced") + self.unpriced}


def run_cost(cost: AttemptCost) -> RunCost:
    """An attempt's cost as an addition to its run's totals."""
    return RunCost(cost.cost or Decimal(0), int(cost.unpriced))


def _error_fields(error: BaseException | None) -> dict[str, Any]:
    if isinstance(error, ProviderError):
        return {
            "error_kind": error.kind,
            "error_message": error.message[:2000],
            "http_status": error.http_status,
        }
    return {"error_kind": "error", "error_message": str(error)[:2000]}


@dataclass
class Answer:
    """A succeeded request, until its outcome is written with the image (or the failure to store it)."""

    job: Job
    result: ImageResult
    latency: float
    finished: datetime
    outcome: Outcome | None = None  # worked out once, in the database's thread (it bills)


@dataclass
class Outcome:
    """An attempt row's closing fields, and what the attempt adds to its run's cost (None: not billed)."""

    fields: dict[str, Any]
    run_cost: RunCost | None = None
