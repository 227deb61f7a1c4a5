"""The exception family of safezone.

Every layer raises these; ``service/errors.py`` maps them to RFC 9457 problem+json responses in one
place (status code by class). Each error may name the ``field``, ``row`` and ``value`` it is about and
carries an English and a Chinese message.
"""

from __future__ import annotations

from typing import Any


class SafezoneError(Exception):
    """Base class: a problem the caller can act on.

    Parameters
    ----------
    message_en
        What went wrong, in English; names the bad value.
    message_zh
        The same in Chinese. Defaults to the English text.
    field, row, value
        Where the problem is: the input field (or column), the 1-based data row of a file, the bad value.
    """

    title = "Invalid request"

    def __init__(
        self,
        message_en: str,
        *,
        message_zh: str | None = None,
        field: str | None = None,
        row: int | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh or message_en
        self.field = field
        self.row = row
        self.value = value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message_en": self.message_en, "message_zh": self.message_zh}
        for key in ("field", "row", "value"):
            val = getattr(self, key)
            if val is not None:
                out[key] = val if isinstance(val, (int, float, str, bool)) else str(val)
        return out


class InvalidInput(SafezoneError):
    """Input that cannot be accepted (HTTP 422, CLI exit 2)."""

    title = "Invalid input"


class CoordinateError(InvalidInput):
    """A coordinate out of range, swapped, not finite, or without its coordinate system."""

    title = "Invalid coordinate"


class GeometryError(InvalidInput):
    """An empty, invalid or self-intersecting geometry."""

    title = "Invalid geometry"


class RulePackError(SafezoneError):
    """A rule pack that does not validate; names the file, the rule and the field."""

    title = "Invalid rule pack"


class MappingError(SafezoneError):
    """A category mapping (YAML) that does not validate."""

    title = "Invalid category mapping"


class NotFound(SafezoneError):
    title = "Not found"


class Conflict(SafezoneError):
    title = "Conflict"


class Forbidden(SafezoneError):
    title = "Forbidden"


class Unavailable(SafezoneError):
    """A dependency (the database) is not available right now."""

    title = "Service unavailable"


class TooLarge(SafezoneError):
    """A request over a size limit: too many sites in a batch, too many rows (HTTP 413)."""

    title = "Request too large"
