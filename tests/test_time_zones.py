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
    ("request_text", "expected"),
    [
        ("a street market in Mumbai when it is 6 pm in London in December",
         "It is 23:30 in Mumbai (night, dark sky) when it is 18:00 in London."),
        ("Christ the Redeemer above Rio de Janeiro when it is midnight in Tokyo",
         "It is 12:00 in Rio de Janeiro (midday daylight) when it is 00:00 in Tokyo."),
        ("Sydney harbour at the moment Londoners sit down to lunch at 1 pm",
         "It is 00:00 in Sydney (night, dark sky) when it is 13:00 in London."),
        ("the Sydney Opera House when it is noon in London in July",
         "It is 21:00 in Sydney (night, dark sky) when it is 12:00 in London."),
    ],
)
def test_aliases_people_of_a_city_and_a_named_month_are_understood(request_text, expected):
    assert time_zone_conclusion(request_text, WINTER_IN_LONDON) == expected


def test_the_place_shown_can_come_from_the_source_about_what_is_shown():
    request = "the Eiffel Tower at the moment New Yorkers sit down to breakfast at 7 am in January"
    source = "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris."
    assert time_zone_conclusion(request, SUMMER_IN_LONDON, place_text=source) == (
        "It is 13:00 in Paris (midday daylight) when it is 07:00 in New York."
    )
    assert time_zone_conclusion(request, SUMMER_IN_LONDON) is None
    lower_case_words = "a tower in the west of the city, near the christmas market of paris"
    assert time_zone_conclusion(request, SUMMER_IN_LONDON, place_text=lower_case_words) is None


@pytest.mark.parametrize(
    "request_text",
    ["the Eiffel Tower at midnight", "London at noon", "Sydney and London in the rain",
     "a lighthouse in the far west at noon in Perth"],
)
def test_nothing_is_worked_out_without_a_clock_time_in_one_city_and_another_city(request_text):
    assert time_zone_conclusion(request_text, WINTER_IN_LONDON) is None
