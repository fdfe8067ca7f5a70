"""Encrypt the MFA secrets allauth stored in the clear (TOTP secret, recovery-code seed).

Idempotent both ways: a value that already carries the encrypted form is left alone, so a
second run (or a run after new rows were written by the encrypting adapter) changes
nothing. The reverse decrypts, for a rollback to code that stores plaintext.
"""

from django.db import migrations

BATCH_SIZE = 500  # rows per read: bounded memory however many users have 2FA


def _convert(apps, transform):
    from accounts.mfa_adapter import SECRET_FIELDS

    Authenticator = apps.get_model("mfa", "Authenticator")
    rows = Authenticator.objects.filter(type__in=list(SECRET_FIELDS)).order_by("pk")
    changed = 0
    for row in rows.only("pk", "type", "data").iterator(chunk_size=BATCH_SIZE):
        data = transform(row.type, row.data or {})
        if data is not None:
            # update(), not save(): last_used_at and the other columns stay as they are.
            Authenticator.objects.filter(pk=row.pk).update(data=data)
            changed += 1
    return changed


def encrypt_mfa_secrets(apps, schema_editor):
    from accounts.mfa_adapter import encrypted_data

    return _convert(apps, encrypted_data)


def decrypt_mfa_secrets(apps, schema_editor):
    from accounts.mfa_adapter import decrypted_data

    return _convert(apps, decrypted_data)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_system_balance_scope"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(encrypt_mfa_secrets, decrypt_mfa_secrets)]
