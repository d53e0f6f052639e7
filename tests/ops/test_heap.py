"""The long-running processes keep start-up's objects out of the garbage collector's passes."""

from __future__ import annotations

import gc

import pytest

from scenestudio.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settling_freezes_what_start_up_built_and_still_frees_later_cycles(collector):
    Cycle()  # start-up garbage: freed by the settling, not frozen
    settle_heap()
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert not any(isinstance(o, Cycle) for o in gc.get_objects())

    Cycle()
    assert any(isinstance(o, Cycle) for o in gc.get_objects())
    gc.collect()
    assert not any(isinstance(o, Cycle) for o in gc.get_objects())


@pytest.mark.parametrize("command", ["studioworker", "runstudio"])
def test_each_long_running_command_settles_the_heap_before_serving(monkeypatch, command):
    """The worker and Daphne settle their heaps once set up, before they serve anything."""
    import importlib

    from django.core.management.base import BaseCommand

    module = importlib.import_module(f"generation.management.commands.{command}")
    order: list[str] = []
    monkeypatch.setattr(module, "settle_heap", lambda: order.append("settled"))

    class Served(Exception):
        pass

    def serve(*args, **kwargs):
        order.append("served")
        raise Served

    if command == "studioworker":
        monkeypatch.setattr(module.ChannelsRunworker, "handle", serve)
        options = {"layer": "default", "channels": ["scene-generation"]}
    else:
        import daphne.cli

        monkeypatch.setattr(daphne.cli.CommandLineInterface, "run", serve)
        options = {"host": "127.0.0.1", "port": 0, "worker": "no"}
    instance: BaseCommand = module.Command()
    with pytest.raises(Served):
        instance.handle(**options)
    assert order == ["settled", "served"]
