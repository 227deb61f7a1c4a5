"""Mapping outside vocabularies (OpenStreetMap tags and names) into safezone business categories.

The mapping is data: ``data/mappings/osm_categories.yaml`` lists ordered rules (tag matches, name
keywords, and the traps — 酒店 is a hotel, a KTV tagged ``amenity=bar`` is entertainment). This module
validates that file into frozen pydantic models and evaluates it; it holds no category or keyword
itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geo.errors import MappingError

DEFAULT_MAPPING_PATH = Path(__file__).resolve().parent.parent / "data" / "mappings" / "osm_categories.yaml"


class MappingRule(BaseModel):
    """One ordered rule of a category mapping.

    A rule matches when every ``tags`` entry matches (``"*"`` = any value, a list = any of these
    values), the name contains one of ``name_any`` (if given) and none of ``name_none``. It then adds
    ``add`` and removes ``remove``; ``final`` stops the evaluation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    note: str | None = None
    tags: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)
    name_any: tuple[str, ...] = ()
    name_none: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    final: bool = False

    @field_validator("name_any", "name_none")
    @classmethod
    def _no_empty_keyword(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not str(key).strip() for key in value):
            msg = f"empty name keyword in {list(value)!r}"
            raise ValueError(msg)
        return tuple(key.lower() for key in value)

    @model_validator(mode="after")
    def _has_condition_and_effect(self) -> MappingRule:
        if not self.tags and not self.name_any:
            msg = "a rule needs `tags` or `name_any` (it would match every feature)"
            raise ValueError(msg)
        if not self.add and not self.remove and not self.final:
            msg = "a rule needs `add`, `remove` or `final` (it would have no effect)"
            raise ValueError(msg)
        return self

    def matches(self, tags: Mapping[str, str], name: str) -> bool:
        """Whether this rule applies to a feature with ``tags`` and lower-cased ``name``."""
        for key, expected in self.tags.items():
            value = tags.get(key)
            if value is None:
                return False
            if expected == "*":
                continue
            wanted = (expected,) if isinstance(expected, str) else expected
            if not set(_split(value)) & set(wanted):
                return False
        if self.name_any and not any(key in name for key in self.name_any):
            return False
        return not any(key in name for key in self.name_none)


class CategoryMapping(BaseModel):
    """A validated category mapping: the canonical categories and the ordered rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    source: str
    categories: tuple[str, ...] = Field(min_length=1)
    rules: tuple[MappingRule, ...] = Field(min_length=1)
    path: str | None = None

    @model_validator(mode="after")
    def _known_categories(self) -> CategoryMapping:
        known = set(self.categories)
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                msg = f"rules[{index}] ({rule.id}): duplicate rule id {rule.id!r}"
                raise ValueError(msg)
            seen.add(rule.id)
            unknown = [cat for cat in (*rule.add, *rule.remove) if cat not in known]
            if unknown:
                msg = f"rules[{index}] ({rule.id}): unknown category {unknown[0]!r}; known: {sorted(known)}"
                raise ValueError(msg)
        return self

    def classify(self, tags: Mapping[str, str], name: str | None = None) -> tuple[str, ...]:
        """Categories of a feature.

        Parameters
        ----------
        tags
            The feature's OSM tags.
        name
            Its name; defaults to ``tags["name"]``. ``name:zh`` from the tags is read too.

        Returns
        -------
        tuple of str
            The sorted categories; empty when the feature is in none.
        """
        names = [name, tags.get("name"), tags.get("name:zh")]
        text = " ".join(dict.fromkeys(n for n in names if n)).lower()
        found: set[str] = set()
        for rule in self.rules:
            if rule.matches(tags, text):
                found.update(rule.add)
                found.difference_update(rule.remove)
                if rule.final:
                    break
        return tuple(sorted(found))


def load_mapping(path: Path | None = None) -> CategoryMapping:
    """Load and validate a category mapping YAML file.

    Parameters
    ----------
    path
        The YAML file; defaults to ``data/mappings/osm_categories.yaml`` in the repository.

    Returns
    -------
    CategoryMapping
        The validated mapping.

    Raises
    ------
    MappingError
        If the file cannot be read, is not YAML, or does not validate; the message names the file and
        the entry.
    """
    path = Path(path) if path is not None else DEFAULT_MAPPING_PATH
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read category mapping {str(path)!r}: {exc.strerror}"
        raise MappingError(
            msg, message_zh=f"无法读取类别映射文件 {str(path)!r}：{exc.strerror}", value=str(path)
        ) from exc
    except yaml.YAMLError as exc:
        msg = f"category mapping {str(path)!r} is not valid YAML: {exc}"
        raise MappingError(
            msg, message_zh=f"类别映射文件 {str(path)!r} 不是有效的 YAML：{exc}", value=str(path)
        ) from exc
    if not isinstance(raw, dict):
        msg = f"category mapping {str(path)!r} must be a mapping at the top level, got {type(raw).__name__}"
        zh = f"类别映射文件 {str(path)!r} 顶层必须是映射（键值对），实际为 {type(raw).__name__}"
        raise MappingError(msg, message_zh=zh, value=str(path))
    try:
        return CategoryMapping.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _location(raw, err["loc"])
        detail = err["msg"]
        bad = err.get("input")
        msg = f"category mapping {str(path)!r}, entry {where}: {detail} (value {bad!r})"
        zh = f"类别映射文件 {str(path)!r} 的条目 {where} 无效：{detail}（值 {bad!r}）"
        raise MappingError(msg, message_zh=zh, field=where, value=bad) from exc


def _location(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location, naming the rule by its id where possible."""
    parts: list[str] = []
    for index, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
            if index == 1 and loc[0] == "rules":
                rules = raw.get("rules")
                if isinstance(rules, list) and item < len(rules) and isinstance(rules[item], dict):
                    parts[-1] += f" ({rules[item].get('id')})"
        else:
            parts.append(str(item))
    return ".".join(parts) if parts else "<file>"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";")]
