"""Services of the accounts app: the only code that writes accounts rows.

ledger.py       balances, the double-entry journal, moves (the money primitive)
holds.py        holds on available funds: one (hold_funds) or a batch (hold_funds_many)
deposits.py     credit a deposit (idempotent on its external reference)
withdrawals.py  request / approve / complete / reject, daily limits per KYC level
transfers.py    internal transfer between users
users.py        KYC level and freeze, set by staff
apikeys.py      API keys and request-signature verification
audit.py        the audit log of staff actions and security events
"""
