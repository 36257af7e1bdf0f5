"""Normalisation of e-mail addresses and phone numbers."""

from __future__ import annotations

import pytest

from patron.customers.identity import InvalidIdentifier, normalize_email, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138-1234-5678",
        "+86 (138) 1234 5678",
        "0086 138 1234 5678",
        "１３８ １２３４ ５６７８",  # full-width digits from a Chinese keyboard
        " 13812345678\t",
    ],
)
def test_a_chinese_mobile_number_in_any_format_is_one_e164_number(raw: str) -> None:
    # given / when a mainland mobile number written in one of the usual ways is normalised
    normalised = normalize_phone(raw)

    # then it is the one E.164 form
    assert normalised == "+8613812345678"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("021-6234 5678", "CN", "+862162345678"),  # a Shanghai landline, read in China
        ("+1 650 253 0000", "CN", "+16502530000"),  # a country code wins over the region
        ("+44 20 7946 0958", "CN", "+442079460958"),
        ("(650) 253-0000", "US", "+16502530000"),
    ],
)
def test_numbers_without_a_country_code_are_read_in_the_region(
    raw: str, region: str, expected: str
) -> None:
    # given / when a number is normalised in a region
    normalised = normalize_phone(raw, region)

    # then it is the E.164 form of that region's number
    assert normalised == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "not a phone number: ''"),
        ("call me", "not a phone number: 'call me'"),
        ("123", "not a possible phone number: '123'"),
        ("12345678901234567890", "not a possible phone number: '12345678901234567890'"),
    ],
)
def test_a_value_that_is_no_phone_number_is_refused(raw: str, message: str) -> None:
    # given / when a value that is not a phone number is normalised
    with pytest.raises(InvalidIdentifier) as raised:
        normalize_phone(raw)

    # then the error names the value
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "raw",
    [
        "zhang.wei@example.com",
        "Zhang.Wei@Example.COM",
        "  zhang.wei@example.com ",
        "ｚｈａｎｇ．ｗｅｉ＠ｅｘａｍｐｌｅ．ｃｏｍ",  # full-width
        "ＺＨＡＮＧ.ＷＥＩ@EXAMPLE.com",
    ],
)
def test_an_email_in_any_case_or_width_is_one_address(raw: str) -> None:
    # given / when an e-mail address is normalised
    normalised = normalize_email(raw)

    # then it is trimmed, folded to ASCII and lower-cased
    assert normalised == "zhang.wei@example.com"


@pytest.mark.parametrize("raw", ["", "zhang.wei", "zhang wei@example.com", "a@b", "a@@b.com"])
def test_a_value_that_is_no_email_is_refused(raw: str) -> None:
    # given / when a value that is not an e-mail address is normalised
    with pytest.raises(InvalidIdentifier) as raised:
        normalize_email(raw)

    # then the error names the value
    assert str(raised.value) == f"not an e-mail address: {raw!r}"
