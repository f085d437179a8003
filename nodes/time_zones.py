"""Clock times across time zones, worked out in code: "the Sydney Opera House when it turns
midnight in London" needs the time in Sydney, which a small model gets wrong.

Cities are the place names of the IANA time zones (Europe/London, Australia/Sydney,
America/New_York, ...); the conversion is for today's date, daylight saving included.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, time
from functools import cache

REGIONS = ("Africa", "America", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
CLOCK = re.compile(
    r"\b(?:(?P<word>midnight|noon|midday)"
    r"|(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>[ap])\.?m\b\.?"
    r"|(?P<h24>\d{1,2}):(?P<m24>\d{2}))",
    re.IGNORECASE,
)


@cache
def city_zones() -> dict[str, str]:
    """City name (lowercase) -> IANA zone, for every zone named after a city."""
    zones: dict[str, str] = {}
    for zone in sorted(zoneinfo.available_timezones()):
        if zone.split("/")[0] in REGIONS:
            zones.setdefault(zone.rsplit("/", 1)[-1].replace("_", " ").lower(), zone)
    return zones


def time_zone_conclusion(request: str, today: datetime | None = None) -> str | None:
    """'It is 11:00 in Sydney (morning daylight) when it is 00:00 in London.' for a request
    that names a clock time in one city and another city to show; None otherwise."""
    cities = [
        (match.start(), city)
        for city in city_zones()
        for match in re.finditer(rf"\b{re.escape(city)}\b", request, re.IGNORECASE)
    ]
    clock = CLOCK.search(request)
    if clock is None or len({city for _, city in cities}) < 2:
        return None
    # the clock's city is the one nearest to it ("midnight in London", "London strikes
    # midnight"), the one after it on a tie; the image shows another one
    anchor = min(
        cities,
        key=lambda found: (
            found[0] - clock.end() if found[0] >= clock.end()
            else clock.start() - found[0] - len(found[1]),
            found[0] < clock.start(),
        ),
    )[1]
    shown = next(city for _, city in sorted(cities) if city != anchor)
    source, target = zoneinfo.ZoneInfo(city_zones()[anchor]), zoneinfo.ZoneInfo(city_zones()[shown])
    day = (today or datetime.now(source)).astimezone(source).date()
    there = datetime.combine(day, clock_time(clock), tzinfo=source)
    here = there.astimezone(target)
    return (
        f"It is {here:%H:%M} in {shown.title()} ({daylight(here.hour)}) when it is "
        f"{there:%H:%M} in {anchor.title()}."
    )


def clock_time(match: re.Match) -> time:
    """The time a CLOCK match names."""
    if match["word"]:
        return time(0) if match["word"].lower() == "midnight" else time(12)
    if match["h24"]:
        return time(int(match["h24"]) % 24, int(match["m24"]) % 60)
    hour = int(match["hour"]) % 12 + (12 if match["half"].lower() == "p" else 0)
    return time(hour, int(match["minute"] or 0) % 60)


def daylight(hour: int) -> str:
    """What the sky looks like at a local hour, roughly."""
    if 5 <= hour < 7:
        return "dawn"
    if 7 <= hour < 11:
        return "morning daylight"
    if 11 <= hour < 14:
        return "midday daylight"
    if 14 <= hour < 17:
        return "afternoon daylight"
    if 17 <= hour < 20:
        return "evening, around sunset"
    return "night, dark sky"
