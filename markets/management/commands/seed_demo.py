"""Load the demo data: assets, markets, a fee schedule, a staff user and two funded traders.

Idempotent: rows are created only when missing and deposits are credited once per fixed
external reference, so running it again keeps every change made since.

The demo users' addresses (@exchange.localhost) receive no mail, so the seed marks them
verified: allauth refuses to add a second factor while an address is unverified, and
without 2FA there are no withdrawals. A real sign-up still verifies by email.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Asset, KycLevel, User, WithdrawalLimit
from accounts.services.deposits import credit_deposit
from markets.models import FeeTier, Market, MarketStatus

# code, name, decimals, min withdrawal, withdrawal fee, deposit instructions
ASSETS = [
    ("BTC", "Bitcoin", 8, "0.0001", "0.00005", "Send BTC to bc1qdemo0exchange0address0000000000"),
    ("ETH", "Ether", 18, "0.001", "0.0005", "Send ETH to 0xDEMO0000000000000000000000000000000000"),
    ("USDT", "Tether", 6, "1", "1", "Send USDT (TRC-20) to TDemoExchangeAddress000000000000"),
    ("IRT", "Iranian toman", 0, "100000", "0", "Bank transfer to IBAN IR000000000000000000000000"),
]
# daily withdrawal limit per KYC level 0, 1, 2
LIMITS = {
    "BTC": ("0.1", "2", "50"),
    "ETH": ("2", "40", "1000"),
    "USDT": ("1000", "50000", "1000000"),
    "IRT": ("0", "500000000", "10000000000"),
}
# symbol, base, quote, tick, lot, min qty, max qty, min notional, maker, taker, last price
MARKETS = [
    ("BTC-USDT", "BTC", "USDT", "0.01", "0.0001", "0.0001", "100", "5", "0.001", "0.002", "60000"),
    ("ETH-USDT", "ETH", "USDT", "0.01", "0.0001", "0.001", "1000", "5", "0.001", "0.002", "3000"),
    ("USDT-IRT", "USDT", "IRT", "10", "1", "1", "1000000", "100000", "0.0015", "0.0025", "100000"),
]
# The fee schedule: name, 30-day volume threshold (FEE_TIER_REFERENCE_ASSET), maker, taker.
FEE_TIERS = [
    ("VIP 1", "100000", "0.0008", "0.0018"),
    ("VIP 2", "1000000", "0.0005", "0.0015"),
    ("VIP 3", "10000000", "0.0002", "0.001"),
]
USERS = [
    ("staff@exchange.localhost", "demo-staff-pass-1", True, KycLevel.FULL),
    ("alice@exchange.localhost", "demo-alice-pass-1", False, KycLevel.IDENTITY),
    ("bob@exchange.localhost", "demo-bob-pass-1", False, KycLevel.IDENTITY),
]
FUNDS = {"BTC": "5", "ETH": "100", "USDT": "250000", "IRT": "5000000000"}


class Command(BaseCommand):
    help = "Load demo assets, markets and users (idempotent) and print the credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            assets = self._assets()
            self._markets(assets)
            for name, threshold, maker, taker in FEE_TIERS:
                FeeTier.objects.get_or_create(
                    name=name,
                    defaults={
                        "min_volume_30d": Decimal(threshold),
                        "maker_fee": Decimal(maker),
                        "taker_fee": Decimal(taker),
                    },
                )
            users = self._users()
        for user in users[1:]:
            for code, amount in FUNDS.items():
                credit_deposit(
                    user=user,
                    asset=assets[code],
                    amount=Decimal(amount),
                    external_ref=f"demo-seed:{user.email}:{code}",
                )
        self.stdout.write("[run] demo data ready. Sign in with:")
        for email, password, is_staff, _level in USERS:
            role = "staff (admin, set up 2FA at first sign-in)" if is_staff else "trader"
            self.stdout.write(f"[run]   {email:28} {password:20} {role}")

    def _assets(self) -> dict[str, Asset]:
        assets = {}
        for code, name, decimals, min_wd, fee, instructions in ASSETS:
            asset, _created = Asset.objects.get_or_create(
                code=code,
                defaults={
                    "name": name,
                    "decimals": decimals,
                    "min_withdrawal": Decimal(min_wd),
                    "withdrawal_fee": Decimal(fee),
                    "deposit_instructions": instructions,
                },
            )
            assets[code] = asset
            for level, daily in enumerate(LIMITS[code]):
                WithdrawalLimit.objects.get_or_create(
                    asset=asset, kyc_level=level, defaults={"daily_amount": Decimal(daily)}
                )
        return assets

    def _markets(self, assets: dict[str, Asset]) -> None:
        for symbol, base, quote, tick, lot, min_q, max_q, notional, maker, taker, last in MARKETS:
            Market.objects.get_or_create(
                symbol=symbol,
                defaults={
                    "base": assets[base],
                    "quote": assets[quote],
                    "tick_size": Decimal(tick),
                    "lot_size": Decimal(lot),
                    "min_quantity": Decimal(min_q),
                    "max_quantity": Decimal(max_q),
                    "min_notional": Decimal(notional),
                    "maker_fee": Decimal(maker),
                    "taker_fee": Decimal(taker),
                    "price_band_pct": Decimal("10"),
                    "status": MarketStatus.TRADING,
                    "last_price": Decimal(last),
                },
            )

    def _users(self) -> list[User]:
        users = []
        for email, password, is_staff, level in USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email=email,
                    password=password,
                    is_staff=is_staff,
                    is_superuser=is_staff,
                    kyc_level=level,
                )
            EmailAddress.objects.update_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
            users.append(user)
        return users
