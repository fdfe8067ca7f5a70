"""The web pages: access, rendering, the 2FA login step, Persian/RTL, and the wallet's
withdrawal form (2FA enforced, bad input shows an error and changes nothing)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import (
    Asset,
    AuditLog,
    Balance,
    JournalEntry,
    KycLevel,
    Posting,
    User,
    Withdrawal,
    WithdrawalLimit,
    WithdrawalStatus,
)
from tests.accounts.web_support import enable_totp, login_with_totp, totp_code, wrong_code
from tests.conftest import PASSWORD, fund
from tests.factories import MarketFactory

PAGES = ["wallet", "api_keys", "security"]

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


def books(user: User) -> tuple[object, ...]:
    """Everything a withdrawal could touch, for "nothing changed" assertions."""
    return (
        sorted(Balance.objects.filter(user=user).values_list("asset__code", "available", "locked")),
        Withdrawal.objects.count(),
        JournalEntry.objects.count(),
        Posting.objects.count(),
    )


@pytest.fixture
def funded_alice(alice: User, assets: dict[str, Asset]) -> User:
    """alice with 2 BTC and a daily limit that allows withdrawing it."""
    WithdrawalLimit.objects.create(
        asset=assets["BTC"], kyc_level=KycLevel.EMAIL_VERIFIED, daily_amount=Decimal("10")
    )
    fund(alice, assets["BTC"], "2")
    return alice


def withdraw(client: Client, asset: Asset, amount: str, code: str, **extra: str) -> TestResponse:
    data = {
        "withdraw-asset": str(asset.pk),
        "withdraw-amount": amount,
        "withdraw-address": extra.get("address", "bc1qexampleaddress000000000000000000000"),
        "withdraw-totp_code": code,
    }
    return client.post(reverse("wallet"), data)


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_login(client: Client, name: str) -> None:
    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={reverse(name)}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "text"),
    [("wallet", "Request withdrawal"), ("api_keys", "Create key"), ("security", "Recovery codes")],
)
def test_page_renders_for_signed_in_user(
    client: Client, alice: User, assets: dict[str, Asset], name: str, text: str
) -> None:
    client.force_login(alice)

    response = client.get(reverse(name))

    assert response.status_code == 200
    body = response.content.decode()
    assert text in body
    assert 'dir="ltr"' in body
    assert "alice@example.com" in body  # the signed-in header


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["home", "account_login", "account_signup"])
def test_public_pages_render(client: Client, assets: dict[str, Asset], name: str) -> None:
    response = client.get(reverse(name))

    assert response.status_code == 200
    assert 'href="/static/css/app.css"' in response.content.decode()


@pytest.mark.django_db
def test_home_lists_assets(client: Client, assets: dict[str, Asset]) -> None:
    body = client.get(reverse("home")).content.decode()

    assert "Bitcoin" in body
    assert "Toman" in body


@pytest.mark.django_db
def test_signup_signs_in_and_lands_on_the_wallet(client: Client) -> None:
    response = client.post(
        reverse("account_signup"),
        {"email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("wallet")
    assert User.objects.filter(email="carol@example.com").exists()


@pytest.mark.django_db
def test_login_without_2fa_needs_only_the_password(client: Client, alice: User) -> None:
    response = client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("wallet")


@pytest.mark.django_db
def test_login_with_2fa_asks_for_the_code(client: Client, alice: User) -> None:
    enable_totp(alice)

    login_with_totp(client, alice)

    assert client.get(reverse("wallet")).status_code == 200


@pytest.mark.django_db
def test_login_with_wrong_code_does_not_sign_in(client: Client, alice: User) -> None:
    secret = enable_totp(alice)
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})

    response = client.post(reverse("mfa_authenticate"), {"code": wrong_code(secret)})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("wallet")).status_code == 302


@pytest.mark.django_db
def test_mfa_step_renders_in_product_layout(client: Client, alice: User) -> None:
    enable_totp(alice)
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})

    body = client.get(reverse("mfa_authenticate")).content.decode()

    assert "Two-factor authentication" in body
    assert 'class="card auth-card"' in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["mfa_index", "account_change_password", "account_reauthenticate", "account_email"]
)
def test_allauth_pages_render_in_the_product_layout(client: Client, alice: User, name: str) -> None:
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})

    response = client.get(reverse(name))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'href="/static/css/app.css"' in body
    assert 'class="btn btn-primary"' in body  # allauth's elements use our button styles
    assert reverse("security") in body


@pytest.mark.django_db
def test_totp_setup_page_shows_the_qr_code_after_reauthentication(
    client: Client, alice: User
) -> None:
    client.post(reverse("account_login"), {"login": alice.email, "password": PASSWORD})
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    body = client.get(reverse("mfa_activate_totp")).content.decode()

    assert 'class="qr"' in body
    assert client.session["mfa.totp.secret"] in body  # the manual-entry secret, for the user


# --- Persian


@pytest.mark.django_db
def test_persian_page_is_right_to_left_and_translated(client: Client, alice: User) -> None:
    client.force_login(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"

    body = client.get(reverse("wallet")).content.decode()

    assert '<html lang="fa" dir="rtl">' in body
    assert "کیف پول" in body  # "Wallet"
    assert "درخواست برداشت" in body  # "Request withdrawal"
    assert "Request withdrawal" not in body


@pytest.mark.django_db
def test_language_switcher_sets_persian(client: Client) -> None:
    response = client.post(reverse("set_language"), {"language": "fa", "next": reverse("home")})

    assert response.status_code == 302
    body = client.get(reverse("home")).content.decode()
    assert 'dir="rtl"' in body
    assert "ساخت حساب" in body  # "Create account"


@pytest.mark.django_db
def test_persian_login_page_uses_allauth_and_our_translations(client: Client) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"

    body = client.get(reverse("account_login")).content.decode()

    assert 'dir="rtl"' in body
    assert "ورود" in body  # "Sign in"


# --- wallet


@pytest.mark.django_db
def test_wallet_shows_balances_instructions_and_reference(
    client: Client, funded_alice: User, assets: dict[str, Asset]
) -> None:
    Asset.objects.filter(code="BTC").update(deposit_instructions="Send BTC to bc1qdepositaddr")
    client.force_login(funded_alice)

    body = client.get(reverse("wallet")).content.decode()

    assert '<td class="num">2</td>' in body  # available and total, exact decimal, no exponent
    assert "Send BTC to bc1qdepositaddr" in body
    assert f"EX-{funded_alice.pk:06d}" in body
    assert "No withdrawals yet." in body
    assert "+2" in body  # the deposit and its ledger posting


@pytest.mark.django_db
def test_withdrawal_without_2fa_is_refused_and_changes_nothing(
    client: Client, funded_alice: User, assets: dict[str, Asset]
) -> None:
    client.force_login(funded_alice)
    before = books(funded_alice)

    response = withdraw(client, assets["BTC"], "1", "123456")

    assert response.status_code == 400
    assert "Set up two-factor authentication first." in response.content.decode()
    assert books(funded_alice) == before


@pytest.mark.django_db
def test_withdrawal_with_wrong_code_is_refused_and_changes_nothing(
    client: Client, funded_alice: User, assets: dict[str, Asset]
) -> None:
    secret = enable_totp(funded_alice)
    client.force_login(funded_alice)
    before = books(funded_alice)

    response = withdraw(client, assets["BTC"], "1", wrong_code(secret))

    assert response.status_code == 400
    assert "The authenticator code is not valid." in response.content.decode()
    assert books(funded_alice) == before
    failed = AuditLog.objects.get(action="auth.totp_failed")
    assert (failed.actor, failed.ip_address, failed.details) == (
        funded_alice,
        "127.0.0.1",
        {"purpose": "totp_code"},
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "amount", "message"),
    [
        ("too many decimals", "0.000000001", "more than 8 decimal places"),
        ("not a number", "1e3", "plain decimal"),
        ("negative", "-1", "greater than zero"),
        ("zero", "0", "greater than zero"),
        ("more than the balance", "3", "Insufficient"),
    ],
)
def test_withdrawal_with_bad_amount_shows_the_error_and_changes_nothing(
    client: Client,
    funded_alice: User,
    assets: dict[str, Asset],
    _case: str,
    amount: str,
    message: str,
) -> None:
    secret = enable_totp(funded_alice)
    client.force_login(funded_alice)
    before = books(funded_alice)

    response = withdraw(client, assets["BTC"], amount, totp_code(secret))

    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert 'class="field has-error"' in body or 'class="alert alert-error"' in body
    assert books(funded_alice) == before


@pytest.mark.django_db
def test_withdrawal_with_valid_code_is_requested(
    client: Client, funded_alice: User, assets: dict[str, Asset]
) -> None:
    secret = enable_totp(funded_alice)
    client.force_login(funded_alice)

    response = withdraw(client, assets["BTC"], "0.5", totp_code(secret))

    assert response.status_code == 302
    withdrawal = Withdrawal.objects.get()
    assert (withdrawal.user, withdrawal.amount, withdrawal.status) == (
        funded_alice,
        Decimal("0.5"),
        WithdrawalStatus.PENDING,
    )
    balance = Balance.objects.get(user=funded_alice, asset=assets["BTC"])
    assert (balance.available, balance.locked) == (Decimal("1.5"), Decimal("0.5"))
    page = client.get(reverse("wallet")).content.decode()
    assert "Withdrawal of 0.5 BTC requested" in page
    assert "Pending review" in page


@pytest.mark.django_db
def test_withdrawal_code_cannot_be_replayed(
    client: Client, funded_alice: User, assets: dict[str, Asset]
) -> None:
    secret = enable_totp(funded_alice)
    client.force_login(funded_alice)
    code = totp_code(secret)
    withdraw(client, assets["BTC"], "0.5", code)
    before = books(funded_alice)

    response = withdraw(client, assets["BTC"], "0.5", code)

    assert response.status_code == 400
    assert books(funded_alice) == before


@pytest.mark.django_db
def test_wallet_form_is_csrf_protected(funded_alice: User, assets: dict[str, Asset]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(funded_alice)
    before = books(funded_alice)

    response = withdraw(client, assets["BTC"], "0.5", "123456")

    assert response.status_code == 403
    assert books(funded_alice) == before


# --- wallet: estimated value in USDT


def value_cells(body: str) -> dict[str, str]:
    """Asset code -> the text of its estimated-value cell on the wallet page."""
    cells = {}
    tbody = body.split('id="balances"')[1].split("<tbody>")[1].split("</tbody>")[0]
    for row in tbody.split("<tr>")[1:]:
        code = row.split('class="asset-code">')[1].split("<")[0]
        cells[code] = row.split("data-value=")[1].split(">", 1)[1].split("</td>")[0]
    return cells


def value_total(body: str) -> str:
    return body.split('id="value-total"><strong>')[1].split("</strong>")[0]


@pytest.fixture
def priced(assets: dict[str, Asset]) -> None:
    """BTC-USDT last traded at 60000.01, ETH-USDT never traded, USDT-IRT (IRT is the quote,
    so it does not price IRT in USDT), and an unlisted XRP-like market with a price."""
    usdt = assets["USDT"]
    MarketFactory.create(base=assets["BTC"], quote=usdt, last_price=Decimal("60000.01"))
    MarketFactory.create(base=assets["ETH"], quote=usdt, last_price=None)
    MarketFactory.create(
        base=usdt,
        quote=assets["IRT"],
        tick_size=Decimal("10"),
        lot_size=Decimal("1"),
        min_quantity=Decimal("1"),
        last_price=Decimal("100000"),
    )


@pytest.mark.django_db
def test_wallet_estimated_value_exact(
    client: Client, alice: User, mallory: User, assets: dict[str, Asset], priced: None
) -> None:
    fund(alice, assets["BTC"], "0.12345678")
    fund(alice, assets["USDT"], "100.5")
    fund(alice, assets["ETH"], "2")
    fund(alice, assets["IRT"], "1000")
    fund(mallory, assets["BTC"], "3")  # someone else's holdings count nowhere
    client.force_login(alice)

    body = client.get(reverse("wallet")).content.decode()

    # 0.12345678 * 60000.01 = 7407.4080345678 -> 7407.408035 (USDT has 6 places)
    assert value_cells(body) == {
        "BTC": "7407.408035",
        "ETH": "—",
        "IRT": "—",
        "USDT": "100.500000",
    }
    assert value_total(body) == "7507.908035 USDT"  # 7507.9080345678, rounded once
    assert "Estimated value (USDT)" in body
    assert "Not included in the total (no market price): ETH, IRT." in body


@pytest.mark.django_db
def test_wallet_estimated_value_counts_locked_funds_and_skips_unlisted_markets(
    client: Client, alice: User, assets: dict[str, Asset], priced: None
) -> None:
    from accounts.services.withdrawals import request_withdrawal
    from markets.models import Market

    Market.objects.filter(symbol="BTC-USDT").update(listed=False)
    fund(alice, assets["USDT"], "10")
    fund(alice, assets["BTC"], "1")
    WithdrawalLimit.objects.create(
        asset=assets["USDT"], kyc_level=KycLevel.EMAIL_VERIFIED, daily_amount=Decimal("100")
    )
    enable_totp(alice)
    request_withdrawal(user=alice, asset=assets["USDT"], amount=Decimal("4"), address="TAddr1")
    assert Balance.objects.get(user=alice, asset=assets["USDT"]).locked == Decimal("4")
    client.force_login(alice)

    body = client.get(reverse("wallet")).content.decode()

    assert value_cells(body)["BTC"] == "—"
    assert value_total(body) == "10.000000 USDT"
    assert "(no market price): BTC." in body


@pytest.mark.django_db
def test_wallet_estimated_value_without_holdings(
    client: Client, alice: User, assets: dict[str, Asset], priced: None
) -> None:
    client.force_login(alice)

    body = client.get(reverse("wallet")).content.decode()

    assert value_cells(body) == {"BTC": "0.000000", "ETH": "—", "IRT": "—", "USDT": "0.000000"}
    assert value_total(body) == "0.000000 USDT"
    assert 'id="value-unpriced"' not in body  # nothing held goes unpriced


@pytest.mark.django_db
def test_wallet_persian_dates_and_estimated_value(
    client: Client, alice: User, assets: dict[str, Asset], priced: None
) -> None:
    fund(alice, assets["USDT"], "5")
    client.force_login(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"

    body = client.get(reverse("wallet")).content.decode()

    assert "ارزش تخمینی (USDT)" in body  # "Estimated value (USDT)"
    assert "جمع تخمینی" in body  # "Estimated total"
    deposit_row = body.split('id="deposits"')[1].split("<tbody>")[1].split("</tr>")[0]
    date_cell = deposit_row.split('<td class="mono">')[1].split("</td>")[0]
    assert date_cell[:2] == "\u06f1\u06f4"  # a Jalali year 14xx in Persian digits
    assert not any(ch.isascii() and ch.isdigit() for ch in date_cell)
