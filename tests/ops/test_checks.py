"""System checks for common misconfiguration."""

from __future__ import annotations

from ops import checks
from tests.ops.test_health import closed_port


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_a_provider_without_its_credentials_is_an_error(settings):
    settings.GENERATION_PROVIDER = "openai"
    settings.GENERATION_PROVIDERS = {"openai": {"api_key": ""}}
    assert ids(checks.provider_credentials()) == ["ops.E001"]
    settings.GENERATION_PROVIDERS = {"openai": {"api_key": "sk-x"}}
    assert checks.provider_credentials() == []
    settings.GENERATION_PROVIDER = "sketch"
    assert checks.provider_credentials() == []


def test_the_in_memory_layer_without_debug_is_a_warning_on_postgresql(settings, monkeypatch):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.DEBUG = False
    monkeypatch.setattr(checks, "_on_sqlite", lambda: False)
    assert ids(checks.channel_layer_in_memory()) == ["ops.W002"]
    settings.DEBUG = True
    assert checks.channel_layer_in_memory() == []


def test_on_sqlite_it_is_only_a_note_since_one_process_is_the_small_deploy(settings, monkeypatch):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.DEBUG = False
    monkeypatch.setattr(checks, "_on_sqlite", lambda: True)
    assert ids(checks.channel_layer_in_memory()) == ["ops.I002"]


def test_a_media_root_that_is_a_file_is_an_error(settings, tmp_path):
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    settings.MEDIA_ROOT = afile
    assert ids(checks.media_root_writable()) == ["ops.E003"]
    settings.MEDIA_ROOT = tmp_path / "new" / "media"
    assert checks.media_root_writable() == []


def test_unreachable_redis_is_an_error(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert ids(checks.redis_reachable()) == ["ops.E004"]
    settings.REDIS_URL = ""
    assert checks.redis_reachable() == []


def test_a_worker_event_loop_nobody_can_run_is_an_error(settings):
    settings.WORKER_EVENT_LOOP = "uvloop"
    assert ids(checks.worker_event_loop()) == []
    settings.WORKER_EVENT_LOOP = "tornado"
    assert ids(checks.worker_event_loop()) == ["ops.E005"]
