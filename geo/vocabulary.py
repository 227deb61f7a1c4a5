"""The domain's fixed vocabularies (DESIGN "Business categories" and "Domain model")."""

from __future__ import annotations

#: The canonical business categories, in DESIGN's order.
CATEGORIES: tuple[str, ...] = (
    "internet_cafe",
    "entertainment",
    "bar",
    "lottery",
    "tobacco",
    "alcohol",
    "food_stall",
    "polluter",
    "hazardous",
    "other",
)
