"""Database-level fences for the ledger and balances.

- Postings, journal entries and audit rows are append-only: UPDATE and DELETE raise.
- A journal entry must balance (sum of postings per asset == 0) and have postings: a
  deferred constraint trigger checks it at COMMIT, once per entry.
- Postings may only be added to an entry created in the same transaction, so a later
  transaction cannot unbalance an entry that was checked at its commit.
TRUNCATE stays possible on purpose: test isolation flushes tables with it.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION accounts_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_append_only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER accounts_posting_append_only BEFORE UPDATE OR DELETE ON accounts_posting
    FOR EACH ROW EXECUTE FUNCTION accounts_refuse_change();
CREATE TRIGGER accounts_entry_append_only BEFORE UPDATE OR DELETE ON accounts_journalentry
    FOR EACH ROW EXECUTE FUNCTION accounts_refuse_change();
CREATE TRIGGER accounts_audit_append_only BEFORE UPDATE OR DELETE ON accounts_auditlog
    FOR EACH ROW EXECUTE FUNCTION accounts_refuse_change();

ALTER TABLE accounts_journalentry ADD COLUMN txid bigint NOT NULL DEFAULT txid_current();

CREATE FUNCTION accounts_posting_same_tx() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE entry_tx bigint;
BEGIN
    SELECT txid INTO entry_tx FROM accounts_journalentry WHERE id = NEW.entry_id;
    IF entry_tx IS DISTINCT FROM txid_current() THEN
        RAISE EXCEPTION 'ledger_closed_entry: entry % was committed by another transaction',
            NEW.entry_id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER accounts_posting_same_tx BEFORE INSERT ON accounts_posting
    FOR EACH ROW EXECUTE FUNCTION accounts_posting_same_tx();

CREATE FUNCTION accounts_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad_asset bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM accounts_posting WHERE entry_id = NEW.id) THEN
        RAISE EXCEPTION 'ledger_empty_entry: entry % has no postings', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT asset_id INTO bad_asset FROM accounts_posting WHERE entry_id = NEW.id
        GROUP BY asset_id HAVING SUM(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger_unbalanced: entry % does not sum to zero for asset %',
            NEW.id, bad_asset USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER accounts_entry_balanced AFTER INSERT ON accounts_journalentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION accounts_entry_balanced();
"""

BACKWARD = r"""
DROP TRIGGER accounts_entry_balanced ON accounts_journalentry;
DROP FUNCTION accounts_entry_balanced();
DROP TRIGGER accounts_posting_same_tx ON accounts_posting;
DROP FUNCTION accounts_posting_same_tx();
ALTER TABLE accounts_journalentry DROP COLUMN txid;
DROP TRIGGER accounts_audit_append_only ON accounts_auditlog;
DROP TRIGGER accounts_entry_append_only ON accounts_journalentry;
DROP TRIGGER accounts_posting_append_only ON accounts_posting;
DROP FUNCTION accounts_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
