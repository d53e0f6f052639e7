"""The public face of generation's reads: what other apps (projects' pages) may ask about runs."""

from __future__ import annotations

from generation.costs.estimates import run_estimate
from generation.live.events import layer_spans_processes
from generation.runs.providers import (
    ProviderStatus,
    keyed_providers,
    offered_providers,
    provider_statuses,
)
from generation.runs.selectors import (
    active_run,
    current_versions,
    latest_run,
    missing_references,
    project_cost,
    project_snapshot,
    project_totals,
    run_payload,
    runs_needing_a_worker,
    scene_state,
)
from generation.runs.variations import (
    current_reference_hashes,
    project_capabilities,
    references_changed,
    references_cut,
    scene_candidates,
    version_lineage,
)

__all__ = [
    "ProviderStatus",
    "active_run",
    "current_reference_hashes",
    "current_versions",
    "keyed_providers",
    "latest_run",
    "layer_spans_processes",
    "missing_references",
    "offered_providers",
    "project_capabilities",
    "project_cost",
    "project_snapshot",
    "project_totals",
    "provider_statuses",
    "references_changed",
    "references_cut",
    "run_estimate",
    "run_payload",
    "runs_needing_a_worker",
    "scene_candidates",
    "scene_state",
    "version_lineage",
]
