"""Tests for geo.uscc: unified social credit codes (GB 32100-2015) and organisation codes (GB 11714)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import InvalidInput
from geo.uscc import make_uscc, org_code_check_char, uscc_check_char, validate_uscc

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# the code printed as the example on business licences (Fuzhou); it validates
PUBLISHED_SAMPLE = "91350100M000100Y43"

VALID = [
    PUBLISHED_SAMPLE,
    make_uscc(division="320106", body8="MA1XY2N3"),  # an enterprise in Gulou, Nanjing
    make_uscc(org_type="2", division="450302", body8="L3K7PQ01"),  # an individual business in Guilin
    make_uscc(registration="5", org_type="2", division="500103", body8="00000000"),  # Chongqing NGO
    make_uscc(division="440106", body8="YYYYYYYY"),  # Guangzhou
]


def test_published_sample_validates_and_is_reproduced_by_make_uscc() -> None:
    assert validate_uscc(PUBLISHED_SAMPLE) == PUBLISHED_SAMPLE
    assert make_uscc(division="350100", body8="M000100Y") == PUBLISHED_SAMPLE
    assert uscc_check_char(PUBLISHED_SAMPLE[:17]) == "3"
    assert org_code_check_char("M000100Y") == "4"


def test_org_code_check_char_known_values() -> None:
    # by hand: D2143569 -> 13*3 + 2*7 + 1*9 + 4*10 + 3*5 + 5*8 + 6*4 + 9*2 = 199; 199 % 11 = 1 -> X
    assert org_code_check_char("D2143569") == "X"
    # 00000000 -> sum 0 -> 11 -> "0"
    assert org_code_check_char("00000000") == "0"
    # 00000001 -> sum 2 -> 9
    assert org_code_check_char("00000001") == "9"


def test_uscc_check_char_weights() -> None:
    # only the last of 17 characters is 1: weight 3**16 mod 31 = 28 -> check 31 - 28 = 3
    assert uscc_check_char("0" * 16 + "1") == "3"
    assert uscc_check_char("0" * 17) == "0"
    # first character 1: weight 1 -> check 30 -> "Y"
    assert uscc_check_char("1" + "0" * 16) == "Y"


@pytest.mark.parametrize("code", VALID)
def test_valid_codes(code: str) -> None:
    assert len(code) == 18
    assert validate_uscc(code) == code


@pytest.mark.parametrize("code", VALID)
def test_every_single_character_substitution_is_rejected(code: str) -> None:
    outside = ["I", "O", "S", "V", "Z", "-", "中"]
    tried = 0
    for pos in range(18):
        for ch in [c for c in CHARSET if c != code[pos]] + outside:
            bad = code[:pos] + ch + code[pos + 1 :]
            with pytest.raises(InvalidInput) as info:
                validate_uscc(bad, field="licence_uscc", row=pos + 1)
            err = info.value
            assert err.value == bad
            assert err.field == "licence_uscc"
            assert err.row == pos + 1
            assert bad in err.message_en
            assert bad in err.message_zh
            tried += 1
    assert tried == 18 * (30 + len(outside))


def test_reasons_are_precise() -> None:
    code = VALID[1]
    with pytest.raises(InvalidInput, match=r"check character \(position 18\) is '.', expected '" + code[17]):
        validate_uscc(code[:17] + ("0" if code[17] != "0" else "1"))
    with pytest.raises(InvalidInput, match="character 'O' at position 10 is not allowed"):
        validate_uscc(code[:9] + "O" + code[10:])
    with pytest.raises(InvalidInput, match="division code 'A20106'"):
        validate_uscc(code[:2] + "A" + code[3:])
    with pytest.raises(InvalidInput, match=r"organisation code .* expected '" + code[16]):
        validate_uscc(code[:16] + ("1" if code[16] != "1" else "2") + code[17])
    with pytest.raises(InvalidInput, match="has 17 characters, expected 18") as info:
        validate_uscc(code[:17])
    assert "17 位" in info.value.message_zh
    with pytest.raises(InvalidInput, match="has 19 characters"):
        validate_uscc(code + "0")
    with pytest.raises(InvalidInput, match="empty"):
        validate_uscc("  ")
    with pytest.raises(InvalidInput, match="missing"):
        validate_uscc(None)
    with pytest.raises(InvalidInput, match="expected text, got float"):
        validate_uscc(9.135e17)


def test_normalisation() -> None:
    assert validate_uscc(PUBLISHED_SAMPLE.lower()) == PUBLISHED_SAMPLE
    assert validate_uscc(f"  {PUBLISHED_SAMPLE.lower()}\t\n") == PUBLISHED_SAMPLE
    # full-width characters as typed with a Chinese input method, and an ideographic space
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in PUBLISHED_SAMPLE)
    assert validate_uscc(f"\u3000{full_width}") == PUBLISHED_SAMPLE


def test_make_uscc_rejects_bad_parts() -> None:
    with pytest.raises(InvalidInput, match="division must be 6 digits, got '32010'"):
        make_uscc(division="32010", body8="MA1XY2N3")
    with pytest.raises(InvalidInput, match="body8 must be 8 characters"):
        make_uscc(division="320106", body8="MA1XY2NO")
    with pytest.raises(InvalidInput, match="registration must be one character"):
        make_uscc(registration="91", division="320106", body8="MA1XY2N3")
    with pytest.raises(InvalidInput, match="17 characters"):
        uscc_check_char("9132010")
    with pytest.raises(InvalidInput, match="8 digits or upper-case letters"):
        org_code_check_char("ma1xy2n3")


@given(
    registration=st.sampled_from("159Y"),
    org_type=st.sampled_from("123"),
    division=st.text("0123456789", min_size=6, max_size=6),
    body8=st.text(CHARSET, min_size=8, max_size=8),
    pos=st.integers(0, 17),
    shift=st.integers(1, 30),
)
@settings(max_examples=300, deadline=None)
def test_made_codes_validate_and_any_substitution_fails(
    registration: str, org_type: str, division: str, body8: str, pos: int, shift: int
) -> None:
    code = make_uscc(registration=registration, org_type=org_type, division=division, body8=body8)
    assert validate_uscc(code) == code
    assert code[2:8] == division
    assert code[8:16] == body8
    ch = CHARSET[(CHARSET.index(code[pos]) + shift) % 31]
    with pytest.raises(InvalidInput):
        validate_uscc(code[:pos] + ch + code[pos + 1 :])
