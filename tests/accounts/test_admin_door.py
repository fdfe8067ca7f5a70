"""The admin's door: allauth's sign-in, then TOTP; staff without 2FA set it up straight
after signing in, typing the password once."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.accounts.web_support import enable_totp, login_with_totp, totp_code
from tests.conftest import PASSWORD

ADMIN = "/admin/"


@pytest.mark.django_db
def test_anonymous_admin_goes_to_the_allauth_login(client: Client) -> None:
    response = client.get(ADMIN, follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))
    assert "next=%2Fadmin%2F" in response.redirect_chain[-1][0]


@pytest.mark.django_db
def test_staff_without_2fa_cannot_reach_the_admin(client: Client, staff: User) -> None:
    response = client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert response.status_code == 302  # signed in: no second factor exists yet

    response = client.get(ADMIN, follow=True)

    # Straight to the TOTP set-up: the password was typed a moment ago.
    hops = [url for url, _status in response.redirect_chain]
    assert hops[-1] == reverse("mfa_activate_totp")
    body = response.content.decode()
    assert "Staff must set up two-factor authentication" in body
    assert 'class="qr"' in body
    assert "Site administration" not in body
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302


@pytest.mark.django_db
def test_staff_sign_in_then_2fa_set_up_asks_for_the_password_once(
    client: Client, staff: User
) -> None:
    response = client.post(
        f"{reverse('account_login')}?next={ADMIN}", {"login": staff.email, "password": PASSWORD}
    )
    setup = client.get(response["Location"], follow=True)
    secret = client.session["mfa.totp.secret"]
    activated = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)}, follow=True)
    gate = client.get(ADMIN, follow=True)  # the new factor is asked for once, then the admin
    done = client.post(gate.redirect_chain[-1][0], {"code": totp_code(secret)}, follow=True)

    hops = [url for page in (setup, activated, gate, done) for url, _ in page.redirect_chain]
    assert not [url for url in hops if url.startswith(reverse("account_reauthenticate"))]
    assert gate.redirect_chain[-1][0].startswith(reverse("mfa_reauthenticate"))
    assert done.status_code == 200
    assert "Site administration" in done.content.decode()


@pytest.mark.django_db
def test_staff_signed_in_long_ago_still_reauthenticates_before_2fa_set_up(
    client: Client, staff: User, settings: Any
) -> None:
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 0  # any sign-in is already too old
    client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})

    response = client.get(ADMIN, follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("account_reauthenticate"))


@pytest.mark.django_db
def test_staff_with_2fa_reaches_the_admin_after_the_totp_step(client: Client, staff: User) -> None:
    enable_totp(staff)

    login_with_totp(client, staff, next_url=ADMIN)

    response = client.get(ADMIN)
    assert response.status_code == 200
    assert "Exchange staff" in response.content.decode()


@pytest.mark.django_db
def test_staff_session_without_the_totp_step_must_reauthenticate(
    client: Client, staff: User
) -> None:
    enable_totp(staff)
    client.force_login(staff)  # a session that never passed the TOTP step

    response = client.get(ADMIN, follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("mfa_reauthenticate"))
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302


@pytest.mark.django_db
def test_non_staff_user_is_refused(client: Client, alice: User) -> None:
    enable_totp(alice)
    login_with_totp(client, alice)

    response = client.get(ADMIN, follow=True)

    assert response.status_code == 403
