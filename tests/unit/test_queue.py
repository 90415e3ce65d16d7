"""The backoff of a run handed back to the queue."""

from loupe.queue import MAX_RETRY_SECONDS, retry_delay_seconds


def test_the_delay_doubles_from_two_seconds_and_stops_at_the_ceiling() -> None:
    assert [retry_delay_seconds(count) for count in range(1, 6)] == [2, 4, 8, 16, 32]
    assert retry_delay_seconds(0) == 2
    assert retry_delay_seconds(50) == MAX_RETRY_SECONDS == 300
