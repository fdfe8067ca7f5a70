"""Orders, trades, outbox and settlement cursors (issue 4).

Decimals at the boundary, integers (ticks, lots) only inside the engine: the engine's
order id is `Order.pk` and its account id is `Order.user_id`. The choice values below are
the engine's enum values (trading.engine.commands), so they convert with a plain lookup.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiKey, Asset, User
from markets.models import Market

MONEY: dict[str, Any] = {"max_digits": 36, "decimal_places": 18}  # Any: field kwargs
ZERO = Decimal("0")
CLIENT_ORDER_ID_PATTERN = r"^[.A-Z:/a-z0-9_-]{1,36}$"


class OrderSide(models.TextChoices):
    BUY = "buy", _("Buy")
    SELL = "sell", _("Sell")


class OrderType(models.TextChoices):
    LIMIT = "limit", _("Limit")
    MARKET = "market", _("Market")
    LIMIT_MAKER = "limit_maker", _("Limit maker (post-only)")
    STOP_LIMIT = "stop_limit", _("Stop limit")
    STOP_MARKET = "stop_market", _("Stop market")


class TimeInForce(models.TextChoices):
    GTC = "gtc", _("Good till cancelled")
    IOC = "ioc", _("Immediate or cancel")
    FOK = "fok", _("Fill or kill")


class StpMode(models.TextChoices):
    NONE = "none", _("None")
    EXPIRE_TAKER = "expire_taker", _("Expire taker")
    EXPIRE_MAKER = "expire_maker", _("Expire maker")
    EXPIRE_BOTH = "expire_both", _("Expire both")


class OrderStatus(models.TextChoices):
    NEW = "new", _("New")
    PARTIALLY_FILLED = "partially_filled", _("Partially filled")
    FILLED = "filled", _("Filled")
    CANCELED = "canceled", _("Canceled")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")


OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
TERMINAL_STATUSES = (
    OrderStatus.FILLED,
    OrderStatus.CANCELED,
    OrderStatus.REJECTED,
    OrderStatus.EXPIRED,
)


class Order(models.Model):
    """One order of one user in one market, from acceptance to its terminal state.

    `hold_amount` is what was locked at acceptance (quote for buys, base for sells) and
    `hold_remaining` what is still locked for it; settlement lowers `hold_remaining` as
    fills consume it and releases the rest when the order ends. `quantity` is in base and is
    null only for a market buy by `quote_amount`. `accepted_seq` and `triggered_seq` are the
    engine sequence numbers of its acceptance and, for a stop, of its trigger.
    """

    # No single-column indexes on the foreign keys: every index is written again on each
    # settlement update of the row (status is in the partial indexes, so most updates cannot
    # be HOT). user_id leads order_user_coid and order_user_recent; open orders by market
    # use order_open_by_market; markets and assets are never deleted with orders.
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="orders", db_index=False)
    market = models.ForeignKey(
        Market, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    client_order_id = models.CharField(max_length=36)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    order_type = models.CharField(max_length=12, choices=OrderType.choices)
    time_in_force = models.CharField(
        max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC
    )
    price = models.DecimalField(**MONEY, null=True, blank=True)
    stop_price = models.DecimalField(**MONEY, null=True, blank=True)
    quantity = models.DecimalField(**MONEY, null=True, blank=True)
    quote_amount = models.DecimalField(**MONEY, null=True, blank=True)
    stp_mode = models.CharField(max_length=12, choices=StpMode.choices, default=StpMode.NONE)
    filled_quantity = models.DecimalField(**MONEY, default=ZERO)
    filled_quote = models.DecimalField(**MONEY, default=ZERO)
    fee_paid = models.DecimalField(**MONEY, default=ZERO)
    # The rates this order pays, fixed at acceptance (markets.fees.order_rates: the lower of
    # the market's and the user's tier's): settlement charges these, never today's fees, so
    # a later tier or market change cannot reach past what the hold covers.
    maker_fee_rate = models.DecimalField(max_digits=10, decimal_places=6)
    taker_fee_rate = models.DecimalField(max_digits=10, decimal_places=6)
    hold_asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    hold_amount = models.DecimalField(**MONEY)
    hold_remaining = models.DecimalField(**MONEY)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    reject_reason = models.CharField(max_length=64, blank=True)
    accepted_seq = models.BigIntegerField(null=True, blank=True)
    # Set by settlement when a stop triggers: from then on the order is what it executes as
    # (a STOP_LIMIT rests as a limit), which a rebuild of the book must know.
    triggered_seq = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-pk",)
        constraints = (
            models.UniqueConstraint(fields=["user", "client_order_id"], name="order_user_coid"),
            models.CheckConstraint(condition=Q(filled_quantity__gte=0), name="order_filled_gte_0"),
            models.CheckConstraint(
                condition=Q(quantity__isnull=True) | Q(filled_quantity__lte=F("quantity")),
                name="order_filled_lte_quantity",
            ),
            models.CheckConstraint(
                condition=Q(filled_quote__gte=0), name="order_filled_quote_gte_0"
            ),
            models.CheckConstraint(condition=Q(fee_paid__gte=0), name="order_fee_gte_0"),
            models.CheckConstraint(
                condition=Q(maker_fee_rate__gte=0, maker_fee_rate__lt=1),
                name="order_maker_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(taker_fee_rate__gte=0, taker_fee_rate__lt=1),
                name="order_taker_rate_range",
            ),
            models.CheckConstraint(condition=Q(hold_remaining__gte=0), name="order_hold_rem_gte_0"),
            models.CheckConstraint(
                condition=Q(hold_remaining__lte=F("hold_amount")), name="order_hold_rem_lte_hold"
            ),
            models.CheckConstraint(
                condition=Q(quantity__isnull=False) | Q(quote_amount__isnull=False),
                name="order_quantity_or_quote",
            ),
        )
        indexes = (
            models.Index(
                fields=["market", "id"],
                condition=Q(status__in=["new", "partially_filled"]),
                name="order_open_by_market",
            ),
            models.Index(
                fields=["user", "hold_asset"],
                condition=Q(status__in=["new", "partially_filled"]),
                name="order_open_by_user",
            ),
            models.Index(fields=["user", "-id"], name="order_user_recent"),
        )

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.quantity or self.quote_amount} {self.market_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_quantity(self) -> Decimal | None:
        return None if self.quantity is None else self.quantity - self.filled_quantity


class Trade(models.Model):
    """One fill between a resting maker and an incoming taker, at the maker's price.

    `seq` is the engine event's sequence number: unique per market, so settling a batch
    twice cannot insert a trade twice. Fees are in the quote asset.

    Settlement inserts thousands of these a second, so the table carries only the indexes
    its readers need: (market, seq), (market, -created_at) and the buy and sell orders'.
    The maker and taker are always the buy and sell orders in some order (a CHECK says
    so), which makes their own foreign keys and indexes redundant: they are not created.
    """

    market = models.ForeignKey(
        Market, on_delete=models.PROTECT, related_name="trades", db_index=False
    )
    seq = models.BigIntegerField()
    maker_order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    taker_order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    buy_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="buy_trades")
    sell_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sell_trades")
    price = models.DecimalField(**MONEY)
    quantity = models.DecimalField(**MONEY)
    quote_quantity = models.DecimalField(**MONEY)
    taker_side = models.CharField(max_length=4, choices=OrderSide.choices)
    maker_fee = models.DecimalField(**MONEY, default=ZERO)
    taker_fee = models.DecimalField(**MONEY, default=ZERO)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-pk",)
        constraints = (
            models.UniqueConstraint(fields=["market", "seq"], name="trade_market_seq"),
            models.CheckConstraint(
                condition=(
                    Q(maker_order=F("buy_order"), taker_order=F("sell_order"))
                    | Q(maker_order=F("sell_order"), taker_order=F("buy_order"))
                ),
                name="trade_maker_taker_are_buy_sell",
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="trade_price_gt_0"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_gt_0"),
            models.CheckConstraint(condition=Q(quote_quantity__gt=0), name="trade_quote_gt_0"),
            models.CheckConstraint(condition=Q(maker_fee__gte=0), name="trade_maker_fee_gte_0"),
            models.CheckConstraint(condition=Q(taker_fee__gte=0), name="trade_taker_fee_gte_0"),
            models.CheckConstraint(
                condition=~Q(buy_order=F("sell_order")), name="trade_buy_ne_sell"
            ),
        )
        indexes = (models.Index(fields=["market", "-created_at"], name="trade_market_recent"),)

    def __str__(self) -> str:
        return f"{self.market_id}#{self.seq} {self.quantity} @ {self.price}"


class OutboxEntry(models.Model):
    """A command for a market's input stream, written in the transaction that caused it.

    `published_at` and `stream_id` are set once the command reached Redis; a sweeper
    re-sends rows left unpublished (the matching loop dedupes by the payload's "cid").
    """

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="outbox")
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    stream_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ("pk",)
        verbose_name_plural = "outbox entries"
        indexes = (
            models.Index(
                fields=["created_at"],
                condition=Q(published_at__isnull=True),
                name="outbox_unpublished",
            ),
        )

    def __str__(self) -> str:
        return f"outbox #{self.pk} {self.market_id} {self.payload.get('type', '?')}"


class SettlementCursor(models.Model):
    """The last engine sequence number settled for a market; its row lock serialises settlement."""

    market = models.OneToOneField(
        Market, on_delete=models.PROTECT, related_name="settlement_cursor"
    )
    last_seq = models.BigIntegerField(default=0)
    fence_token = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("market",)

    def __str__(self) -> str:
        return f"{self.market_id} settled to {self.last_seq}"


class EngineSnapshot(models.Model):
    """A serialized engine state at `seq`, with the input-stream offset to replay from."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="snapshots")
    seq = models.BigIntegerField()
    input_offset = models.CharField(max_length=32)
    fence_token = models.BigIntegerField(default=0)
    data = models.BinaryField()
    checksum = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-pk",)
        indexes = (models.Index(fields=["market", "-seq"], name="snapshot_market_seq"),)

    def __str__(self) -> str:
        return f"{self.market_id} snapshot at {self.seq}"


class LeaseFence(models.Model):
    """The highest fencing token ever granted for one lease (``lease:<role>:<symbol>``).

    Redis holds the lease itself; this row is what survives Redis losing everything, so a
    lease acquired after a flush still gets a token above every earlier owner's, even one
    that is alive and has written nothing durable yet (trading.lease).
    """

    name = models.CharField(max_length=200, unique=True)
    token = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} at token {self.token}"


class DeadmanSwitch(models.Model):
    """One API key's dead-man's switch on one market (countdownCancelAll; trading.deadman).

    Armed while `expires_at` is set: when that moment passes without a renewal, a sweeper
    (every worker process runs one) cancels every open order of the key's user in the
    market and clears `expires_at`. Kept in PostgreSQL, not Redis, so a Redis flush or
    restart cannot silently disarm it; deadlines are the database's clock, shared by the web
    servers that arm and the workers that sweep. `claimed_until` is a sweeper's short claim
    while it cancels (SKIP LOCKED claim, see trading.deadman), so two workers never fire one
    switch twice and a sweeper that died mid-fire is retried once the claim passes.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="+", db_index=False)
    countdown_ms = models.PositiveIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)  # None: disarmed (or fired)
    claimed_until = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)  # the last time it cancelled
    fired_orders = models.PositiveIntegerField(default=0)  # open orders that fire covered
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("api_key", "market"), name="deadman_key_market"),
        )
        # The sweep's only query: armed switches by deadline (a handful of rows at most).
        indexes = (
            models.Index(
                fields=("expires_at",),
                name="deadman_armed_by_deadline",
                condition=Q(expires_at__isnull=False),
            ),
        )

    def __str__(self) -> str:
        state = f"armed until {self.expires_at:%H:%M:%S.%f}" if self.expires_at else "disarmed"
        return f"dead-man's switch of key {self.api_key_id} on {self.market_id}: {state}"
