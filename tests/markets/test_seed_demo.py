"""The demo seed: what a newcomer gets from `./run up` works without reading server logs."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import User
from markets.management.commands.seed_demo import FEE_TIERS, USERS
from markets.models import FeeTier

pytestmark = pytest.mark.django_db

ALICE_EMAIL, ALICE_PASSWORD = USERS[1][0], USERS[1][1]


def seed() -> None:
    call_command("seed_demo", stdout=StringIO())


def test_demo_users_addresses_are_verified_and_stay_so_on_a_second_run() -> None:
    seed()
    seed()

    rows = EmailAddress.objects.order_by("email").values_list("email", "verified", "primary")
    assert list(rows) == sorted((email, True, True) for email, *_rest in USERS)


def test_demo_trader_can_set_up_2fa_without_an_email_link(client: Client) -> None:
    seed()
    client.post(reverse("account_login"), {"login": ALICE_EMAIL, "password": ALICE_PASSWORD})
    # allauth's e-mail page files user.email as an address; unverified, it would block 2FA.
    assert client.get(reverse("account_email")).status_code == 200
    client.post(reverse("account_reauthenticate"), {"password": ALICE_PASSWORD})

    response = client.get(reverse("mfa_activate_totp"))

    assert response.status_code == 200
    assert 'class="qr"' in response.content.decode()
    assert not [m for m in mail.outbox if "confirm" in m.body.lower()]


def test_a_real_sign_up_still_verifies_by_email(client: Client) -> None:
    response = client.post(
        reverse("account_signup"),
        {
            "email": "carol@example.com",
            "password1": "a-long-pass-42",
            "password2": "a-long-pass-42",
        },
    )

    assert response.status_code == 302
    user = User.objects.get(email="carol@example.com")
    assert EmailAddress.objects.get(user=user).verified is False
    [message] = mail.outbox
    assert message.to == ["carol@example.com"]
    assert "/accounts/confirm-email/" in message.body


def test_the_demo_fee_schedule_is_loaded_once_and_staff_edits_survive() -> None:
    seed()
    names = list(FeeTier.objects.order_by("min_volume_30d").values_list("name", flat=True))
    assert names == [name for name, *_rest in FEE_TIERS]
    FeeTier.objects.filter(name="VIP 1").update(maker_fee=Decimal("0.0007"))
    seed()
    assert FeeTier.objects.count() == len(FEE_TIERS)
    assert FeeTier.objects.get(name="VIP 1").maker_fee == Decimal("0.0007")
