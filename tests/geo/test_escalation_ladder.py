"""The overdue ladder of a rule pack: the default, a local pack's own, and the loader's refusals."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from geo.errors import RulePackError
from geo.rules import DEFAULT_DIRECTORY, DEFAULT_ESCALATION, RuleRegistry

ON = dt.date(2025, 10, 1)


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    return target


def _set_ladder(path: Path, ladder: list[dict]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["escalation"] = ladder
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_the_default_ladder_reaches_the_district_government_five_working_days_on() -> None:
    ladder = RuleRegistry.load().in_force("450302", on=ON).escalation
    assert ladder == DEFAULT_ESCALATION
    assert [(lv.level, lv.after_working_days, lv.recipient) for lv in ladder] == [
        (1, 0, "lead_department"),
        (2, 5, "district_government"),
    ]
    assert ladder[1].recipient_name(district="秀峰区", lead_department=None) == "秀峰区人民政府"
    assert ladder[1].recipient_name(district=None, lead_department=None) == "所在区县人民政府"
    assert ladder[0].recipient_name(district="秀峰区", lead_department="城市管理部门") == "城市管理部门"


def test_the_most_local_pack_with_a_ladder_decides(packs_dir: Path) -> None:
    ladder = [
        {"level": 1, "recipient": "lead_department", "recipient_zh": "{lead_department}"},
        {"level": 2, "after_working_days": 3, "recipient": "district_government", "recipient_zh": "{district}人民政府"},
    ]
    _set_ladder(packs_dir / "guilin-450300.yaml", ladder)
    reg = RuleRegistry.load(packs_dir)
    assert [lv.after_working_days for lv in reg.in_force("450302", on=ON).escalation] == [0, 3]
    assert reg.in_force("500103", on=ON).escalation == DEFAULT_ESCALATION  # Chongqing sets none
    assert reg.in_force(None, on=ON).escalation == DEFAULT_ESCALATION


@pytest.mark.parametrize(
    ("ladder", "match"),
    [
        (
            [{"level": 1, "after_working_days": 2, "recipient": "x", "recipient_zh": "x"}],
            r"field 'escalation.0.after_working_days': level 1 .*give 0",
        ),
        (
            [{"level": 1, "recipient": "a", "recipient_zh": "a"}, {"level": 3, "after_working_days": 2,
                                                                   "recipient": "b", "recipient_zh": "b"}],
            r"numbered 1, 2, … in order, got \[1, 3\]",
        ),
        (
            [{"level": 1, "recipient": "a", "recipient_zh": "a"}, {"level": 2, "recipient": "b", "recipient_zh": "b"}],
            r"level 2 needs after_working_days >= 1",
        ),
        ([{"level": 1, "recipient": "a", "recipient_zh": "{city}人民政府"}], r"unknown placeholder\(s\) \['city'\]"),
        ([{"level": 1, "recipient": "District Gov", "recipient_zh": "x"}], r"lower_snake_case"),
    ],
)  # fmt: skip
def test_a_bad_ladder_stops_the_loader_naming_the_file(packs_dir: Path, ladder: list[dict], match: str) -> None:
    _set_ladder(packs_dir / "guilin-450300.yaml", ladder)
    with pytest.raises(RulePackError, match=match) as err:
        RuleRegistry.load(packs_dir)
    assert "guilin-450300.yaml" in str(err.value)
