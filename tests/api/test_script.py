"""The API script (create, import, upload, run, poll, download) through Django's test client, with the
worker driven in-process between polls."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from generation.runs.execution import run_execute
from generation.selectors import runs_needing_a_worker
from tests.api.conftest import bearer
from tests.api.script import storyboard_script

pytestmark = pytest.mark.django_db(transaction=True)


class ClientApi:
    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        if body is None:
            response = getattr(self.client, method)(path)
        else:
            response = getattr(self.client, method)(path, body, content_type="application/json")
        return response.status_code, response.json()

    def upload(self, path: str, field: str, filename: str, data: bytes) -> tuple[int, Any]:
        response = self.client.post(path, {field: SimpleUploadedFile(filename, data, "image/png")})
        return response.status_code, response.json()

    def download(self, path: str) -> tuple[int, bytes, str]:
        response = self.client.get(path)
        return response.status_code, b"".join(response.streaming_content), response["Content-Type"]

    def wait(self) -> None:
        # What a worker does on a wake-up; the live-server test has a real one.
        for run_id in runs_needing_a_worker():
            async_to_sync(run_execute)(run_id=run_id, worker="test-worker")


def test_a_script_generates_a_storyboard_and_downloads_it(team):
    result = storyboard_script(ClientApi(bearer(team.owner)))
    assert result["run"]["requested_by"] == team.owner.username


def test_the_script_works_with_a_browser_session_too(team):
    client = Client()
    client.force_login(team.editor)
    storyboard_script(ClientApi(client))
