"""The orders and trades history page (/orders/): listing, filters, pages, CSV, cancel, fa.

Trades are settled through the real `settle_batch` (tests.markets.marketdata_helpers'
TradeFeed) with alice as one side; open orders are placed with `place_order`; terminal
orders that never traded (canceled, expired, rejected) are written directly with no hold.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import Asset, User
from exchange import clock
from markets.models import Market
from tests.conftest import fund
from tests.markets.marketdata_helpers import Fill, TradeFeed
from trading.models import Order, OrderStatus, OrderType, OutboxEntry, Trade
from trading.services.orders import place_order
from trading.validation import OrderSpec

pytestmark = pytest.mark.django_db
D = Decimal
T1 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # 1404/12/19 13:30 in Tehran
T2 = datetime(2026, 3, 12, 10, 0, 5, tzinfo=UTC)  # 1404/12/21 13:30:05
T3 = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
LATE = datetime(2026, 3, 12, 21, 0, tzinfo=UTC)  # 2026-03-13 00:30 in Tehran


@dataclass
class History:
    alice: User
    bob: User
    hx: Market  # alice buys here
    hy: Market  # alice sells here
    open_order: Order  # alice's resting buy on HX
    bob_order: Order  # bob's resting buy on HX
    terminal: dict[str, Order]  # alice's canceled / expired / rejected orders


def _terminal(user: User, market: Market, status: str, at: datetime, side: str = "buy") -> Order:
    return Order.objects.create(
        user=user,
        market=market,
        client_order_id=uuid.uuid4().hex,
        side=side,
        order_type=OrderType.LIMIT,
        price=D("10"),
        quantity=D("1"),
        hold_asset=market.base if side == "sell" else market.quote,
        hold_amount=D("0"),
        hold_remaining=D("0"),
        status=status,
        maker_fee_rate=market.maker_fee,
        taker_fee_rate=market.taker_fee,
        created_at=at,
    )


@pytest.fixture
def history(assets: dict[str, Asset], alice: User, bob: User) -> History:
    fund(alice, assets["USDT"], "100000")
    fund(alice, assets["BTC"], "10")
    fund(bob, assets["USDT"], "100000")
    hx = TradeFeed.create(assets, "HX-USDT")
    hx.buyer = alice
    hx.settle([Fill("100.25", "0.5", "buy")], at=T1)  # alice takes (buys)
    hx.settle([Fill("99.75", "1.2", "sell")], at=T2)  # alice's bid is taken: maker
    hy = TradeFeed.create(assets, "HY-USDT")
    hy.seller = alice
    hy.settle([Fill("200", "0.1", "buy")], at=T3)  # alice's ask is taken: maker sell
    others = TradeFeed.for_market(hx.market)  # bob's trade on the same market
    others.buyer = bob
    others.settle([Fill("101", "0.3", "buy")], at=T2)
    with clock.shifted(T3 + timedelta(hours=1)):
        open_order = place_order(
            user=alice,
            market=hx.market,
            spec=OrderSpec(side="buy", price=D("90"), quantity=D("0.1"), client_order_id="resting"),
        )
        bob_order = place_order(
            user=bob, market=hx.market, spec=OrderSpec(side="buy", price=D("91"), quantity=D("1"))
        )
    terminal = {
        status: _terminal(alice, hy.market, status, T1 - timedelta(days=1))
        for status in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
    }
    return History(alice, bob, hx.market, hy.market, open_order, bob_order, terminal)


@pytest.fixture
def signed_in(client: Client, history: History) -> Client:
    client.force_login(history.alice)
    return client


def _page(client: Client, **params: str) -> str:
    response = client.get(reverse("orders"), params)
    assert response.status_code == 200
    return response.content.decode()


def _order_ids(client: Client, **params: str) -> list[int]:
    response = client.get(reverse("orders"), params)
    assert response.status_code == 200
    return [order.pk for order in response.context["items"]]


def _trade_ids(client: Client, **params: str) -> list[int]:
    response = client.get(reverse("orders"), {"tab": "trades", **params})
    assert response.status_code == 200
    return [row.trade.pk for row in response.context["items"]]


def _alice_trades(history: History) -> list[Trade]:
    """Alice's trades, newest first, from the rows themselves."""
    return [
        t
        for t in Trade.objects.order_by("-pk")
        if history.alice.pk in (t.buy_order.user_id, t.sell_order.user_id)
    ]


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds, written independently of the view's code."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- access and ownership ------------------------------------------------------------------


def test_login_required(client: Client, history: History) -> None:
    for name in ("orders", "orders_csv", "trades_csv"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    before = OutboxEntry.objects.count()
    response = client.post(reverse("order_cancel", args=[history.open_order.pk]))
    assert response.status_code == 302
    assert OutboxEntry.objects.count() == before


def test_orders_tab_lists_only_own_orders_in_every_state_newest_first(
    signed_in: Client, history: History
) -> None:
    own = list(Order.objects.filter(user=history.alice).order_by("-pk"))
    ids = _order_ids(signed_in)

    assert ids == [o.pk for o in own]
    assert history.bob_order.pk not in ids
    statuses = {o.status for o in own}
    assert {"new", "filled", "canceled", "expired", "rejected"} <= statuses
    body = _page(signed_in)
    assert f'id="order-{history.bob_order.pk}"' not in body
    assert f'id="order-{history.open_order.pk}"' in body


def test_trades_tab_lists_only_own_trades_with_side_role_and_fee(
    signed_in: Client, history: History
) -> None:
    mine = _alice_trades(history)
    response = signed_in.get(reverse("orders"), {"tab": "trades"})
    rows = response.context["items"]

    assert [r.trade.pk for r in rows] == [t.pk for t in mine]
    assert len(rows) == 3  # bob's trade on HX is not here
    assert [(r.trade.market.symbol, r.side, r.is_maker) for r in rows] == [
        ("HY-USDT", "sell", True),
        ("HX-USDT", "buy", True),
        ("HX-USDT", "buy", False),
    ]
    assert [r.fee for r in rows] == [mine[0].maker_fee, mine[1].maker_fee, mine[2].taker_fee]
    body = response.content.decode()
    assert "100.250000" in body
    assert "50.125000" in body
    assert "0.50000000" in body  # amount, BTC's 8 places
    assert "Maker" in body
    assert "Taker" in body


# --- filters ------------------------------------------------------------------------------


def test_market_filter(signed_in: Client, history: History) -> None:
    ids = _order_ids(signed_in, market="HY-USDT")
    assert ids
    assert all(Order.objects.get(pk=i).market_id == history.hy.pk for i in ids)
    assert [
        Trade.objects.get(pk=i).market.symbol for i in _trade_ids(signed_in, market="HX-USDT")
    ] == ["HX-USDT", "HX-USDT"]


def test_side_filter(signed_in: Client, history: History) -> None:
    sells = _order_ids(signed_in, side="sell")
    assert sells
    assert all(Order.objects.get(pk=i).side == "sell" for i in sells)
    assert len(_trade_ids(signed_in, side="sell")) == 1
    assert len(_trade_ids(signed_in, side="buy")) == 2


def test_status_filter(signed_in: Client, history: History) -> None:
    assert _order_ids(signed_in, status="new") == [history.open_order.pk]
    assert _order_ids(signed_in, status="expired") == [history.terminal["expired"].pk]
    filled = _order_ids(signed_in, status="filled")
    assert len(filled) == 3
    assert all(Order.objects.get(pk=i).status == "filled" for i in filled)


def test_date_filters_are_days_of_the_display_zone(signed_in: Client, history: History) -> None:
    mine = _alice_trades(history)  # [T3, T2, T1]
    assert _trade_ids(signed_in, date_from="2026-03-10", date_to="2026-03-12") == [
        mine[1].pk,
        mine[2].pk,
    ]
    assert _trade_ids(signed_in, date_from="2026-03-11") == [mine[0].pk, mine[1].pk]
    assert _trade_ids(signed_in, date_to="2026-03-10") == [mine[2].pk]
    # 21:00 UTC on the 12th is already the 13th in Tehran.
    late = _terminal(history.alice, history.hx, OrderStatus.CANCELED, LATE)
    assert late.pk in _order_ids(signed_in, date_from="2026-03-13", date_to="2026-03-13")
    assert late.pk not in _order_ids(signed_in, date_from="2026-03-12", date_to="2026-03-12")


def test_persian_and_arabic_indic_digits_are_accepted(signed_in: Client, history: History) -> None:
    ascii_ids = _trade_ids(signed_in, date_from="2026-03-10", date_to="2026-03-12")
    assert _trade_ids(signed_in, date_from="۲۰۲۶-۰۳-۱۰", date_to="٢٠٢٦-٠٣-١٢") == ascii_ids  # noqa: RUF001 - Persian/Arabic-Indic digits on purpose
    assert len(ascii_ids) == 2
    body = _page(signed_in, tab="trades", date_from="۲۰۲۶-۰۳-۱۰")  # noqa: RUF001 - Persian/Arabic-Indic digits on purpose
    assert "alert-error" not in body


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "yesterday"},
        {"date_from": "2026-02-30"},
        {"date_to": "10/03/2026"},
        {"date_from": "2026-03-10x"},
        {"date_from": "9" * 500},
        {"market": "NOPE-USDT"},
        {"side": "both"},
        {"status": "open"},
        {"page": "last"},
        {"date_from": "2026-03-12", "date_to": "2026-03-10"},
    ],
)
def test_bad_filter_values_show_an_error_and_filter_nothing(
    signed_in: Client, history: History, params: dict[str, str]
) -> None:
    everything = _order_ids(signed_in)
    before = OutboxEntry.objects.count()

    response = signed_in.get(reverse("orders"), params)

    assert response.status_code == 200
    if "page" not in params:
        assert "alert-error" in response.content.decode()
        assert response.context["form"].errors
    if "date_to" in params and "date_from" in params:
        # Both are days; only the end is refused, the start still applies.
        return
    assert [o.pk for o in response.context["items"]] == everything
    assert OutboxEntry.objects.count() == before
    trades = signed_in.get(reverse("orders"), {"tab": "trades", **params})
    assert trades.status_code == 200
    assert len(trades.context["items"]) == 3
    assert (
        _csv(signed_in.get(reverse("orders_csv"), params))[1:]
        == _csv(signed_in.get(reverse("orders_csv")))[1:]
    )


def test_bad_value_message_is_clear(signed_in: Client, history: History) -> None:
    body = _page(signed_in, date_from="soon")
    assert "Enter a date as YYYY-MM-DD" in body
    body = _page(signed_in, date_from="2026-02-30")
    assert "is not a date on the calendar" in body


# --- pages --------------------------------------------------------------------------------


def test_pages_of_fifty_keep_the_filters(signed_in: Client, history: History) -> None:
    base = T1 - timedelta(days=3)
    for i in range(105):
        _terminal(
            history.alice, history.hy, OrderStatus.CANCELED, base + timedelta(minutes=i), "sell"
        )
    expected = list(
        Order.objects.filter(user=history.alice, side="sell")
        .order_by("-pk")
        .values_list("pk", flat=True)
    )
    assert len(expected) == 106  # and alice's maker sell on HY

    first = signed_in.get(reverse("orders"), {"side": "sell", "market": "HY-USDT"})
    assert [o.pk for o in first.context["items"]] == expected[:50]
    assert first.context["previous_url"] is None
    next_url = first.context["next_url"]
    assert "side=sell" in next_url
    assert "market=HY-USDT" in next_url
    assert "page=2" in next_url
    assert f'href="{reverse("orders")}{next_url}"'.replace("&", "&amp;") in first.content.decode()

    second = signed_in.get(reverse("orders") + next_url)
    assert [o.pk for o in second.context["items"]] == expected[50:100]
    assert "page=1" in second.context["previous_url"]
    assert "side=sell" in second.context["previous_url"]
    third = signed_in.get(reverse("orders") + second.context["next_url"])
    assert [o.pk for o in third.context["items"]] == expected[100:]
    assert third.context["next_url"] is None
    # The tab links and the CSV link keep the filters but not the page.
    assert "page" not in third.context["csv_url"]
    assert "side=sell" in third.context["csv_url"]
    assert "tab=trades" in third.context["trades_url"]
    assert "page" not in third.context["trades_url"]


# --- CSV ----------------------------------------------------------------------------------


def test_trades_csv_is_exact(signed_in: Client, history: History) -> None:
    mine = _alice_trades(history)
    response = signed_in.get(reverse("trades_csv"), {"market": "HX-USDT"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="trades_HX-USDT.csv"'
    assert not hasattr(response, "content")  # streamed
    rows = _csv(response)
    t2, t1 = mine[1], mine[2]
    assert rows == [
        ["id", "created_at", "market", "order_id", "side", "role", "price", "amount",
         "total", "fee", "fee_asset"],
        [str(t2.pk), _iso(t2.created_at), "HX-USDT", str(t2.buy_order_id), "buy", "maker",
         "99.750000", "1.20000000", "119.700000", f"{t2.maker_fee:.6f}", "USDT"],
        [str(t1.pk), _iso(t1.created_at), "HX-USDT", str(t1.buy_order_id), "buy", "taker",
         "100.250000", "0.50000000", "50.125000", f"{t1.taker_fee:.6f}", "USDT"],
    ]  # fmt: skip
    assert rows[1][1].startswith("2026-03-12T10:00:05.")  # the settling clock's instant
    assert rows[2][1].startswith("2026-03-10T10:00:00.")
    assert D(rows[1][9]) == D("0.1197")  # 0.1% of 119.7, exact
    assert D(rows[2][9]) == D("0.10025")  # 0.2% of 50.125


def test_orders_csv_is_exact_and_filtered(signed_in: Client, history: History) -> None:
    response = signed_in.get(
        reverse("orders_csv"),
        {"status": "new", "date_from": "2026-03-15", "date_to": "۲۰۲۶-۰۳-۱۵"},  # noqa: RUF001 - Persian/Arabic-Indic digits on purpose
    )
    assert response["Content-Disposition"] == (
        'attachment; filename="orders_2026-03-15_2026-03-15.csv"'
    )
    order = history.open_order
    assert _csv(response) == [
        ["id", "created_at", "market", "side", "type", "status", "price", "quantity",
         "filled_quantity", "filled_quote", "fee_paid", "fee_asset", "client_order_id"],
        [str(order.pk), _iso(order.created_at), "HX-USDT", "buy", "limit", "new", "90.000000",
         "0.10000000", "0.00000000", "0.000000", "0.000000", "USDT", "resting"],
    ]  # fmt: skip


def test_csv_has_every_matching_row_and_never_others(signed_in: Client, history: History) -> None:
    rows = _csv(signed_in.get(reverse("orders_csv")))[1:]
    assert [int(r[0]) for r in rows] == list(
        Order.objects.filter(user=history.alice).order_by("-pk").values_list("pk", flat=True)
    )
    trade_rows = _csv(signed_in.get(reverse("trades_csv")))[1:]
    assert [int(r[0]) for r in trade_rows] == [t.pk for t in _alice_trades(history)]


# --- cancel -------------------------------------------------------------------------------


def test_open_orders_have_a_cancel_button_and_others_do_not(
    signed_in: Client, history: History
) -> None:
    body = _page(signed_in)
    assert reverse("order_cancel", args=[history.open_order.pk]) in body
    assert reverse("order_cancel", args=[history.terminal["canceled"].pk]) not in body
    assert "csrfmiddlewaretoken" in body


def test_cancel_sends_the_cancel_command(signed_in: Client, history: History) -> None:
    back = reverse("orders") + "?status=new"
    response = signed_in.post(
        reverse("order_cancel", args=[history.open_order.pk]), {"back": back}, follow=True
    )

    assert response.redirect_chain == [(back, 302)]
    cancel = OutboxEntry.objects.order_by("pk").last()
    assert cancel is not None
    assert cancel.payload == {
        "type": "cancel_order",
        "order_id": history.open_order.pk,
        "account_id": history.alice.pk,
    }
    assert f"Cancellation of order {history.open_order.pk} requested." in response.content.decode()


def test_cancel_of_someone_elses_order_is_refused_and_changes_nothing(
    signed_in: Client, history: History
) -> None:
    before = list(OutboxEntry.objects.values_list("pk", flat=True))
    bob_order = Order.objects.get(pk=history.bob_order.pk)

    response = signed_in.post(
        reverse("order_cancel", args=[history.bob_order.pk]),
        {"back": "https://evil.example/"},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("orders"), 302)]
    assert "No such order." in response.content.decode()
    assert list(OutboxEntry.objects.values_list("pk", flat=True)) == before
    after = Order.objects.get(pk=history.bob_order.pk)
    assert (after.status, after.hold_remaining) == (bob_order.status, bob_order.hold_remaining)


def test_cancel_of_a_closed_order_is_refused(signed_in: Client, history: History) -> None:
    before = OutboxEntry.objects.count()
    response = signed_in.post(
        reverse("order_cancel", args=[history.terminal["canceled"].pk]), follow=True
    )
    assert "The order is no longer open." in response.content.decode()
    assert OutboxEntry.objects.count() == before


def test_cancel_needs_post_and_csrf(history: History) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(history.alice)
    before = OutboxEntry.objects.count()
    assert client.get(reverse("order_cancel", args=[history.open_order.pk])).status_code == 405
    assert client.post(reverse("order_cancel", args=[history.open_order.pk])).status_code == 403
    assert OutboxEntry.objects.count() == before


# --- languages ----------------------------------------------------------------------------


def test_english_times_are_tehran_wall_clock(signed_in: Client, history: History) -> None:
    body = _page(signed_in, tab="trades")
    assert "2026-03-10 13:30:00" in body
    assert "2026-03-12 13:30:05" in body


def test_persian_page_shows_jalali_dates_and_persian_digits(
    signed_in: Client, history: History
) -> None:
    signed_in.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"
    body = _page(signed_in, tab="trades")

    assert 'dir="rtl"' in body
    assert "۱۴۰۴/۱۲/۱۹ ۱۳:۳۰:۰۰" in body  # T1 in Tehran, Jalali  # noqa: RUF001 - Persian/Arabic-Indic digits on purpose
    assert "۱۴۰۴/۱۲/۲۱ ۱۳:۳۰:۰۵" in body  # T2  # noqa: RUF001 - Persian/Arabic-Indic digits on purpose
    assert "۱۰۰.۲۵۰۰۰۰" in body  # a price, Persian digits  # noqa: RUF001 - Persian/Arabic-Indic digits on purpose
    assert "100.250000" not in body
    assert "سفارش‌ها و معاملات" in body  # noqa: RUF001 - Persian "Orders and trades"
    orders_body = _page(signed_in, date_from="نه")
    assert "alert-error" in orders_body
    assert "تاریخ را به شکل YYYY-MM-DD وارد کنید" in orders_body  # the error, translated


@pytest.mark.parametrize(
    "back",
    ["//evil.example/orders/", "/orders//evil", "/orders/?a=1\r\nSet-Cookie: x=1", "/wallet/"],
)
def test_cancel_never_redirects_off_the_page(
    signed_in: Client, history: History, back: str
) -> None:
    response = signed_in.post(
        reverse("order_cancel", args=[history.terminal["canceled"].pk]), {"back": back}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("orders")


# --- the display filters ------------------------------------------------------------------


def test_when_and_digits_filters(settings: Any) -> None:
    from django.utils import translation

    from trading.templatetags.trading_display import digits, when

    settings.REPORTING_TIME_ZONE = "Asia/Tehran"
    with translation.override("en"):
        assert when(T1) == "2026-03-10 13:30:00"
        assert digits("12.50") == "12.50"
        assert when(None) == ""
    with translation.override("fa"):
        persian = str.maketrans("0123456789", "".join(chr(0x06F0 + i) for i in range(10)))
        assert when(T1) == "1404/12/19 13:30:00".translate(persian)
        assert digits("12.50 USDT") == "\u06f1\u06f2.\u06f5\u06f0 USDT"
        assert digits(None) == ""
    settings.REPORTING_TIME_ZONE = "UTC"
    with translation.override("en"):
        assert when(T1) == "2026-03-10 10:00:00"
