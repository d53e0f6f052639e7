"""EngineConfig: the defaults from the product issue and per-run overrides."""

from __future__ import annotations

import pytest

from generation.engine.config import EngineConfig


def test_the_defaults_match_the_product_issue():
    config = EngineConfig()

    # max_concurrency is a safety ceiling since issue 13 (it was the working point, 16, before).
    assert (config.start_concurrency, config.min_concurrency, config.max_concurrency) == (5, 1, 128)
    assert (config.small_batch, config.rate_window_seconds) == (20, 60.0)
    assert config.requests_per_minute is None
    assert config.limiter == "window"
    assert (config.max_attempts, config.backoff_base) == (3, 2.0)
    assert (config.quota_wait_default, config.quota_wait_max_total) == (15.0, 600.0)
    assert (config.grace_timeout, config.request_timeout) == (30.0, 90.0)


def test_from_mapping_overrides_only_the_given_keys():
    config = EngineConfig.from_mapping({"requests_per_minute": 30, "limiter": "bucket", "max_attempts": 5})

    assert config.requests_per_minute == 30.0
    assert config.limiter == "bucket"
    assert config.max_attempts == 5
    assert config.start_concurrency == 5


def test_from_mapping_builds_on_a_base_config():
    base = EngineConfig(max_concurrency=8)

    assert EngineConfig.from_mapping({"grace_timeout": 5}, base=base).max_concurrency == 8


def test_an_unknown_key_is_rejected_by_name():
    with pytest.raises(ValueError, match=r"Unknown engine setting.*max_concurency"):
        EngineConfig.from_mapping({"max_concurency": 4})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_attempts": "three"}, "max_attempts must be a number"),
        ({"max_attempts": 2.5}, "max_attempts must be a whole number"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_concurrency": 2}, "min_concurrency <= start_concurrency <= max_concurrency"),
        ({"limiter": "leaky"}, "limiter must be one of window, bucket"),
        ({"requests_per_minute": -1}, "requests_per_minute must be positive"),
        ({"grace_timeout": None}, "grace_timeout cannot be empty"),
        ({"jitter": True}, "jitter must be a number"),
    ],
)
def test_a_bad_value_is_rejected_with_a_clear_message(values, message):
    with pytest.raises(ValueError, match=message):
        EngineConfig.from_mapping(values)


def test_as_dict_round_trips():
    config = EngineConfig(requests_per_minute=20, limiter="bucket", bucket_burst=3)

    assert EngineConfig.from_mapping(config.as_dict()) == config
