"""Partner webhooks: the outbox rows (record), their delivery (deliver), target checks
(targets) and the signature (signing). Endpoints are managed by accounts.services.webhooks.

Events are recorded in the transaction of the change they report, from the settled rows,
so an event exists exactly when its change committed, and once: (endpoint, event_id) is
unique and every insert is ON CONFLICT DO NOTHING. Delivery is at least once.
"""
