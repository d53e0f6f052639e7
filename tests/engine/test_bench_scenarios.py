"""The engine benchmark's scenario files and its physical bound (bench/README.md)."""

from __future__ import annotations

import json

import pytest

from bench.engine_sim import Scenario, load_scenarios, measure, physical_bound

ROW_FIELDS = {"name", "scenes", "measured_s", "physical_bound_s", "target", "seed_s", "succeeded"}
ROW_FIELDS |= {"requests", "quota_errors", "stop_reason"}


def test_the_bound_uses_only_the_providers_parameters():
    latencies = [10.0, 20.0, 30.0, 40.0]
    rate = Scenario("r", 4, {"requests_per_minute": 2, "transient_rate": 0.5}, {"max_concurrency": 1})
    cap = Scenario("c", 4, {"max_concurrent": 2}, {"max_concurrency": 1})
    free = Scenario("f", 4, {}, {"max_concurrency": 1})

    # N_eff = 4 x 1.5 = 6 requests at 2 a window: 60 x (3 - 1) + the mean latency.
    assert physical_bound(rate, latencies)["physical_bound_s"] == pytest.approx(145.0)
    assert physical_bound(cap, latencies)["physical_bound_s"] == pytest.approx(50.0)
    assert physical_bound(cap, latencies)["ceiling_s"] == pytest.approx(70.0)
    assert physical_bound(free, latencies)["physical_bound_s"] == pytest.approx(40.0)


def test_a_scenario_file_gives_one_row_per_scenario(tmp_path):
    path = tmp_path / "mine.json"
    scenario = {"name": "mine", "scenes": 30, "provider": {"latency": 2.0, "requests_per_minute": 20}}
    path.write_text(json.dumps([{**scenario, "engine": {"requests_per_minute": 20}}]))

    [row] = [measure(s, with_sweep=False) for s in load_scenarios(path)]

    assert ROW_FIELDS <= set(row)
    assert (row["name"], row["scenes"], row["succeeded"], row["stop_reason"]) == ("mine", 30, 30, "completed")
    assert row["physical_bound_s"] == pytest.approx(62.0)  # 20 at 0, 10 at 60, 2 s each
    assert row["target"] == 0.9  # the rate is known
    assert row["efficiency"] >= 0.9


def test_an_unknown_scenario_field_is_refused():
    with pytest.raises(ValueError, match="Unknown scenario field"):
        Scenario.from_dict({"name": "x", "scenes": 1, "provider": {}, "rpm": 3})
