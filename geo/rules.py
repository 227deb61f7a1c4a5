"""Rule packs: YAML under ``data/rules/`` validated into frozen pydantic models.

A pack belongs to a jurisdiction (``national`` or a six-digit adcode). Packs layer national → province
(``XX0000``) → city (``XXXX00``) → the adcode itself: a more local rule with the same id replaces the
wider one, a pack may add rules and may disable an inherited one (``{id: ..., disabled: true}``), and it
may never go below a rule's ``statutory_min_m`` (the loader refuses). No distance or category lives in
code: the vocabularies below are the only constants. A pack may also set the ledger's overdue ladder
(``escalation``: who hears of a case still open, and when); the most local pack that sets one wins, else
:data:`DEFAULT_ESCALATION`.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geo.errors import InvalidInput, RulePackError
from geo.vocabulary import CATEGORIES as _CATEGORY_ORDER

__all__ = [
    "APPLICATIONS",
    "CATEGORIES",
    "DEFAULT_ESCALATION",
    "LEVELS",
    "EscalationLevel",
    "LegalBasis",
    "Rule",
    "RulePack",
    "RuleRegistry",
    "RulesInForce",
    "StaffingRule",
]

#: Canonical business categories (DESIGN "Business categories").
CATEGORIES: frozenset[str] = frozenset(_CATEGORY_ORDER)
#: School levels a rule may protect (aliases such as ``nine_year`` are expanded before they get here).
LEVELS: frozenset[str] = frozenset({"kindergarten", "primary", "junior", "senior", "vocational", "special"})
#: Kinds of application a rule may block.
APPLICATIONS: frozenset[str] = frozenset({"new", "relocation", "expansion", "renewal"})

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "data" / "rules"
_SHANGHAI = ZoneInfo("Asia/Shanghai")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_DEPARTMENT_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_ADCODE = re.compile(r"^[1-9][0-9]{5}$")
# How far each measuring choice can only lengthen a distance: boundary ≤ gates, footprint ≤ location,
# straight ≤ walking. A local rule replacing a statutory one may not pick a longer-measuring option.
_LONGER = {"measure_from": ("boundary", "gates"), "measure_to": ("footprint", "location")}
_LONGER_METRIC = ("straight", "walking")


_FIELD_TAG = re.compile(r"^\[(?P<field>[\w.]+)\] ")


def _field_error(field: str, msg: str) -> ValueError:
    """A model-level validation error that still names its field (see :func:`_from_validation`)."""
    return ValueError(f"[{field}] {msg}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LegalBasis(_Frozen):
    """The article's exact text and its citation."""

    text: str = Field(min_length=1)
    citation: str = Field(min_length=1)


def _check_jurisdiction(value: str) -> str:
    if value != "national" and not _ADCODE.match(value):
        msg = f"jurisdiction must be 'national' or a 6-digit adcode, got {value!r}"
        raise ValueError(msg)
    return value


def _check_departments(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not _DEPARTMENT_ID.match(value):
            msg = f"department ids are lower_snake_case, got {value!r}"
            raise ValueError(msg)
    return values


class Rule(_Frozen):
    """One zone rule: which category, how far, measured how, protecting which levels."""

    id: str
    category: str
    distance_m: float | None = None
    distance_source: Literal["business"] | None = None
    measure_from: Literal["boundary", "gates"]
    measure_to: Literal["location", "footprint"]
    metric: Literal["straight", "walking"]
    levels: tuple[str, ...] = Field(min_length=1)
    applies_to: tuple[str, ...] = Field(min_length=1)
    existing: Literal["indefinite", "not_renewed", "prohibited"]
    effective_from: date
    jurisdiction: str
    lead_department: str
    cooperating_departments: tuple[str, ...] = ()
    legal_basis: LegalBasis
    confirmed: bool = False
    statutory_min_m: float | None = Field(default=None, gt=0)
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            msg = f"rule ids are dotted lower_snake_case, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("category")
    @classmethod
    def _category_ok(cls, value: str) -> str:
        if value not in CATEGORIES:
            msg = f"unknown category {value!r}; expected one of {sorted(CATEGORIES)}"
            raise ValueError(msg)
        return value

    @field_validator("levels")
    @classmethod
    def _levels_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [lv for lv in value if lv not in LEVELS]
        if bad:
            msg = f"unknown level(s) {bad}; expected a list drawn from {sorted(LEVELS)}"
            raise ValueError(msg)
        if len(set(value)) != len(value):
            msg = f"duplicate levels in {list(value)}"
            raise ValueError(msg)
        return value

    @field_validator("applies_to")
    @classmethod
    def _applies_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in value if a not in APPLICATIONS]
        if bad:
            msg = f"unknown application kind(s) {bad}; expected a list drawn from {sorted(APPLICATIONS)}"
            raise ValueError(msg)
        return value

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction_ok(cls, value: str) -> str:
        return _check_jurisdiction(value)

    @field_validator("lead_department")
    @classmethod
    def _lead_ok(cls, value: str) -> str:
        return _check_departments((value,))[0]

    @field_validator("cooperating_departments")
    @classmethod
    def _coop_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_departments(value)

    @model_validator(mode="after")
    def _distance_ok(self) -> Rule:
        if self.distance_source == "business":
            if self.distance_m is not None:
                msg = "give either distance_m or distance_source: business, not both"
                raise _field_error("distance_m", msg)
        elif self.distance_m is None or not self.distance_m > 0 or self.distance_m == float("inf"):
            msg = f"must be finite and > 0 (or distance_source: business), got {self.distance_m}"
            raise _field_error("distance_m", msg)
        if self.statutory_min_m is not None and self.distance_m is not None and self.distance_m < self.statutory_min_m:
            msg = f"{self.distance_m} is below statutory_min_m {self.statutory_min_m}"
            raise _field_error("distance_m", msg)
        return self


_STAFFING_PARAMS: dict[str, frozenset[str]] = {
    "guilin_bands": frozenset(
        {
            "small_headcount_below",
            "small_guards",
            "medium_headcount_max",
            "medium_guards",
            "students_base",
            "students_step",
            "boarding_min_guards",
            "boarders_step",
        }
    ),
    "per_school_minimum": frozenset({"minimum"}),
}


class StaffingRule(_Frozen):
    """A staffing rule (guards per school), a rule kind of its own; see :mod:`geo.staffing`."""

    id: str
    kind: Literal["guilin_bands", "per_school_minimum"]
    params: dict[str, int]
    effective_from: date
    jurisdiction: str
    lead_department: str
    cooperating_departments: tuple[str, ...] = ()
    legal_basis: LegalBasis
    confirmed: bool = False
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, value: str) -> str:
        return Rule._id_ok(value)

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction_ok(cls, value: str) -> str:
        return _check_jurisdiction(value)

    @model_validator(mode="after")
    def _params_ok(self) -> StaffingRule:
        expected = _STAFFING_PARAMS[self.kind]
        if set(self.params) != expected:
            msg = f"params for kind {self.kind!r} must be exactly {sorted(expected)}, got {sorted(self.params)}"
            raise ValueError(msg)
        bad = {k: v for k, v in self.params.items() if v < 0 or (k.endswith("_step") and v == 0)}
        if bad:
            msg = f"params must be >= 0 and steps > 0, got {bad}"
            raise _field_error("params", msg)
        return self


#: Placeholders an escalation recipient's name may hold: the case's district name and its lead department.
_RECIPIENT_FIELDS = frozenset({"district", "lead_department"})


class EscalationLevel(_Frozen):
    """One level of the overdue ladder: who hears of a case still open, and when.

    Level 1 is raised the day after the deadline (``after_working_days`` 0); level n > 1 is raised when
    the case is still open ``after_working_days`` working days (China's calendar) after level n − 1 was.
    ``recipient_zh`` may name ``{district}`` (the case's district, e.g. 秀峰区) and ``{lead_department}``.
    """

    level: int = Field(ge=1, le=9)
    after_working_days: int = Field(default=0, ge=0, le=250)
    recipient: str
    recipient_zh: str = Field(min_length=1, max_length=100)

    @field_validator("recipient")
    @classmethod
    def _recipient_ok(cls, value: str) -> str:
        return _check_departments((value,))[0]

    @field_validator("recipient_zh")
    @classmethod
    def _recipient_zh_ok(cls, value: str) -> str:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            msg = f"{value!r} is not a valid name template: {exc}"
            raise ValueError(msg) from None
        unknown = sorted(names - _RECIPIENT_FIELDS)
        if unknown:
            msg = f"unknown placeholder(s) {unknown}; a name may use {sorted(_RECIPIENT_FIELDS)}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _first_level_at_the_deadline(self) -> EscalationLevel:
        if self.level == 1 and self.after_working_days != 0:
            raise _field_error("after_working_days", "level 1 is raised when the deadline passes: give 0")
        if self.level > 1 and self.after_working_days < 1:
            msg = f"level {self.level} needs after_working_days >= 1, got {self.after_working_days}"
            raise _field_error("after_working_days", msg)
        return self

    def recipient_name(self, *, district: str | None, lead_department: str | None) -> str:
        """The recipient's name for one case (``所在区县`` when the district is not known)."""
        return self.recipient_zh.format(district=district or "所在区县", lead_department=lead_department or "牵头部门")


#: The ladder when no pack sets one: the lead department when the deadline passes; the district
#: government (区县人民政府) when the case is still open five working days later.
DEFAULT_ESCALATION: tuple[EscalationLevel, ...] = (
    EscalationLevel(level=1, recipient="lead_department", recipient_zh="{lead_department}"),
    EscalationLevel(level=2, after_working_days=5, recipient="district_government", recipient_zh="{district}人民政府"),
)


def _check_ladder(levels: tuple[EscalationLevel, ...]) -> tuple[EscalationLevel, ...]:
    numbers = [lv.level for lv in levels]
    if levels and numbers != list(range(1, len(levels) + 1)):
        msg = f"escalation levels must be numbered 1, 2, … in order, got {numbers}"
        raise ValueError(msg)
    return levels


class RulePack(_Frozen):
    """One validated pack file."""

    jurisdiction: str
    name: str
    parent: str | None = None
    departments: dict[str, str] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    disabled: tuple[str, ...] = ()
    staffing: tuple[StaffingRule, ...] = ()
    escalation: tuple[EscalationLevel, ...] = ()
    source: str = ""

    def canonical(self) -> dict[str, Any]:
        """The pack's content without its file path (what the registry version hashes); a pack that sets
        no escalation ladder hashes as it did before ladders existed."""
        exclude = {"source"} if self.escalation else {"source", "escalation"}
        return self.model_dump(mode="json", exclude=exclude)


@dataclass(frozen=True)
class RulesInForce:
    """The rules that apply to one site: after layering, disabling and the date filter."""

    rules: tuple[Rule, ...]
    staffing: tuple[StaffingRule, ...]
    packs: tuple[str, ...]
    flags: tuple[str, ...] = ()
    #: The overdue ladder: the most local pack's that sets one, else :data:`DEFAULT_ESCALATION`.
    escalation: tuple[EscalationLevel, ...] = DEFAULT_ESCALATION


class _PackHeader(_Frozen):
    jurisdiction: str
    name: str = Field(min_length=1)
    parent: str | None = None
    departments: dict[str, str] = Field(default_factory=dict)
    rules: list[Any] = Field(default_factory=list)
    staffing: list[Any] = Field(default_factory=list)
    escalation: tuple[EscalationLevel, ...] = ()

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction_ok(cls, value: str) -> str:
        return _check_jurisdiction(value)

    @field_validator("escalation")
    @classmethod
    def _escalation_ok(cls, value: tuple[EscalationLevel, ...]) -> tuple[EscalationLevel, ...]:
        return _check_ladder(value)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(DEFAULT_DIRECTORY.parent.parent))
    except ValueError:
        return str(path)


def _pack_error(file: str, rule_id: str | None, field: str | None, problem: str, value: Any = None) -> RulePackError:
    where_en = f"{file}"
    where_zh = f"规则包 {file}"
    if rule_id is not None:
        where_en += f": rule {rule_id!r}"
        where_zh += f"：规则 '{rule_id}'"
    if field is not None:
        where_en += f": field {field!r}"
        where_zh += f"：字段 '{field}'"
    return RulePackError(
        f"{where_en}: {problem}",
        message_zh=f"{where_zh}：校验失败（{problem}）",
        field=field,
        value=value,
    )


def _from_validation(file: str, rule_id: str | None, exc: ValidationError, prefix: str = "") -> RulePackError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or None)
    problem = err["msg"].removeprefix("Value error, ")
    tagged = _FIELD_TAG.match(problem)
    if tagged:
        field = f"{prefix}{loc + '.' if loc else ''}{tagged['field']}"
        problem = problem[tagged.end() :]
    value = err.get("input")
    if isinstance(value, Mapping):
        value = None
    else:
        problem += f" (value: {value!r})"
    return _pack_error(file, rule_id, field, problem, value)


def _parse_entries(
    file: str, entries: list[Any], model: type[Rule] | type[StaffingRule], jurisdiction: str, section: str
) -> tuple[list[Any], list[str]]:
    parsed: list[Any] = []
    disabled: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(entries):
        if not isinstance(raw, Mapping):
            raise _pack_error(file, None, f"{section}[{i}]", f"each entry must be a mapping, got {raw!r}", raw)
        rule_id = raw.get("id")
        label = str(rule_id) if rule_id is not None else f"{section}[{i}]"
        if rule_id in seen:
            raise _pack_error(file, label, "id", f"duplicate id {rule_id!r} in one pack", rule_id)
        if raw.get("disabled") is True:
            extra = set(raw) - {"id", "disabled", "note"}
            if extra:
                raise _pack_error(file, label, sorted(extra)[0], "a disabled entry holds only id, disabled and note")
            if not isinstance(rule_id, str):
                raise _pack_error(file, label, "id", f"disabled entry needs a rule id, got {rule_id!r}", rule_id)
            disabled.append(rule_id)
            seen.add(rule_id)
            continue
        raw = dict(raw)
        if isinstance(raw.get("jurisdiction"), int) and not isinstance(raw["jurisdiction"], bool):
            raw["jurisdiction"] = str(raw["jurisdiction"])  # an unquoted adcode in YAML
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            raise _from_validation(file, label, exc) from None
        if item.jurisdiction != jurisdiction:
            raise _pack_error(
                file,
                label,
                "jurisdiction",
                f"rule jurisdiction {item.jurisdiction!r} differs from the pack's {jurisdiction!r}",
                item.jurisdiction,
            )
        seen.add(item.id)
        parsed.append(item)
    return parsed, disabled


def _load_pack(path: Path) -> RulePack:
    file = _display(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _pack_error(file, None, None, f"cannot read YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise _pack_error(file, None, None, f"a pack is a mapping, got {type(data).__name__}", data)
    # YAML reads 450300 as an int: accept it as the adcode string it means.
    data = dict(data)
    for key in ("jurisdiction", "parent"):
        if isinstance(data.get(key), int):
            data[key] = str(data[key])
    try:
        header = _PackHeader.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(file, None, exc) from None
    rules, disabled = _parse_entries(file, header.rules, Rule, header.jurisdiction, "rules")
    staffing, disabled_staff = _parse_entries(file, header.staffing, StaffingRule, header.jurisdiction, "staffing")
    if header.parent is not None and not _is_ancestor(header.parent, header.jurisdiction):
        raise _pack_error(
            file,
            None,
            "parent",
            f"parent {header.parent!r} is not a wider jurisdiction of {header.jurisdiction!r}",
            header.parent,
        )
    return RulePack(
        jurisdiction=header.jurisdiction,
        name=header.name,
        parent=header.parent,
        departments=header.departments,
        rules=tuple(rules),
        disabled=tuple(disabled + disabled_staff),
        staffing=tuple(staffing),
        escalation=header.escalation,
        source=file,
    )


def _chain(adcode: str) -> list[str]:
    """Jurisdictions from the widest to the adcode itself: national, XX0000, XXXX00, adcode."""
    out = ["national"]
    for candidate in (adcode[:2] + "0000", adcode[:4] + "00", adcode):
        if candidate not in out:
            out.append(candidate)
    return out


def _is_ancestor(parent: str, child: str) -> bool:
    return parent != child and (parent == "national" or (child != "national" and parent in _chain(child)))


def _check_floor(pack: RulePack, wider: Rule, local: Rule | None) -> None:
    """Refuse a local rule (or a disabling, ``local=None``) that goes below the wider statutory floor."""
    floor = wider.statutory_min_m
    if floor is None:
        return
    if local is None:
        raise _pack_error(
            pack.source,
            wider.id,
            "disabled",
            f"cannot disable a rule with statutory_min_m {floor} m (set by {wider.jurisdiction})",
            True,
        )
    if local.distance_m is None or local.distance_m < floor:
        raise _pack_error(
            pack.source,
            local.id,
            "distance_m",
            f"{local.distance_m} m is below the statutory minimum {floor} m of the {wider.jurisdiction} rule",
            local.distance_m,
        )
    for field, order in (*_LONGER.items(), ("metric", _LONGER_METRIC)):
        if order.index(getattr(local, field)) > order.index(getattr(wider, field)):
            raise _pack_error(
                pack.source,
                local.id,
                field,
                f"{getattr(local, field)!r} measures longer than the statutory {getattr(wider, field)!r}, "
                f"so the {floor} m statutory minimum would not hold",
                getattr(local, field),
            )


def _layer(packs: Iterable[RulePack], on: date | None) -> tuple[dict[str, Rule], dict[str, StaffingRule]]:
    rules: dict[str, Rule] = {}
    staffing: dict[str, StaffingRule] = {}
    for pack in packs:
        for rule_id in pack.disabled:
            if rule_id in rules:
                _check_floor(pack, rules[rule_id], None)
            rules.pop(rule_id, None)
            staffing.pop(rule_id, None)
        for rule in pack.rules:
            if rule.id in rules:
                _check_floor(pack, rules[rule.id], rule)
                if rules[rule.id].category != rule.category:
                    raise _pack_error(
                        pack.source,
                        rule.id,
                        "category",
                        f"{rule.category!r} differs from the replaced rule's {rules[rule.id].category!r}",
                        rule.category,
                    )
            if on is None or rule.effective_from <= on:
                rules[rule.id] = rule
        for item in pack.staffing:
            if on is None or item.effective_from <= on:
                staffing[item.id] = item
    return rules, staffing


def _today_shanghai() -> date:
    return datetime.now(_SHANGHAI).date()


class RuleRegistry:
    """All packs of a deployment, validated; answers which rules are in force where and when.

    Build it with :meth:`load`.
    """

    def __init__(self, packs: Mapping[str, RulePack], *, default_adcode: str | None = None) -> None:
        self._packs = dict(packs)
        self._max_distance: dict[str | None, float] = {}  # the packs never change: each answer is kept
        self.default_adcode = default_adcode
        content = [self._packs[k].canonical() for k in sorted(self._packs)]
        blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        self.version: str = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    @classmethod
    def load(cls, directory: Path | None = None, *, default_adcode: str | None = None) -> RuleRegistry:
        """Read and validate every ``*.yaml`` pack in ``directory``.

        Parameters
        ----------
        directory
            Folder of pack files; default ``<repo>/data/rules``.
        default_adcode
            Packs to apply when a site lies in no known district (it is still flagged).

        Returns
        -------
        RuleRegistry

        Raises
        ------
        RulePackError
            On any problem; the message names the file, the rule id and the field.
        """
        directory = DEFAULT_DIRECTORY if directory is None else Path(directory)
        files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
        if not files:
            raise _pack_error(_display(directory), None, None, "no *.yaml rule packs found")
        packs: dict[str, RulePack] = {}
        for path in files:
            pack = _load_pack(path)
            if pack.jurisdiction in packs:
                raise _pack_error(
                    pack.source,
                    None,
                    "jurisdiction",
                    f"{pack.jurisdiction!r} already defined by {packs[pack.jurisdiction].source}",
                    pack.jurisdiction,
                )
            packs[pack.jurisdiction] = pack
        if "national" not in packs:
            raise _pack_error(_display(directory), None, "jurisdiction", "no national pack found")
        if default_adcode is not None and not _ADCODE.match(default_adcode):
            msg = f"default_adcode must be a 6-digit adcode, got {default_adcode!r}"
            raise InvalidInput(
                msg,
                message_zh=f"默认行政区划代码须为6位数字，收到 {default_adcode!r}",
                field="default_adcode",
                value=default_adcode,
            )
        registry = cls(packs, default_adcode=default_adcode)
        registry._check_all()
        return registry

    def _check_all(self) -> None:
        departments: dict[str, str] = {}
        for pack in self._packs.values():
            departments.update(pack.departments)
        for pack in self._packs.values():
            items: list[Rule | StaffingRule] = [*pack.rules, *pack.staffing]
            for item in items:
                for field, ids in (
                    ("lead_department", (item.lead_department,)),
                    ("cooperating_departments", item.cooperating_departments),
                ):
                    unknown = [d for d in ids if d not in departments]
                    if unknown:
                        raise _pack_error(
                            pack.source,
                            item.id,
                            field,
                            f"unknown department id(s) {unknown}; add them to a pack's departments map",
                            unknown[0],
                        )
            if pack.parent is not None and pack.parent not in self._packs:
                raise _pack_error(pack.source, None, "parent", f"no pack for parent {pack.parent!r}", pack.parent)
            # layering through every chain checks statutory floors and disabled ids at start-up
            chain = self._packs_for(pack.jurisdiction) if pack.jurisdiction != "national" else [pack]
            _layer(chain, None)

    def _packs_for(self, adcode: str) -> list[RulePack]:
        return [self._packs[j] for j in _chain(adcode) if j in self._packs]

    @property
    def packs(self) -> tuple[RulePack, ...]:
        """Every loaded pack, national first."""
        return tuple(self._packs[j] for j in sorted(self._packs, key=lambda j: (j != "national", j)))

    @property
    def departments(self) -> dict[str, str]:
        """Department id → Chinese name, over all packs."""
        out: dict[str, str] = {}
        for pack in self.packs:
            out.update(pack.departments)
        return out

    def in_force(self, adcode: str | None, *, on: date | None = None) -> RulesInForce:
        """The rules in force at a site in district ``adcode`` on date ``on``.

        Parameters
        ----------
        adcode
            The site's district (6 digits), or None when the site lies in no known district.
        on
            The date (Asia/Shanghai); default today.

        Returns
        -------
        RulesInForce
            ``flags`` holds ``jurisdiction_unknown`` when ``adcode`` is None.
        """
        on = _today_shanghai() if on is None else on
        flags: tuple[str, ...] = ()
        if adcode is None:
            flags = ("jurisdiction_unknown",)
            adcode = self.default_adcode
        if adcode is not None and (not isinstance(adcode, str) or not _ADCODE.match(adcode)):
            msg = f"adcode must be 6 digits (GB/T 2260), got {adcode!r}"
            raise InvalidInput(
                msg,
                message_zh=f"行政区划代码须为6位数字（GB/T 2260），收到 {adcode!r}",
                field="adcode",
                value=adcode,
            )
        packs = self._packs_for(adcode) if adcode is not None else [self._packs["national"]]
        rules, staffing = _layer(packs, on)
        ladders = [p.escalation for p in packs if p.escalation]
        return RulesInForce(
            rules=tuple(rules.values()),
            staffing=tuple(staffing.values()),
            packs=tuple(p.jurisdiction for p in packs),
            flags=flags,
            escalation=ladders[-1] if ladders else DEFAULT_ESCALATION,
        )

    def rules_for_category(self, adcode: str | None, category: str, *, on: date | None = None) -> tuple[Rule, ...]:
        """The rules in force at ``adcode`` that concern ``category``."""
        if category not in CATEGORIES:
            msg = f"unknown category {category!r}; expected one of {sorted(CATEGORIES)}"
            raise InvalidInput(msg, message_zh=f"未知的经营类别 {category!r}", field="category", value=category)
        return tuple(r for r in self.in_force(adcode, on=on).rules if r.category == category)

    def max_distance_m(self, category: str | None = None) -> float:
        """The largest fixed distance over all packs, of ``category``'s rules if given (for spatial pre-filters)."""
        found = self._max_distance.get(category)
        if found is None:
            found = self._max_distance[category] = max(
                (
                    r.distance_m
                    for p in self._packs.values()
                    for r in p.rules
                    if r.distance_m is not None and category in (None, r.category)
                ),
                default=0.0,
            )
        return found

    def all_rule_ids(self) -> set[str]:
        """Every rule id defined in any pack (staffing rules excluded)."""
        return {r.id for p in self._packs.values() for r in p.rules}
