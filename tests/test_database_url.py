"""Child processes get the suite's own database, whatever server and port it runs on."""

from __future__ import annotations

import dj_database_url
import pytest
from django.db import connection

from tests.database_url import database_url

FIELDS = ("NAME", "USER", "PASSWORD", "HOST", "PORT")


def _parsed(url: str) -> dict[str, object]:
    parsed: dict[str, object] = dict(dj_database_url.parse(url))
    return {**{key: parsed[key] for key in FIELDS}, "OPTIONS": parsed.get("OPTIONS") or {}}


@pytest.mark.parametrize(
    ("_case", "url"),
    [
        ("private server on its own port", "postgres://postgres@127.0.0.1:54329/exchange"),
        ("socket directory, no port", "postgres://postgres@%2Fwork%2Fmain%2F.local%2Fpg/exchange"),
        ("no host, no port (libpq defaults)", "postgres:///exchange"),
        ("password with reserved characters", "postgres://app:p%40ss%3Aw%2Fd@db.internal:6432/x"),
        ("IPv6 host and an option", "postgres://postgres@[::1]:5433/x?sslmode=disable"),
    ],
)
def test_url_names_the_same_connection(_case, url):
    settings_dict = dj_database_url.parse(url)

    assert _parsed(database_url(settings_dict)) == _parsed(url)


def test_name_is_replaced_and_nothing_else():
    settings_dict = dj_database_url.parse("postgres://postgres@127.0.0.1:54329/exchange")

    assert database_url(settings_dict, name="test_exchange") == (
        "postgres://postgres@127.0.0.1:54329/test_exchange"
    )


@pytest.mark.django_db
def test_suite_connection_round_trips():
    settings_dict = connection.settings_dict

    parsed: dict[str, object] = dict(dj_database_url.parse(database_url(settings_dict)))

    assert {key: parsed[key] for key in FIELDS} == {key: settings_dict[key] or "" for key in FIELDS}
