"""The |when and |digits filters (accounts/templatetags/display.py): the reporting time
zone, Jalali dates and Persian digits in Persian only, Gregorian ISO-like text otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import translation

from accounts.templatetags.display import digits, when

PERSIAN = str.maketrans("0123456789", "".join(chr(0x06F0 + i) for i in range(10)))


def fa(text: str) -> str:
    """`text` with Persian digits (U+06F0..U+06F9), written out independently of the code."""
    return text.translate(PERSIAN)


def render(source: str, **context: object) -> str:
    return Template("{% load display %}" + source).render(Context(context))


# --- |when


def test_when_is_the_reporting_zone_in_english() -> None:
    with translation.override("en"):
        assert when(datetime(2024, 12, 21, 10, 0, 0, tzinfo=UTC)) == "2024-12-21 13:30:00"


def test_when_follows_tehran_daylight_saving_of_the_past() -> None:
    # Iran observed DST (UTC+04:30) until 2022.
    with translation.override("en"):
        assert when(datetime(2021, 6, 1, 12, 0, 0, tzinfo=UTC)) == "2021-06-01 16:30:00"


def test_when_crosses_the_local_midnight() -> None:
    with translation.override("en"):
        assert when(datetime(2024, 12, 31, 21, 0, 0, tzinfo=UTC)) == "2025-01-01 00:30:00"


@override_settings(REPORTING_TIME_ZONE="UTC")
def test_when_reads_the_setting() -> None:
    with translation.override("en"):
        assert when(datetime(2024, 12, 21, 10, 0, 0, tzinfo=UTC)) == "2024-12-21 10:00:00"


def test_when_takes_a_naive_datetime_as_utc() -> None:
    with translation.override("en"):
        assert when(datetime(2024, 12, 21, 10, 0, 0)) == "2024-12-21 13:30:00"  # noqa: DTZ001


def test_when_is_jalali_with_persian_digits_in_persian() -> None:
    with translation.override("fa"):
        assert when(datetime(2024, 12, 21, 10, 0, 0, tzinfo=UTC)) == fa("1403/10/01 13:30:00")


def test_when_new_year_in_persian() -> None:
    # Nowruz 1403: 20 March 2024; 21:00 UTC on the 19th is already the 20th in Tehran.
    with translation.override("fa"):
        assert when(datetime(2024, 3, 19, 21, 0, 0, tzinfo=UTC)) == fa("1403/01/01 00:30:00")
        assert when(datetime(2024, 3, 19, 20, 29, 59, tzinfo=UTC)) == fa("1402/12/29 23:59:59")


def test_when_of_none_is_empty() -> None:
    for language in ("en", "fa"):
        with translation.override(language):
            assert when(None) == ""


def test_when_in_a_template() -> None:
    moment = datetime(2024, 12, 21, 10, 0, 0, tzinfo=UTC)
    with translation.override("en"):
        assert render("{{ t|when }}", t=moment) == "2024-12-21 13:30:00"
    with translation.override("fa"):
        assert render("{{ t|when }}", t=moment) == fa("1403/10/01 13:30:00")


# --- |digits


def test_digits_unchanged_in_english() -> None:
    with translation.override("en"):
        assert digits("1234567890.5") == "1234567890.5"
        assert digits(Decimal("-0.50")) == "-0.50"


def test_digits_are_persian_in_persian() -> None:
    with translation.override("fa"):
        assert digits("0123456789") == fa("0123456789")
        assert digits(Decimal("-1.50")) == fa("-1.50")  # sign, point and places kept
        assert digits(42) == fa("42")
        assert digits("BTC 2") == "BTC " + fa("2")


def test_digits_of_none_is_empty() -> None:
    with translation.override("fa"):
        assert digits(None) == ""


@pytest.mark.parametrize("language", ["en", "fa"])
def test_digits_keep_escaping_in_a_template(language: str) -> None:
    with translation.override(language):
        out = render("{{ v|digits }}", v="<b>1</b>")
    assert "<b>" not in out
    assert "&lt;b&gt;" in out


def test_digits_after_amount_in_a_template() -> None:
    with translation.override("fa"):
        assert render("{% load money %}{{ v|amount|digits }}", v=Decimal("1000.500")) == fa(
            "1000.5"
        )
