"""Recognising a rolling-window quota from a 429's Retry-After, and refusing to when unsure."""

from __future__ import annotations

from generation.engine.inference import WindowInference


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
