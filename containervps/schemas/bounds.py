"""The bounds of every input, as ``Annotated`` types the routes and the schema families share.

A value is bounded where it enters, to what stores and carries it: SQLite's 64-bit INTEGER,
LXD's config parsers (64-bit byte counts), Python's ``datetime`` (years 1-9999) and UTF-8. Out
of bounds is a 422 naming the field and the allowed range, never a 500 or an LXD message from
deeper down.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "EARLIEST",
    "ID",
    "LATEST",
    "MAX_ID",
    "MAX_NAME",
    "MAX_PAGE",
    "MAX_PER_PAGE",
    "Between",
    "Encodable",
    "Id",
    "Instant",
    "Line",
    "Month",
    "Name",
    "Page",
    "PerPage",
    "Short",
    "Text",
    "as_id",
    "check_line",
    "check_month",
    "check_name",
]

MAX_ID = 2**63 - 1  # SQLite's INTEGER: no row has a larger id
MAX_PAGE = 1_000_000  # 100 million rows at the largest per_page; the offset stays an int64
MAX_PER_PAGE = 100
MAX_NAME = 63  # names become hostnames, LXD object names and authorized_keys comments

# Times: from the epoch (no platform data is older) to the start of year 9999, so a window or
# a month end computed from any accepted value is still a datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
FIRST_MONTH, LAST_MONTH = "1970-01", "9998-12"


@dataclass(frozen=True)
class Between:
    """``Annotated`` metadata: an integer from ``low`` to ``high``; out of range is one error
    naming both ends (pydantic's ``ge``/``le`` name only the end that was crossed)."""

    low: int
    high: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minimum=self.low, maximum=self.high)
        return json_schema

    def check(self, value: int) -> int:
        """``value`` if in range, else the out_of_range error."""
        if not self.low <= value <= self.high:
            raise PydanticCustomError(
                "out_of_range",
                "must be an integer from {min} to {max}",
                {"min": self.low, "max": self.high},
            )
        return value


def _encodable(value: str) -> str:
    # JSON can spell a lone surrogate ("\ud800"); UTF-8 cannot carry it, so it could be neither
    # stored nor echoed back in an error.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            "string_unicode",
            "must be valid Unicode text (a lone surrogate at character {position})",
            {"position": exc.start},
        ) from None
    return value


def _no_controls(value: str, *, allowed: str) -> str:
    _encodable(value)
    for position, char in enumerate(value):
        if unicodedata.category(char) == "Cc" and char not in allowed:
            raise PydanticCustomError(
                "string_control_character",
                "must not contain control characters (U+{code} at character {position})",
                {"code": f"{ord(char):04X}", "position": position},
            )
    return value


def check_line(value: str) -> str:
    """``value`` if it is valid Unicode text without control characters."""
    return _no_controls(value, allowed="")


def _text(value: str) -> str:
    return _no_controls(value, allowed="\t\n\r")


Encodable = Annotated[str, AfterValidator(_encodable)]  # any text UTF-8 can carry
Text = Annotated[str, AfterValidator(_text)]  # of the control characters only tab, CR and LF
Line = Annotated[str, AfterValidator(check_line)]  # one line: no control characters at all
Short = Annotated[str, StringConstraints(max_length=MAX_NAME), AfterValidator(check_line)]


def check_name(value: str) -> str:
    """``value`` if it is one line of 1 to MAX_NAME characters (services check the pattern)."""
    if not 1 <= len(value) <= MAX_NAME:
        raise PydanticCustomError(
            "string_length", "must be 1 to {max} characters", {"min": 1, "max": MAX_NAME}
        )
    return check_line(value)


Name = Annotated[
    str,
    AfterValidator(check_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_NAME}),
]

ID = Between(1, MAX_ID)
Id = Annotated[int, ID]
Page = Annotated[int, Between(1, MAX_PAGE)]
PerPage = Annotated[int, Between(1, MAX_PER_PAGE)]


def check_month(value: str) -> str:
    """``value`` if it is a month YYYY-MM from FIRST_MONTH to LAST_MONTH (a ValueError if not)."""
    # Zero-padded YYYY-MM strings compare in time order.
    if not MONTH.fullmatch(value) or not FIRST_MONTH <= value <= LAST_MONTH:
        raise PydanticCustomError(
            "month",
            "must be a month YYYY-MM from {first} to {last}",
            {"first": FIRST_MONTH, "last": LAST_MONTH},
        )
    return value


def _instant(value: datetime) -> datetime:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)  # naive times are UTC
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise PydanticCustomError(
            "datetime_range",
            "must be a time from {min} to {max}",
            {"min": "1970-01-01T00:00:00Z", "max": "9999-01-01T00:00:00Z"},
        )
    return utc


Month = Annotated[
    str,
    AfterValidator(check_month),
    WithJsonSchema({"type": "string", "pattern": f"^{MONTH.pattern}$", "examples": ["2026-12"]}),
]
Instant = Annotated[datetime, AfterValidator(_instant)]  # returned in UTC


def as_id(ref: str) -> int | None:
    """The id ``ref`` spells (ASCII digits, in range), or None: CLI refs are ids or names."""
    if ref.isascii() and ref.isdigit() and len(ref) <= len(str(MAX_ID)) and 1 <= int(ref) <= MAX_ID:
        return int(ref)
    return None
