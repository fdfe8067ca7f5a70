"""The /account/ overview: login required, each card's content at two KYC levels, another
user's data never shown, and the Persian page (Jalali dates, Persian digits, headings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import (
    ApiKey,
    ApiKeyType,
    Asset,
    KycLevel,
    User,
    WebhookEndpoint,
    WebhookEventType,
)
from accounts.services.withdrawals import request_withdrawal
from markets.models import FeeTier, UserFeeTier
from tests.accounts.conftest import enable_totp
from tests.conftest import fund, make_user

pytestmark = pytest.mark.django_db
PERSIAN = str.maketrans("0123456789", "".join(chr(0x06F0 + i) for i in range(10)))


def fa(text: str) -> str:
    """`text` with Persian digits (U+06F0..U+06F9), written out independently of the code."""
    return text.translate(PERSIAN)


def page(client: Client, user: User, *, language: str | None = None) -> str:
    client.force_login(user)
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(reverse("account"))
    assert response.status_code == 200
    return response.content.decode()


def api_key(user: User, *, revoked: bool = False) -> ApiKey:
    return ApiKey.objects.create(
        user=user,
        label="bot",
        key=uuid.uuid4().hex,
        key_type=ApiKeyType.HMAC,
        secret_encrypted=b"not-a-real-secret",
        revoked_at=datetime.now(UTC) if revoked else None,
    )


def webhook(user: User, *, active: bool = True) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        user=user,
        url="https://hooks.example.com/x",
        events=[WebhookEventType.values[0]],
        secret_encrypted=b"not-a-real-secret",
        is_active=active,
    )


def test_url_is_account() -> None:
    assert reverse("account") == "/account/"
    assert reverse("fees") == "/account/fees/"


def test_login_required(client: Client) -> None:
    response = client.get(reverse("account"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_post_is_refused(client: Client, alice: User) -> None:
    client.force_login(alice)

    assert client.post(reverse("account")).status_code == 405


def test_profile_and_security_cards(client: Client, alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(date_joined=datetime(2024, 3, 1, 8, 0, tzinfo=UTC))
    alice.refresh_from_db()

    body = page(client, alice)

    assert "alice@example.com" in body
    assert "2024-03-01 11:30:00" in body  # Asia/Tehran, UTC+03:30
    assert "Active" in body.split('id="account-state">')[1].split("</dd>")[0]
    assert 'id="twofa-state">Off<' in body
    assert f'href="{reverse("security")}"' in body
    assert f'action="{reverse("account_logout")}"' in body
    assert 'static/css/account.css"' in body


def test_frozen_account_and_2fa_on(client: Client, alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_frozen=True)
    alice.refresh_from_db()
    enable_totp(alice)

    body = page(client, alice)

    assert "Frozen" in body
    assert "cannot trade, withdraw or create API keys" in body
    assert 'id="twofa-state">On<' in body


def test_limits_at_the_first_level_with_todays_withdrawal(
    client: Client, alice: User, usdt: Asset, btc: Asset, limits: None
) -> None:
    fund(alice, usdt, "500")
    enable_totp(alice)
    request_withdrawal(user=alice, asset=usdt, amount=Decimal("100"), address="TAliceAddress1")

    body = page(client, alice)

    assert 'id="kyc-level">Email verified<' in body
    assert 'id="kyc-next">Identity verified<' in body
    usdt_row = body.split('id="limit-USDT"')[1].split("</tr>")[0]
    cells = [cell.split("</td>")[0] for cell in usdt_row.split('class="num">')[1:]]
    assert cells == ["1000", "100", "900", "50000"]  # limit, used, left, next level
    btc_row = body.split('id="limit-BTC"')[1].split("</tr>")[0]
    assert [c.split("</td>")[0] for c in btc_row.split('class="num">')[1:]] == [
        "10",
        "0",
        "10",
        "10",
    ]
    assert "At the next level" in body


def test_limits_at_the_highest_level(client: Client, usdt: Asset, limits: None) -> None:
    carol = make_user("carol@example.com", kyc_level=KycLevel.FULL)

    body = page(client, carol)

    assert 'id="kyc-level">Fully verified<' in body
    assert "You have the highest level." in body
    assert "At the next level" not in body
    usdt_row = body.split('id="limit-USDT"')[1].split("</tr>")[0]
    assert [c.split("</td>")[0] for c in usdt_row.split('class="num">')[1:]] == [
        "1000000",
        "0",
        "1000000",
    ]


def test_an_asset_without_a_limit_row_is_not_allowed(
    client: Client, alice: User, assets: dict[str, Asset]
) -> None:
    body = page(client, alice)

    assert body.split('id="limit-ETH"')[1].split("</tr>")[0].count("Not allowed") == 2


def test_fee_card_with_a_tier_and_without(client: Client, alice: User, bob: User) -> None:
    FeeTier.objects.create(
        name="Gold",
        min_volume_30d=Decimal("0"),
        maker_fee=Decimal("0.0005"),
        taker_fee=Decimal("0.001"),
    )
    silver = FeeTier.objects.create(
        name="Platinum",
        min_volume_30d=Decimal("100000"),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0004"),
    )
    UserFeeTier.objects.create(user=alice, tier=FeeTier.objects.get(name="Gold"))

    alice_body = page(client, alice)
    assert 'id="fee-tier" class="ltr">Gold<' in alice_body
    assert 'id="fee-rates" class="ltr">0.05% / 0.1%<' in alice_body
    assert 'id="volume-30d" class="num ltr">0 USDT<' in alice_body
    assert f"To reach {silver.name}" in alice_body
    assert 'class="num ltr" id="to-next">100000 USDT<' in alice_body
    assert f'href="{reverse("fees")}"' in alice_body

    bob_body = page(client, bob)
    assert "Standard (market fees)" in bob_body
    assert "own fees" in bob_body.split('id="fee-rates"')[1].split("</dd>")[0]


def test_api_access_counts_only_the_users_own(client: Client, alice: User, mallory: User) -> None:
    api_key(alice)
    api_key(alice, revoked=True)
    webhook(alice)
    webhook(alice, active=False)
    for _ in range(3):
        api_key(mallory)
        webhook(mallory)

    body = page(client, alice)

    assert 'id="api-keys-count">1<' in body
    assert 'id="webhooks-count">2 <span class="small muted">(1 active)</span>' in body
    assert f'href="{reverse("api_keys")}"' in body
    assert f'href="{reverse("webhooks")}"' in body


def test_another_users_data_is_never_shown(
    client: Client, alice: User, mallory: User, usdt: Asset, limits: None
) -> None:
    fund(mallory, usdt, "500")
    enable_totp(mallory)
    request_withdrawal(user=mallory, asset=usdt, amount=Decimal("250"), address="TMallory1")
    User.objects.filter(pk=mallory.pk).update(kyc_level=KycLevel.IDENTITY, is_frozen=True)
    FeeTier.objects.create(
        name="Gold",
        min_volume_30d=Decimal("0"),
        maker_fee=Decimal("0.0005"),
        taker_fee=Decimal("0.001"),
    )
    UserFeeTier.objects.create(user=mallory, tier=FeeTier.objects.get())
    api_key(mallory)
    webhook(mallory)

    body = page(client, alice)

    assert "mallory@example.com" not in body
    assert "Frozen" not in body
    assert 'id="kyc-level">Email verified<' in body
    usdt_row = body.split('id="limit-USDT"')[1].split("</tr>")[0]
    assert [c.split("</td>")[0] for c in usdt_row.split('class="num">')[1:]] == [
        "1000",
        "0",
        "1000",
        "50000",
    ]
    assert "Standard (market fees)" in body
    assert 'id="api-keys-count">0<' in body
    assert 'id="webhooks-count">0<' in body


def test_persian_page(client: Client, alice: User, usdt: Asset, limits: None) -> None:
    User.objects.filter(pk=alice.pk).update(date_joined=datetime(2024, 12, 21, 10, 0, tzinfo=UTC))
    alice.refresh_from_db()
    api_key(alice)

    body = page(client, alice, language="fa")

    assert '<html lang="fa" dir="rtl">' in body
    assert fa("1403/10/01 13:30:00") in body  # 1 Dey 1403, 13:30 in Tehran
    assert "2024-12-21" not in body
    assert "حساب کاربری" in body  # "Account"
    assert "نمایه" in body  # "Profile"
    assert "تأیید هویت و سقف‌ها" in body  # noqa: RUF001 "Verification and limits"
    assert "Verification and limits" not in body
    usdt_row = body.split('id="limit-USDT"')[1].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in usdt_row.split('class="num">')[1:]]
    assert cells == [fa("1000"), fa("0"), fa("1000"), fa("50000")]
    assert f'id="api-keys-count">{fa("1")}<' in body


def test_left_today_is_what_the_withdrawal_service_allows(
    client: Client, alice: User, usdt: Asset, limits: None
) -> None:
    from accounts.errors import WithdrawalLimitExceeded

    fund(alice, usdt, "2000")
    enable_totp(alice)
    request_withdrawal(user=alice, asset=usdt, amount=Decimal("400"), address="TAliceAddress1")
    body = page(client, alice)
    usdt_row = body.split('id="limit-USDT"')[1].split("</tr>")[0]
    left = Decimal([c.split("</td>")[0] for c in usdt_row.split('class="num">')[1:]][2])
    assert left == Decimal("600")

    with pytest.raises(WithdrawalLimitExceeded):
        request_withdrawal(user=alice, asset=usdt, amount=left + 1, address="TAliceAddress1")
    request_withdrawal(user=alice, asset=usdt, amount=left, address="TAliceAddress1")

    body = page(client, alice)
    usdt_row = body.split('id="limit-USDT"')[1].split("</tr>")[0]
    assert [c.split("</td>")[0] for c in usdt_row.split('class="num">')[1:]][1:3] == ["1000", "0"]


def test_fee_card_shows_the_real_30_day_volume(client: Client, ledger_drift: None) -> None:
    """Trades rolled up and tiers assigned the nightly way: the card says what /account/fees/
    says (the same selector), for the trader only. The trade rows are written straight to
    the table (reporting's helper, no orders behind them), hence no ledger audit."""
    from datetime import time, timedelta
    from zoneinfo import ZoneInfo

    from reporting.calendars import local_today
    from reporting.rollup import rollup
    from reporting.tiers import assign_fee_tiers
    from tests.factories import AssetFactory, MarketFactory, UserFactory
    from tests.reporting.helpers import TradeRows

    for name, low, maker, taker in [
        ("Base", "0", "0.0009", "0.0019"),
        ("Pro", "1000", "0.0005", "0.0015"),
    ]:
        FeeTier.objects.create(
            name=name,
            min_volume_30d=Decimal(low),
            maker_fee=Decimal(maker),
            taker_fee=Decimal(taker),
        )
    usdt = AssetFactory.create(code="USDT", decimals=6)
    market = MarketFactory.create(base=AssetFactory.create(code="BTC"), quote=usdt)
    trader, counterparty, idle = UserFactory.create(), UserFactory.create(), UserFactory.create()
    today = local_today()
    moment = datetime.combine(
        today - timedelta(days=2), time(12), ZoneInfo(settings.REPORTING_TIME_ZONE)
    )
    TradeRows().add(
        market, buyer=trader, seller=counterparty, at=moment, price="1200", taker_fee="0.5"
    )
    rollup()
    assign_fee_tiers(today)

    body = page(client, trader)
    assert 'id="fee-tier" class="ltr">Pro<' in body
    assert 'id="fee-rates" class="ltr">0.05% / 0.15%<' in body
    assert 'id="volume-30d" class="num ltr">1200 USDT<' in body

    body = page(client, idle)  # no trades: not assigned, the markets' fees apply
    assert 'id="fee-tier" class="ltr">Standard (market fees)<' in body
    assert 'class="num ltr" id="to-next">1000 USDT<' in body
    assert 'id="volume-30d" class="num ltr">0 USDT<' in body
