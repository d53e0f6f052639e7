"""Downloads of a whole project: the ZIP of images with their metadata, and the contact sheet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from projects import contact_sheet, export
from projects.access import membership_for
from projects.images import harden_file_response
from projects.models import Scene


@login_required
def project_export_zip(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id).project
    try:
        archive = export.project_zip(project=project)
    except export.NothingToExport as exc:
        # The button is disabled in this case; a stale page or a typed URL gets the reason, not an empty ZIP.
        messages.info(request, f"Nothing to download: {exc}")
        return redirect(project)
    response = _download(request, iter(archive.stream), "application/zip", archive)
    response["Content-Length"] = str(len(archive))
    return response


@login_required
def project_contact_sheet_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """The contact sheet as a page of the studio (printable); the PNG stays a download from it."""
    membership = membership_for(user=request.user, project_id=project_id)
    project = membership.project
    cells = [
        {
            **row,
            "failed": export.last_attempt_failed(row),
            "stale": export.image_is_stale(row),
            "why_not": "" if row["image"] else export.missing_reason(row),
            "excerpt": Scene(prompt=row["prompt"]).excerpt(160),
        }
        for row in export.scene_rows(project)
    ]
    context = {"project": project, "membership": membership, "cells": cells, "now": timezone.now()}
    return render(request, "projects/contact_sheet.html", context)


@login_required
def project_contact_sheet(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id).project
    try:
        sheet = contact_sheet.project_contact_sheet(project=project)
    except export.NothingToExport as exc:
        messages.info(request, f"No contact sheet: {exc}")
        return redirect(project)
    return _download(request, sheet.chunks, "image/png", sheet)


def _download(
    request: HttpRequest,
    chunks: Iterator[bytes],
    content_type: str,
    named: export.ZipExport | contact_sheet.ContactSheet,
) -> StreamingHttpResponse:
    # Django's ASGI handler buffers a sync iterator whole (and the WSGI handler an async one), so hand each
    # handler the kind it streams.
    content = _async_chunks(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = export.content_disposition(named.filename, named.ascii_filename)
    response["Cache-Control"] = "private, no-store"
    harden_file_response(response)
    return response


ASYNC_BATCH_BYTES = 1024 * 1024


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # File reads and encoding run in a worker thread, never on the event loop; about 1 MB per thread hop
    # keeps the hops few (64 KB ones made the ASGI download 3-4x slower) and the memory flat.
    # Not thread-sensitive: the iterator touches no database, so it need not queue behind sync views.
    pull = sync_to_async(_take, thread_sensitive=False)
    while batch := await pull(chunks, ASYNC_BATCH_BYTES):
        yield batch


def _take(chunks: Iterator[bytes], limit: int) -> bytes:
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(batch)
