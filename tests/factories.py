"""factory_boy factories for the models tests build most: users, assets, markets.

Defaults are realistic and valid (a market passes its own CHECK constraints); a test names
only what it is about. Money never comes from a factory: `fund` and `funded_user` credit it
through the real deposit service, so the ledger always balances.

    market = MarketFactory.create()                   # XYZ0-USDT with the usual rules
    alice = funded_user(email="a@x.test", holdings={market.quote: "1000"})
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import factory
from factory.django import DjangoModelFactory

from accounts.models import Asset, User
from markets.models import Market, MarketStatus

PASSWORD = "correct horse battery staple 42"
D = Decimal


class UserFactory(DjangoModelFactory[User]):
    """A trader with the test password, created through the manager (hashed, lower-cased)."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        # Any: the factory's declared fields, passed on as the manager's keyword arguments.
        return model_class.objects.create_user(*args, **kwargs)


class AssetFactory(DjangoModelFactory[Asset]):
    """An asset with 8 decimals; an existing code is reused, not duplicated."""

    class Meta:
        model = Asset
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"XYZ{n}")
    name = factory.LazyAttribute(lambda asset: asset.code)
    decimals = 8


class MarketFactory(DjangoModelFactory[Market]):
    """A TRADING market priced in USDT (6 decimals): tick 0.01, lot 0.0001, minimum value 5,
    fees 0.1% maker / 0.2% taker, ±10% band, no last price yet; the symbol is BASE-QUOTE."""

    class Meta:
        model = Market

    base = factory.SubFactory(AssetFactory)
    quote = factory.SubFactory(AssetFactory, code="USDT", name="Tether", decimals=6)
    symbol = factory.LazyAttribute(lambda market: f"{market.base.code}-{market.quote.code}")
    tick_size = D("0.01")
    lot_size = D("0.0001")
    min_quantity = D("0.0001")
    max_quantity = D("1000")
    min_notional = D("5")
    maker_fee = D("0.001")
    taker_fee = D("0.002")
    price_band_pct = D("10")
    status = MarketStatus.TRADING
    last_price = None


def fund(user: User, asset: Asset, amount: str | Decimal, ref: str | None = None) -> None:
    """Credit a deposit through the real service."""
    from accounts.services.deposits import credit_deposit

    credit_deposit(
        user=user,
        asset=asset,
        amount=Decimal(amount),
        external_ref=ref or f"test-{uuid.uuid4().hex}",
    )


def funded_user(*, holdings: Mapping[Asset, str | Decimal], **fields: Any) -> User:
    """A new user (UserFactory `fields`) holding `holdings`, each credited as a deposit."""
    # Any: UserFactory's fields (email, kyc_level, is_frozen, ...).
    user = UserFactory.create(**fields)
    for asset, amount in holdings.items():
        fund(user, asset, amount)
    return user
