"""Clock times across time zones, worked out in code (daylight saving included)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from contextgen.nodes.time_zones import time_zone_conclusion

WINTER_IN_LONDON = datetime(2025, 1, 15, 12, tzinfo=ZoneInfo("UTC"))
SUMMER_IN_LONDON = datetime(2025, 7, 15, 12, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("request_text", "today", "expected"),
    [
        ("the Sydney Opera House at the moment it turns midnight in London", WINTER_IN_LONDON,
         "It is 11:00 in Sydney (midday daylight) when it is 00:00 in London."),
        ("the Sydney Opera House at the moment it turns midnight in London", SUMMER_IN_LONDON,
         "It is 09:00 in Sydney (morning daylight) when it is 00:00 in London."),
        ("Times Square in New York when it is 9 am in Tokyo", WINTER_IN_LONDON,
         "It is 19:00 in New York (evening, around sunset) when it is 09:00 in Tokyo."),
        ("a cafe in Paris at 15:30 in Los Angeles", SUMMER_IN_LONDON,
         "It is 00:30 in Paris (night, dark sky) when it is 15:30 in Los Angeles."),
        ("Sydney Opera House when London strikes midnight", WINTER_IN_LONDON,
         "It is 11:00 in Sydney (midday daylight) when it is 00:00 in London."),
    ],
)
def test_the_time_in_the_city_shown_is_worked_out(request_text, today, expected):
    assert time_zone_conclusion(request_text, today) == expected


@pytest.mark.parametrize(
    "request_text",
    ["the Eiffel Tower at midnight", "London at noon", "Sydney and London in the rain"],
)
def test_nothing_is_worked_out_without_a_clock_time_in_one_city_and_another_city(request_text):
    assert time_zone_conclusion(request_text, WINTER_IN_LONDON) is None
