from __future__ import annotations

from django.urls import path

from generation.live.consumers import ProjectConsumer
from generation.live.events import WORKER_CHANNEL
from generation.runs.worker import GenerationConsumer

websocket_urlpatterns = [path("ws/projects/<int:project_id>/", ProjectConsumer.as_asgi())]
worker_channels = {WORKER_CHANNEL: GenerationConsumer.as_asgi()}
