"""Users, assets, balances, the double-entry ledger, deposits, withdrawals, API keys, audit,
partner webhooks.

Money is DecimalField(36, 18) everywhere; an asset's own `decimals` bounds what inputs may
carry. The database holds the invariants it can: non-negative balances (CHECK), append-only
balanced ledger (triggers in migration 0002), one balance row per (user, asset).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONEY: dict[str, Any] = {"max_digits": 36, "decimal_places": 18}  # Any: field kwargs
ZERO = Decimal("0")


class KycLevel(models.IntegerChoices):
    EMAIL_VERIFIED = 0, _("Email verified")
    IDENTITY = 1, _("Identity verified")
    FULL = 2, _("Fully verified")


class UserManager(BaseUserManager["User"]):
    """Creates users keyed by email (there is no username)."""

    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address; traders and staff alike."""

    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(max_length=100, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_frozen = models.BooleanField(
        default=False, help_text=_("Frozen users cannot trade, withdraw or create API keys.")
    )
    kyc_level = models.PositiveSmallIntegerField(
        choices=KycLevel.choices, default=KycLevel.EMAIL_VERIFIED
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.email


class Asset(models.Model):
    """A currency or coin. `decimals` is the finest unit any amount of it may carry."""

    code = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=64)
    decimals = models.PositiveSmallIntegerField()
    is_active = models.BooleanField(default=True)
    min_withdrawal = models.DecimalField(**MONEY, default=ZERO)
    withdrawal_fee = models.DecimalField(**MONEY, default=ZERO)
    deposit_instructions = models.TextField(blank=True)

    class Meta:
        ordering = ("code",)
        constraints = (
            models.CheckConstraint(condition=Q(decimals__lte=18), name="asset_decimals_lte_18"),
            models.CheckConstraint(condition=Q(min_withdrawal__gte=0), name="asset_min_wd_gte_0"),
            models.CheckConstraint(condition=Q(withdrawal_fee__gte=0), name="asset_wd_fee_gte_0"),
        )

    def __str__(self) -> str:
        return self.code


class BalanceKind(models.TextChoices):
    USER = "user", _("User")
    FEES = "fees", _("Fees collected")
    ROUNDING = "rounding", _("Rounding residue")
    EXTERNAL = "external", _("External world (deposits and withdrawals)")


class Balance(models.Model):
    """What one account holds of one asset: `available` to use, `locked` by holds.

    User accounts have `user` set; the system accounts (fees, rounding, external) have no
    user and one row per asset and `scope`: an opaque label a caller uses to keep its own
    system rows (settlement keeps one fee and one rounding row per market, so markets never
    wait on each other's locks); "" is the exchange-wide row. Only the external account may
    go negative: it mirrors everything that came in from, or went out to, the world.
    """

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="balances"
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="balances")
    kind = models.CharField(max_length=10, choices=BalanceKind.choices, default=BalanceKind.USER)
    scope = models.CharField(max_length=32, blank=True, default="", db_default="")
    available = models.DecimalField(**MONEY, default=ZERO)
    locked = models.DecimalField(**MONEY, default=ZERO)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("pk",)
        constraints = (
            models.UniqueConstraint(
                fields=["user", "asset"], condition=Q(user__isnull=False), name="balance_user_asset"
            ),
            models.UniqueConstraint(
                fields=["kind", "asset", "scope"],
                condition=Q(user__isnull=True),
                name="balance_system_asset_scope",
            ),
            models.CheckConstraint(
                condition=Q(scope="") | Q(user__isnull=True), name="balance_scope_system_only"
            ),
            models.CheckConstraint(
                condition=(Q(kind="user") & Q(user__isnull=False))
                | (~Q(kind="user") & Q(user__isnull=True)),
                name="balance_owner_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(available__gte=0) | Q(kind="external"), name="balance_available_gte_0"
            ),
            models.CheckConstraint(condition=Q(locked__gte=0), name="balance_locked_gte_0"),
        )

    def __str__(self) -> str:
        owner = self.user.email if self.user else ":".join(filter(None, (self.kind, self.scope)))
        return f"{owner} {self.asset.code}: {self.available} (+{self.locked} locked)"

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


class EntryKind(models.TextChoices):
    DEPOSIT = "deposit", _("Deposit")
    WITHDRAWAL_HOLD = "withdrawal_hold", _("Withdrawal hold")
    WITHDRAWAL_RELEASE = "withdrawal_release", _("Withdrawal released")
    WITHDRAWAL_COMPLETE = "withdrawal_complete", _("Withdrawal completed")
    ORDER_HOLD = "order_hold", _("Order hold")
    ORDER_RELEASE = "order_release", _("Order hold released")
    TRANSFER = "transfer", _("Internal transfer")
    SETTLEMENT = "settlement", _("Trade settlement")


class JournalEntry(models.Model):
    """One balanced set of postings: for every asset, its postings sum to zero.

    The database refuses an unbalanced entry at commit and any posting added to an entry
    from another transaction (migration 0002).
    """

    kind = models.CharField(max_length=24, choices=EntryKind.choices)
    ref = models.CharField(max_length=64, blank=True, db_index=True)
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("pk",)
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.ref}"


class Bucket(models.TextChoices):
    AVAILABLE = "available", _("Available")
    LOCKED = "locked", _("Locked")


class Posting(models.Model):
    """A signed amount moved into (positive) or out of (negative) one bucket of a balance.

    Append-only: the database refuses UPDATE and DELETE.
    """

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    balance = models.ForeignKey(Balance, on_delete=models.PROTECT, related_name="postings")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    bucket = models.CharField(max_length=10, choices=Bucket.choices)
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ("pk",)
        constraints = (
            models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_nonzero"),
        )

    def __str__(self) -> str:
        return f"{self.amount:+} {self.asset_id} {self.bucket} -> balance {self.balance_id}"


class Deposit(models.Model):
    """Money that arrived from outside, credited once per external reference."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="deposits")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="deposits")
    amount = models.DecimalField(**MONEY)
    external_ref = models.CharField(max_length=128)
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="deposit")
    credited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-pk",)
        constraints = (
            models.UniqueConstraint(fields=["asset", "external_ref"], name="deposit_external_ref"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_gt_0"),
        )

    def __str__(self) -> str:
        return f"deposit {self.amount} {self.asset_id} to {self.user_id} ({self.external_ref})"


class WithdrawalStatus(models.TextChoices):
    PENDING = "pending", _("Pending review")
    APPROVED = "approved", _("Approved, being sent")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")


class Withdrawal(models.Model):
    """A request to send money out. Its amount (fee included) stays locked until decided."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="withdrawals")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="withdrawals")
    amount = models.DecimalField(**MONEY)
    fee = models.DecimalField(**MONEY, default=ZERO)
    address = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=WithdrawalStatus.choices, default=WithdrawalStatus.PENDING
    )
    external_txid = models.CharField(max_length=128, blank=True)
    reject_reason = models.CharField(max_length=200, blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-pk",)
        constraints = (
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_gt_0"),
            models.CheckConstraint(condition=Q(fee__gte=0), name="withdrawal_fee_gte_0"),
        )

    def __str__(self) -> str:
        return f"withdrawal #{self.pk} {self.amount} {self.asset_id} ({self.status})"

    @property
    def held_amount(self) -> Decimal:
        return self.amount + self.fee

    @property
    def is_open(self) -> bool:
        return self.status in (WithdrawalStatus.PENDING, WithdrawalStatus.APPROVED)


class WithdrawalLimit(models.Model):
    """How much of an asset a user of a KYC level may withdraw per UTC day (fee excluded)."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="withdrawal_limits")
    kyc_level = models.PositiveSmallIntegerField(choices=KycLevel.choices)
    daily_amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ("asset", "kyc_level")
        constraints = (
            models.UniqueConstraint(fields=["asset", "kyc_level"], name="withdrawal_limit_unique"),
            models.CheckConstraint(condition=Q(daily_amount__gte=0), name="wd_limit_gte_0"),
        )

    def __str__(self) -> str:
        return f"{self.asset_id} level {self.kyc_level}: {self.daily_amount}/day"


class ApiKeyType(models.TextChoices):
    HMAC = "hmac", _("HMAC-SHA256 (secret shown once, stored encrypted)")
    ED25519 = "ed25519", _("Ed25519 (we keep only your public key)")


class ApiKey(models.Model):
    """A partner credential bound to one user, with scopes, an IP allowlist and an expiry."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=64)
    key = models.CharField(max_length=64, unique=True)
    key_type = models.CharField(max_length=8, choices=ApiKeyType.choices)
    secret_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    public_key = models.TextField(blank=True)
    can_read = models.BooleanField(default=True)
    can_trade = models.BooleanField(default=False)
    can_withdraw = models.BooleanField(default=False)
    ip_allowlist = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Staff-raised rate limits for this key (None: the settings' defaults apply;
    # exchange/api/ratelimit.py). Request weight per minute; orders per 10 s and per day.
    weight_per_minute = models.PositiveIntegerField(null=True, blank=True)
    orders_per_10s = models.PositiveIntegerField(null=True, blank=True)
    orders_per_day = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("-pk",)
        constraints = (
            models.CheckConstraint(
                condition=(Q(key_type="hmac") & Q(secret_encrypted__isnull=False))
                | (Q(key_type="ed25519") & ~Q(public_key="")),
                name="api_key_material_matches_type",
            ),
        )

    def __str__(self) -> str:
        return f"{self.label} ({self.key[:8]}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` a user sent with a POST that moves money (the v1 API).

    The first request with a key stores its fingerprint (method, path, body hash) and, once
    answered, the response; a repeat with the same fingerprint gets that response again and
    changes nothing; the same key with another fingerprint is refused. Kept for
    IDEMPOTENCY_KEY_TTL_HOURS, then may be deleted.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 hex of method, path and body
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # None: in flight
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("user", "key"), name="idempotency_user_key_unique"),
        )
        indexes = (models.Index(fields=("created_at",), name="idempotency_created_idx"),)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key}"


class AuditLog(models.Model):
    """Who did what, when, from where: staff actions and security events. Append-only."""

    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=48, db_index=True)
    target_type = models.CharField(max_length=48, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-pk",)

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_type}"


class WebhookEventType(models.TextChoices):
    ORDER_UPDATE = "order.update", _("Order updates")
    TRADE = "trade", _("Trades")
    DEPOSIT = "deposit", _("Deposits")
    WITHDRAWAL = "withdrawal", _("Withdrawals")


class WebhookEndpoint(models.Model):
    """A partner's HTTPS receiver for the event types in `events` (accounts.webhooks).

    The signing secret is stored encrypted like HMAC API secrets and shown once, at
    creation. `consecutive_failures` and `open_until` are its circuit breaker: while
    `open_until` is in the future no delivery to it is attempted (none is lost either).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2048)  # checked by accounts.webhooks.targets, not here
    events = ArrayField(models.CharField(max_length=16, choices=WebhookEventType.choices))
    secret_encrypted = models.BinaryField(editable=False)
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    open_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-pk",)
        indexes = (
            # Settlement's outbox statement joins on it for every batch: keep it tiny.
            models.Index(
                fields=("user",), condition=Q(is_active=True), name="webhook_endpoint_active"
            ),
        )

    def __str__(self) -> str:
        return f"#{self.pk} {self.url[:60]}"

    @property
    def is_open(self) -> bool:
        """True while the circuit breaker holds deliveries back."""
        return self.open_until is not None and self.open_until > timezone.now()


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Dead (gave up)")


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row, written in the transaction of the change
    it reports, and the record of its delivery attempts.

    (endpoint, event_id) is unique, so an event is recorded once however often the code
    that records it runs. A PENDING row whose `next_attempt_at` has passed is due; while a
    worker delivers it, `next_attempt_at` is the end of the worker's lease.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )  # no index of its own: the unique (endpoint, event_id) index leads with it
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=16, choices=WebhookEventType.choices)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10,
        choices=WebhookDeliveryStatus.choices,
        default=WebhookDeliveryStatus.PENDING,
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-pk",)
        verbose_name_plural = "webhook deliveries"
        constraints = (
            models.UniqueConstraint(
                fields=("endpoint", "event_id"), name="webhook_delivery_event_once"
            ),
        )
        indexes = (
            models.Index(
                fields=("next_attempt_at",),
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
        )

    def __str__(self) -> str:
        return f"{self.event_id} -> endpoint {self.endpoint_id} ({self.status})"
