"""Bad input to volume() and to the commands: a clear error with a stable code, nothing changed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from exchange.errors import DomainError
from reporting.models import MarketDailyVolume, UserDailyVolume, VolumeCursor
from reporting.rollup import rollup
from reporting.selectors import volume
from tests.factories import MarketFactory, UserFactory
from tests.reporting.helpers import TradeRows
from tests.reporting.test_rollup import snapshot
from trading.models import Trade

D1, D2 = date(2026, 1, 1), date(2026, 1, 31)


@pytest.fixture
def rolled(db: None) -> dict[str, Any]:
    market = MarketFactory.create()
    alice, bob = UserFactory.create(), UserFactory.create()
    TradeRows().add(market, buyer=alice, seller=bob, at=datetime(2026, 1, 5, tzinfo=UTC))
    rollup()
    return {"market": market, "alice": alice}


def state() -> tuple[Any, ...]:
    return (
        snapshot(),
        list(VolumeCursor.objects.values_list("market_id", "last_trade_seq")),
        Trade.objects.count(),
    )


@pytest.mark.parametrize(
    ("_case", "changes", "code", "field"),
    [
        ("unknown market", {"market": "NOPE-USDT"}, "market_not_found", "market"),
        ("market not a symbol", {"market": 42}, "market_not_found", "market"),
        ("start a string", {"start": "2026-01-01"}, "date_invalid", "start"),
        ("end a datetime", {"end": datetime(2026, 1, 2, tzinfo=UTC)}, "date_invalid", "end"),
        ("start none", {"start": None}, "date_invalid", "start"),
        ("end too late", {"end": date(3000, 1, 1)}, "date_invalid", "end"),
        ("start too early", {"start": date(1899, 12, 31)}, "date_invalid", "start"),
        ("reversed", {"start": D2, "end": D1}, "range_invalid", "end"),
        (
            "over 100 years",
            {"start": date(1901, 1, 1), "end": date(2001, 1, 2)},
            "range_too_long",
            "end",
        ),
        ("unknown calendar", {"calendar": "julian"}, "calendar_invalid", "calendar"),
        ("calendar not a string", {"calendar": 1}, "calendar_invalid", "calendar"),
        ("user an id", {"user": 1}, "user_invalid", "user"),
        ("user unsaved", {"user": "unsaved"}, "user_invalid", "user"),
    ],
)
def test_selector_refuses(rolled: dict[str, Any], _case: str, changes: dict, code: str, field):
    args: dict[str, Any] = {"market": rolled["market"], "start": D1, "end": D2}
    args.update(changes)
    if args.get("user") == "unsaved":
        from accounts.models import User

        args["user"] = User(email="ghost@example.com")
    before = state()

    with pytest.raises(DomainError) as caught:
        volume(**args)

    assert (caught.value.code, caught.value.field) == (code, field)
    assert state() == before


def test_selector_refuses_a_deleted_user(rolled: dict[str, Any]):
    gone = UserFactory.create()
    gone_id = gone.pk
    gone.delete()
    gone.pk = gone_id
    before = state()

    with pytest.raises(DomainError) as caught:
        volume(market=rolled["market"], user=gone, start=D1, end=D2)

    assert caught.value.code == "user_not_found"
    assert state() == before


def test_a_range_of_exactly_100_years_is_answered(rolled: dict[str, Any]):
    got = volume(market=rolled["market"], start=date(1926, 1, 6), end=date(2026, 1, 5))
    assert got.trade_count == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("_case", "argv", "message"),
    [
        ("not a date", ["--from", "yesterday"], "--from must be a date"),
        ("impossible date", ["--from", "2026-02-30"], "--from must be a date"),
        ("out of range", ["--from", "1800-01-01"], "date_invalid"),
        ("unknown market", ["--from", "2026-01-01", "--market", "NOPE-USDT"], "market_not_found"),
    ],
)
def test_rollup_volumes_refuses(rolled: dict[str, Any], _case: str, argv: list[str], message):
    MarketDailyVolume.objects.update(trade_count=99)  # a drifted row a rebuild would fix
    before = state()

    with pytest.raises(CommandError, match=message):
        call_command("rollup_volumes", *argv)

    assert state() == before


def test_rollup_volumes_without_from_is_refused(rolled: dict[str, Any]):
    before = state()
    with pytest.raises(CommandError):
        call_command("rollup_volumes")
    assert state() == before


def test_check_volumes_reports_a_drifted_row(rolled: dict[str, Any]):
    out = StringIO()
    call_command("check_volumes", stdout=out)
    assert "FAILED" not in out.getvalue()

    UserDailyVolume.objects.filter(user=rolled["alice"]).update(fees_paid=0)
    with pytest.raises(SystemExit):
        call_command("check_volumes", "--samples", "5", "--seed", "1", stdout=out)
    assert "FAILED: volume days == their trades" in out.getvalue()
    assert "FAILED: volume months and years == their days" in out.getvalue()
