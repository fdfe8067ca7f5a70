"""The staff console's accounts pages, one module per concern.

- `users`: people and their access (users, KYC and freeze, authenticators, API keys);
- `assets`: reference data (assets, withdrawal limits);
- `books`: the ledger and the audit log, read-only;
- `transfers`: deposits (credit one) and the withdrawal review queue;
- `webhooks`: partner webhook endpoints and deliveries (replay), read-only.

Staff decisions go through the same services as everything else (set_kyc_level,
set_frozen, credit_deposit, approve/complete/reject_withdrawal, staff_revoke_api_key),
which write their own audit rows; each gets `actor_context(request)` so the row carries the
staff member's IP. Plain edits (assets, limits, user flags) are audited by AuditedAdmin.
The money services run in durable transactions, and Django wraps the change form in one,
so those decisions are admin actions and custom views, never `save_model`.

The site itself, its TOTP-gated door and the shared building blocks are in exchange/admin.py.
"""

from accounts.admin import assets, books, transfers, users, webhooks

__all__ = ["assets", "books", "transfers", "users", "webhooks"]
