"""bench scale takes the setups' rounds in turns, so a slow spell of the machine falls on every setup alike,
and writes a round's images to tmpfs where there is one."""

from __future__ import annotations

import os
from pathlib import Path

from bench import scale


def _round(name: str, order: list[str], cpu: list[float]):
    def one_round(workdir: Path, number: int) -> dict:
        order.append(f"{name}-{number}")
        assert workdir.is_dir() and workdir.name == f"{name}-{number}"
        return {
            "scenes_per_second": 100.0,
            "cpu_ms_per_scene": cpu[number],
            "provider_cpu_ms_per_scene": 0.5,
            "cpu_ms_per_scene_by_process": {"workers": cpu[number]},
            "worker_cpu_ms_per_scene_by_thread": {"main": cpu[number]},
        }

    return one_round


def test_the_setups_rounds_are_taken_in_turns_and_each_setup_reports_its_median(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "CPU_ROUNDS", 3)
    order: list[str] = []
    setups = {
        "sqlite_1": _round("sqlite_1", order, [9.0, 5.0, 6.0]),
        "postgres_2": _round("postgres_2", order, [7.0, 8.0, 4.0]),
    }
    results = scale._interleaved(tmp_path, setups)
    assert order == ["sqlite_1-0", "postgres_2-0", "sqlite_1-1", "postgres_2-1", "sqlite_1-2", "postgres_2-2"]
    assert results["sqlite_1"]["cpu_ms_per_scene"] == 6.0
    assert results["postgres_2"]["cpu_ms_per_scene"] == 7.0
    assert [r["cpu_ms_per_scene"] for r in results["postgres_2"]["rounds"]] == [7.0, 8.0, 4.0]


def test_a_rounds_images_go_to_tmpfs_where_there_is_one(tmp_path, monkeypatch):
    shared = tmp_path / "shm"
    shared.mkdir()
    monkeypatch.setattr(scale, "SHARED_MEMORY", shared)
    media = scale._media_directory(tmp_path / "round")
    assert media.parent == shared and media.is_dir() and os.access(media, os.W_OK)


def test_without_tmpfs_a_rounds_images_go_beside_its_database(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "SHARED_MEMORY", tmp_path / "none")
    assert scale._media_directory(tmp_path / "round") == tmp_path / "round" / "media"
