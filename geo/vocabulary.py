"""The domain's fixed vocabularies (DESIGN "Business categories" and "Domain model")."""

from __future__ import annotations

from typing import Literal, get_args

#: A business category (the type request models and the mapping files validate against).
Category = Literal[
    "internet_cafe", "entertainment", "bar", "lottery", "tobacco", "alcohol", "food_stall", "polluter", "hazardous",
    "other",
]  # fmt: skip
#: The canonical business categories, in DESIGN's order.
CATEGORIES: tuple[str, ...] = get_args(Category)

#: A coordinate system a request or a file may state (DESIGN "Coordinates").
Crs = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
