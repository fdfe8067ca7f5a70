"""The fee schedule, edited by staff: through markets.services, audited with before/after,
every bad value refused with its field and nothing changed; users' tiers listed read-only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AuditLog, User
from markets.errors import InvalidFeeTier
from markets.fees import set_user_tiers
from markets.models import FeeTier, UserFeeTier
from markets.services import delete_fee_tier, save_fee_tier

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def vip() -> FeeTier:
    return FeeTier.objects.create(
        name="VIP", min_volume_30d=D("1000"), maker_fee=D("0.0005"), taker_fee=D("0.001")
    )


def _schedule() -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return list(
        FeeTier.objects.order_by("pk").values_list(
            "name", "min_volume_30d", "maker_fee", "taker_fee"
        )
    )


def _form(**overrides: str) -> dict[str, str]:
    data = {"name": "Pro", "min_volume_30d": "100", "maker_fee": "0.0008", "taker_fee": "0.0015"}
    data.update(overrides)
    return data


def test_create_change_delete_are_audited_with_before_and_after(staff: User, vip: FeeTier):
    pro = save_fee_tier(
        tier=None,
        values={
            "name": "Pro",
            "min_volume_30d": D("100"),
            "maker_fee": D("0.0008"),
            "taker_fee": D("0.0015"),
        },
        actor=staff,
    )
    save_fee_tier(tier=vip, values={"taker_fee": D("0.0009")}, actor=staff)
    delete_fee_tier(tier=pro, actor=staff)

    assert _schedule() == [("VIP", D("1000"), D("0.0005"), D("0.0009"))]
    rows = list(AuditLog.objects.filter(action__startswith="fee_tier.").order_by("pk"))
    assert [row.action for row in rows] == [
        "fee_tier.created",
        "fee_tier.changed",
        "fee_tier.deleted",
    ]
    assert all(row.actor_id == staff.pk for row in rows)
    assert rows[0].details["after"]["name"] == "Pro"
    assert rows[1].details == {
        "before": {"taker_fee": "0.001000"},
        "after": {"taker_fee": "0.0009"},
    }
    assert rows[2].details["before"]["min_volume_30d"] == "100.000000000000000000"


BAD = [
    ("empty name", {"name": "  "}, "name"),
    ("long name", {"name": "x" * 65}, "name"),
    ("negative threshold", {"min_volume_30d": D("-1")}, "min_volume_30d"),
    ("huge threshold", {"min_volume_30d": D("1e18")}, "min_volume_30d"),
    ("threshold decimals", {"min_volume_30d": D("1.0000000000000000001")}, "min_volume_30d"),
    ("NaN", {"maker_fee": D("NaN")}, "maker_fee"),
    ("infinite", {"taker_fee": D("Infinity")}, "taker_fee"),
    ("not a decimal", {"maker_fee": 0.001}, "maker_fee"),
    ("negative rate", {"maker_fee": D("-0.0001")}, "maker_fee"),
    ("rate of 1", {"taker_fee": D("1")}, "taker_fee"),
    ("rate decimals", {"taker_fee": D("0.0000001")}, "taker_fee"),
    ("duplicate name", {"name": "VIP"}, "name"),
    ("duplicate threshold", {"min_volume_30d": D("1000")}, "min_volume_30d"),
    ("unknown field", {"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("_case", "values", "field"), BAD, ids=[case[0] for case in BAD])
def test_bad_values_are_refused_and_change_nothing(staff, vip, _case, values, field):
    pro = FeeTier.objects.create(
        name="Pro", min_volume_30d=D("100"), maker_fee=D("0.0008"), taker_fee=D("0.0015")
    )
    before, audits = _schedule(), AuditLog.objects.count()
    with pytest.raises(InvalidFeeTier) as refused:
        save_fee_tier(tier=pro, values=values, actor=staff)
    assert refused.value.field == field
    assert refused.value.code == "fee_tier_invalid"
    assert _schedule() == before
    assert AuditLog.objects.count() == audits


def test_a_new_tier_needs_every_field(staff):
    with pytest.raises(InvalidFeeTier) as refused:
        save_fee_tier(tier=None, values={"name": "Pro"}, actor=staff)
    assert refused.value.field == "min_volume_30d"
    assert not FeeTier.objects.exists()


def test_admin_add_edit_delete(staff_client, staff, vip):
    client = staff_client
    assert client.get(reverse("admin:markets_feetier_changelist")).status_code == 200
    response = client.post(reverse("admin:markets_feetier_add"), _form())
    assert response.status_code == 302, response.content[:2000]
    pro = FeeTier.objects.get(name="Pro")
    assert (pro.min_volume_30d, pro.maker_fee, pro.taker_fee) == (
        D("100"),
        D("0.0008"),
        D("0.0015"),
    )

    url = reverse("admin:markets_feetier_change", args=[vip.pk])
    form = _form(name="VIP", min_volume_30d="1000", maker_fee="0.0004", taker_fee="0.001")
    assert client.post(url, form).status_code == 302
    vip.refresh_from_db()
    assert vip.maker_fee == D("0.0004")
    changed = AuditLog.objects.get(action="fee_tier.changed")
    assert changed.details == {
        "before": {"maker_fee": "0.000500"},
        "after": {"maker_fee": "0.0004"},
    }
    assert changed.ip_address == "127.0.0.1"

    delete = reverse("admin:markets_feetier_delete", args=[pro.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not FeeTier.objects.filter(pk=pro.pk).exists()
    assert AuditLog.objects.filter(action="fee_tier.deleted").count() == 1


ADMIN_BAD = [
    ("negative rate", {"maker_fee": "-0.001"}, "maker_fee"),
    ("rate of 1", {"taker_fee": "1"}, "taker_fee"),
    ("not a number", {"taker_fee": "abc"}, "taker_fee"),
    ("NaN", {"maker_fee": "NaN"}, "maker_fee"),
    ("exponent", {"min_volume_30d": "1e400"}, "min_volume_30d"),
    ("too many decimals", {"maker_fee": "0.00000001"}, "maker_fee"),
    ("negative threshold", {"min_volume_30d": "-5"}, "min_volume_30d"),
    ("duplicate threshold", {"min_volume_30d": "1000"}, "min_volume_30d"),
    ("duplicate name", {"name": "VIP"}, "name"),
    ("missing name", {"name": ""}, "name"),
]


@pytest.mark.parametrize(("_case", "data", "field"), ADMIN_BAD, ids=[c[0] for c in ADMIN_BAD])
def test_admin_refuses_bad_input_with_the_field_and_changes_nothing(
    staff_client, vip, _case, data, field
):
    before, audits = _schedule(), AuditLog.objects.count()
    response = staff_client.post(reverse("admin:markets_feetier_add"), _form(**data))
    assert response.status_code == 200  # the form again, with the error
    assert field in response.context["adminform"].form.errors
    assert _schedule() == before
    assert AuditLog.objects.count() == audits


def test_users_tiers_are_listed_read_only(staff_client, alice, vip):
    set_user_tiers(volumes={alice.pk: D("5000")})
    page = staff_client.get(reverse("admin:markets_userfeetier_changelist"))
    assert page.status_code == 200
    assert alice.email in page.content.decode()
    row = UserFeeTier.objects.get(user=alice)
    change = staff_client.post(
        reverse("admin:markets_userfeetier_change", args=[row.pk]), {"tier": ""}
    )
    assert change.status_code == 403
    assert UserFeeTier.objects.get(user=alice).tier_id == vip.pk
    assert staff_client.get(reverse("admin:markets_userfeetier_add")).status_code == 403


def test_non_staff_cannot_reach_the_fee_schedule(client, alice, vip):
    client.force_login(alice)
    response = client.post(reverse("admin:markets_feetier_add"), _form())
    assert response.status_code == 302  # to the admin's sign-in
    assert _schedule() == [("VIP", D("1000"), D("0.0005"), D("0.001"))]
