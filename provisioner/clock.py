"""Time, one way: aware UTC datetimes everywhere (SQLite gives naive ones back: ``aware`` reads them as UTC)."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """``value`` as an aware datetime: a naive one (SQLite's) is UTC; None stays None."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
