"""Clock times across time zones, worked out in code: "the Sydney Opera House when it turns
midnight in London" needs the time in Sydney, which a small model gets wrong.

Cities are the place names of the IANA time zones (Europe/London, Australia/Sydney,
America/New_York, ...); the conversion is for today's date, daylight saving included.
"""

from __future__ import annotations

import re
import string
import zoneinfo
from datetime import datetime, time
from functools import cache

REGIONS = ("Africa", "America", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
# Zone names that are everyday words more often than places ("Australia/West", "Indian/Christmas").
NOT_CITIES = frozenset({"west", "north", "south", "east", "easter", "christmas", "wake", "midway",
                        "center", "knox", "acre", "general", "victoria", "canberra"})
# Large cities that no zone is named after, and the zone whose clock they keep.
CITY_ALIASES = {
    "mumbai": "Asia/Kolkata", "bombay": "Asia/Kolkata", "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata", "bangalore": "Asia/Kolkata", "bengaluru": "Asia/Kolkata",
    "chennai": "Asia/Kolkata", "agra": "Asia/Kolkata", "varanasi": "Asia/Kolkata",
    "beijing": "Asia/Shanghai", "xi'an": "Asia/Shanghai", "kyoto": "Asia/Tokyo",
    "osaka": "Asia/Tokyo", "rio de janeiro": "America/Sao_Paulo", "rio": "America/Sao_Paulo",
    "washington": "America/New_York", "boston": "America/New_York",
    "miami": "America/New_York", "philadelphia": "America/New_York",
    "san francisco": "America/Los_Angeles", "seattle": "America/Los_Angeles",
    "las vegas": "America/Los_Angeles", "houston": "America/Chicago",
    "new orleans": "America/Chicago", "montreal": "America/Toronto",
    "edinburgh": "Europe/London", "manchester": "Europe/London", "milan": "Europe/Rome",
    "venice": "Europe/Rome", "florence": "Europe/Rome", "barcelona": "Europe/Madrid",
    "munich": "Europe/Berlin", "frankfurt": "Europe/Berlin", "st petersburg": "Europe/Moscow",
    "giza": "Africa/Cairo", "cape town": "Africa/Johannesburg", "marrakesh": "Africa/Casablanca",
    "abu dhabi": "Asia/Dubai", "mecca": "Asia/Riyadh", "hanoi": "Asia/Bangkok",
    "siem reap": "Asia/Phnom_Penh", "cusco": "America/Lima",
}
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
MONTH = re.compile(rf"\bin\s+(?:early\s+|mid-?\s*|late\s+)?({'|'.join(MONTHS)})\b", re.IGNORECASE)
# "New Yorkers", "Londoners", "Parisians", "Sydneysiders" keep their city's clock.
PEOPLE_SUFFIX = r"(?:ers?|ians?|ites?|siders?)?"
CLOCK = re.compile(
    r"\b(?:(?P<word>midnight|noon|midday)"
    r"|(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>[ap])\.?m\b\.?"
    r"|(?P<h24>\d{1,2}):(?P<m24>\d{2}))",
    re.IGNORECASE,
)


@cache
def city_zones() -> dict[str, str]:
    """City name (lowercase) -> IANA zone, for every zone named after a city, and the aliases."""
    zones: dict[str, str] = {}
    for zone in sorted(zoneinfo.available_timezones()):
        city = zone.rsplit("/", 1)[-1].replace("_", " ").lower()
        if zone.split("/")[0] in REGIONS and city not in NOT_CITIES:
            zones.setdefault(city, zone)
    return zones | CITY_ALIASES


def cities_in(text: str, proper_nouns_only: bool = False) -> list[tuple[int, int, str, str]]:
    """(start, end, city, as spelled) for each city a text names, the longest name where they
    overlap ("Rio de Janeiro", not "Rio"); with `proper_nouns_only`, only capitalised mentions."""
    found: list[tuple[int, int, str, str]] = []
    for city in sorted(city_zones(), key=len, reverse=True):
        for match in re.finditer(rf"\b{re.escape(city)}{PEOPLE_SUFFIX}\b", text, re.IGNORECASE):
            end = match.start() + len(city)
            overlaps = any(
                start < match.end() and match.start() < stop for start, stop, *_ in found
            )
            if not overlaps and not (proper_nouns_only and not match.group()[:1].isupper()):
                found.append((match.start(), end, city, text[match.start() : end]))
    return sorted(found)


def time_zone_conclusion(
    request: str, today: datetime | None = None, place_text: str = ""
) -> str | None:
    """'It is 11:00 in Sydney (morning daylight) when it is 00:00 in London.' for a request
    that names a clock time in one city and another place to show: a second city it names, or
    else the first city `place_text` (the source about what is shown) names. A month named in
    the request ("in July") sets the date; otherwise it is today's. None when there is no
    clock time or no second city."""
    clock = CLOCK.search(request)
    cities = cities_in(request)
    if clock is None or not cities:
        return None
    # the clock's city is the one nearest to it ("midnight in London", "London strikes
    # midnight"), the one after it on a tie; the image shows another one
    *_, anchor, anchor_spelled = min(
        cities,
        key=lambda found: (
            found[0] - clock.end() if found[0] >= clock.end() else clock.start() - found[1],
            found[0] < clock.start(),
        ),
    )
    others = [found for found in cities if city_zones()[found[2]] != city_zones()[anchor]]
    others = others or [
        found for found in cities_in(place_text, proper_nouns_only=True) if found[2] != anchor
    ]
    if not others:
        return None
    *_, shown, shown_spelled = others[0]
    source, target = zoneinfo.ZoneInfo(city_zones()[anchor]), zoneinfo.ZoneInfo(city_zones()[shown])
    day = (today or datetime.now(source)).astimezone(source).date()
    month = MONTH.search(request)
    if month:
        day = day.replace(month=MONTHS.index(month.group(1).lower()) + 1, day=15)
    there = datetime.combine(day, clock_time(clock), tzinfo=source)
    here = there.astimezone(target)
    return (
        f"It is {here:%H:%M} in {place_name(shown_spelled)} ({daylight(here.hour)}) when it is "
        f"{there:%H:%M} in {place_name(anchor_spelled)}."
    )


def place_name(spelled: str) -> str:
    """A city as the text spelled it, capitalised when it was all lower case."""
    return string.capwords(spelled) if spelled.islower() else spelled


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
