"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

An 18-character code identifies every business and organisation in China::

    9  1  350100  M000100Y4  3
    |  |  |       |          +- check character (GB 32100, mod 31)
    |  |  |       +------------ organisation code (GB 11714: 8 characters + its own mod-11 check)
    |  |  +-------------------- administrative division code (6 digits)
    |  +----------------------- organisation type
    +-------------------------- registration authority

The characters come from ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (no I, O, S, V, Z).
"""

from __future__ import annotations

import unicodedata

import numpy as np

from geo.errors import InvalidInput

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_LENGTH = 18

_VALUE = {ch: i for i, ch in enumerate(USCC_CHARSET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIVISION = slice(2, 8)
_ORG_CODE = slice(8, 17)


def validate_uscc(code: object, *, field: str = "uscc", row: int | None = None) -> str:
    """Check a unified social credit code and return it normalised.

    Surrounding whitespace is removed, full-width characters are folded to ASCII (NFKC) and letters
    are upper-cased.

    Parameters
    ----------
    code
        The code as given (text; an integer is accepted as its decimal digits).
    field, row
        Where the value comes from, for the error.

    Returns
    -------
    str
        The 18-character code in upper case.

    Raises
    ------
    InvalidInput
        Naming the precise reason: missing, wrong length, a character outside the charset (with its
        1-based position), a non-digit in the division code, a wrong organisation-code check
        character or a wrong final check character (with the expected one).
    """

    def fail(en: str, zh: str) -> InvalidInput:
        return InvalidInput(
            f"invalid unified social credit code {code!r} in {field!r}: {en}",
            message_zh=f"字段 {field!r} 的统一社会信用代码 {code!r} 无效：{zh}",
            field=field,
            row=row,
            value=code,
        )

    if code is None:
        raise fail("missing", "缺失")
    if isinstance(code, (int, np.integer)) and not isinstance(code, bool):
        text = str(code)
    elif isinstance(code, str):
        text = unicodedata.normalize("NFKC", code).strip().upper()
    else:
        raise fail(
            f"expected text, got {type(code).__name__}",
            f"应为文本，实际为 {type(code).__name__}",
        )
    if not text:
        raise fail("empty", "为空")
    if len(text) != USCC_LENGTH:
        raise fail(
            f"has {len(text)} characters, expected {USCC_LENGTH}",
            f"长度为 {len(text)} 位，应为 {USCC_LENGTH} 位",
        )
    for pos, ch in enumerate(text, start=1):
        if ch not in _VALUE:
            raise fail(
                f"character {ch!r} at position {pos} is not allowed (allowed: {USCC_CHARSET})",
                f"第 {pos} 位的字符 {ch!r} 不合法（允许：{USCC_CHARSET}）",
            )
    division = text[_DIVISION]
    if not division.isdigit():
        raise fail(
            f"division code {division!r} (positions 3-8) must be 6 digits",
            f"第 3-8 位的行政区划码 {division!r} 必须是 6 位数字",
        )
    org = text[_ORG_CODE]
    org_expected = org_code_check_char(org[:8])
    if org[8] != org_expected:
        raise fail(
            f"organisation code {org!r} (positions 9-17) has check character {org[8]!r}, expected {org_expected!r}",
            f"第 9-17 位的组织机构代码 {org!r} 校验码为 {org[8]!r}，应为 {org_expected!r}",
        )
    expected = uscc_check_char(text[:17])
    if text[17] != expected:
        raise fail(
            f"check character (position 18) is {text[17]!r}, expected {expected!r}",
            f"第 18 位校验码为 {text[17]!r}，应为 {expected!r}",
        )
    return text


def uscc_check_char(first17: str) -> str:
    """Compute the 18th (check) character of a unified social credit code.

    Parameters
    ----------
    first17
        The first 17 characters, from ``USCC_CHARSET``.

    Returns
    -------
    str
        The check character: ``USCC_CHARSET[(31 - sum(value * 3**i mod 31)) mod 31]``.
    """
    if not isinstance(first17, str) or len(first17) != 17 or any(ch not in _VALUE for ch in first17):
        msg = f"expected 17 characters from {USCC_CHARSET}, got {first17!r}"
        raise InvalidInput(msg, message_zh=f"应为 17 位且字符取自 {USCC_CHARSET}，实际为 {first17!r}", value=first17)
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, _WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """Compute the check character of an organisation code (GB 11714).

    Parameters
    ----------
    first8
        The 8 body characters: digits and upper-case letters (a letter counts 10 + its index in A-Z).

    Returns
    -------
    str
        ``11 - sum(value * weight) mod 11`` with weights 3, 7, 9, 10, 5, 8, 4, 2; 10 is written
        ``"X"`` and 11 is written ``"0"``.
    """
    if not isinstance(first8, str) or len(first8) != 8 or any(ch not in _ORG_ALPHABET for ch in first8):
        msg = f"expected 8 digits or upper-case letters, got {first8!r}"
        raise InvalidInput(msg, message_zh=f"应为 8 位数字或大写字母，实际为 {first8!r}", value=first8)
    total = sum(_ORG_ALPHABET.index(ch) * w for ch, w in zip(first8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def make_uscc(*, registration: str = "9", org_type: str = "1", division: str, body8: str) -> str:
    """Build a valid unified social credit code.

    Parameters
    ----------
    registration
        Registration authority, one character (``"9"``: market regulation).
    org_type
        Organisation type, one character (``"1"``: enterprise, ``"2"``: individual business).
    division
        Six-digit administrative division code, e.g. ``"320106"`` (Nanjing, Gulou).
    body8
        The 8 body characters of the organisation code (from ``USCC_CHARSET``).

    Returns
    -------
    str
        The 18-character code; it passes `validate_uscc`.
    """
    for name, value, length in (("registration", registration, 1), ("org_type", org_type, 1)):
        if not isinstance(value, str) or len(value) != length or value not in _VALUE:
            msg = f"{name} must be one character from {USCC_CHARSET}, got {value!r}"
            raise InvalidInput(
                msg,
                message_zh=f"{name} 必须是取自 {USCC_CHARSET} 的单个字符，实际为 {value!r}",
                field=name,
                value=value,
            )
    if not isinstance(division, str) or len(division) != 6 or any(ch not in "0123456789" for ch in division):
        msg = f"division must be 6 digits, got {division!r}"
        raise InvalidInput(
            msg,
            message_zh=f"行政区划码必须是 6 位数字，实际为 {division!r}",
            field="division",
            value=division,
        )
    if not isinstance(body8, str) or len(body8) != 8 or any(ch not in _VALUE for ch in body8):
        msg = f"body8 must be 8 characters from {USCC_CHARSET}, got {body8!r}"
        raise InvalidInput(
            msg,
            message_zh=f"body8 必须是 8 位且字符取自 {USCC_CHARSET}，实际为 {body8!r}",
            field="body8",
            value=body8,
        )
    first17 = registration + org_type + division + body8 + org_code_check_char(body8)
    return first17 + uscc_check_char(first17)
