"""Recognising a rolling-window quota from a 429's Retry-After, and refusing to when unsure."""

from __future__ import annotations

import math

import pytest

from generation.engine.inference import WindowInference
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import make_jobs, make_scheduler


def window_with_sends(times: list[float]) -> tuple[WindowInference, list[int]]:
    window = WindowInference()
    return window, [window.sent(t) for t in times]


def test_a_retry_after_matching_the_oldest_send_gives_the_count_in_the_window():
    window, numbers = window_with_sends([0.0, 0.0, 10.0, 20.0])
    for t in (0.0, 0.0, 10.0):
        window.accepted(t)

    # The send at 20 was refused with "retry in 40 s": the window holds 3 and the one at 0 frees at 60.
    assert window.infer(numbers[-1], retry_after=40.0) == 3


def test_a_short_retry_after_is_not_trusted():
    window, numbers = window_with_sends([0.0, 57.0])

    assert window.infer(numbers[-1], retry_after=3.0) is None


def test_a_retry_after_that_does_not_match_the_window_is_ignored():
    window, numbers = window_with_sends([0.0, 10.0, 20.0])

    assert window.infer(numbers[-1], retry_after=10.0) is None  # a window would say 40 s


def test_a_window_smaller_than_one_already_accepted_is_ignored():
    window, numbers = window_with_sends([0.0, 1.0, 2.0, 3.0, 61.0, 62.0])
    for t in (0.0, 1.0, 2.0, 3.0):
        window.accepted(t)

    # 2 held at 62 with "retry in 59 s" matches a window of 2, but 4 were once accepted in a minute.
    assert window.infer(numbers[-1], retry_after=59.0) is None


def test_a_silent_429_after_sends_that_ended_gives_the_count_the_window_held():
    window, numbers = window_with_sends([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    # Five accepted, two of them still running, then the sixth refused with nothing said.
    assert window.infer_hidden(numbers[-1], level=3, refused_level=math.inf) is None  # could be a cap
    assert window.infer_hidden(numbers[-1], level=1, refused_level=math.inf) == 5
    assert window.infer_hidden(numbers[-1], level=3, refused_level=6) == 5


def test_a_silent_429_a_concurrency_cap_explains_infers_nothing():
    window, numbers = window_with_sends([0.0, 0.0, 0.0, 0.0])
    # Three in flight, all of the window's sends: a cap of 3 says the same as a window of 3.
    assert window.infer_hidden(numbers[-1], level=4, refused_level=math.inf) is None


def test_refused_sends_count_only_as_far_as_the_window_accepted_after_them():
    window, numbers = window_with_sends([0.0, 0.0, 0.0, 1.0, 1.0, 2.0])
    window.refused(numbers[3])
    window.refused(numbers[4])
    # Three accepted at 0, two refused at 1: the limit is 3 (held when the last accepted went), not 5.
    assert window.infer_hidden(numbers[-1], level=1, refused_level=4) == 3


@pytest.mark.looptime
async def test_the_scheduler_infers_a_silent_rolling_window_instead_of_blind_waits():
    provider = SimulatedProvider(
        latency=2.0, requests_per_minute=10, send_retry_after=False, rejected_count=True
    )
    result = await make_scheduler(provider).run(make_jobs(40))

    assert len(result.succeeded) == 40
    assert result.profile.rate == 10
    assert result.quota_errors <= 10  # the slow-start wave that found the limit, and no more
    # Ideal: 10 a minute from t=0, the last at 180 + 2 s; blind 15 s doublings took far longer.
    assert result.elapsed <= 182.0 + 5.0


def test_the_fullest_accepted_window_is_counted_from_completions_in_any_order():
    import random

    rng = random.Random(7)
    sends = sorted(rng.uniform(0, 300) for _ in range(2000))
    # Completions come back in another order than the sends: each after its own latency.
    completions = sorted(sends, key=lambda at: at + rng.uniform(0, 20))
    inference = WindowInference(window=60.0)
    seen: list[float] = []
    fullest = 0
    for sent_at in completions:
        inference.accepted(sent_at)
        seen.append(sent_at)
        fullest = max(fullest, sum(1 for t in seen if sent_at - 60.0 < t <= sent_at))
    assert inference.max_accepted_in_window == fullest
