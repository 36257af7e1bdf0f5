"""Encrypt the personal data that earlier versions stored as plain text.

Name, e-mail, phone, birthday and the merge snapshots are encrypted under the newest key of
PATRON_PII_KEYS, their blind indexes filled in; e-mail and phone identities keep their
normalised value encrypted in ``secret`` and its blind index in ``value``; merge reasons that
quoted an e-mail or phone quote its masked form. Values already encrypted are left alone, so
the migration can be re-run after an interruption. Migrating back (a downgrade) decrypts the
values to plain text again with the configured keys. On SQLite run ``VACUUM`` afterwards so
that the freed pages holding the old plain text are overwritten (docs/privacy.md).
"""

from django.db import migrations

BATCH = 2000


def _encrypt_existing(apps, schema_editor):
    from patron.customers.identity import index_form_email, index_form_name, index_form_phone
    from patron.privacy.pii.crypto import blind_index, encrypt_text, is_encrypted
    from patron.privacy.pii.masking import mask_email, mask_phone

    connection = schema_editor.connection
    quote = connection.ops.quote_name

    def rows(sql):
        last = -1
        while True:
            with connection.cursor() as cursor:
                cursor.execute(sql + " WHERE id > %s ORDER BY id LIMIT %s", [last, BATCH])
                batch = cursor.fetchall()
            if not batch:
                return
            last = batch[-1][0]
            yield batch

    def seal(value):
        if value is None or value == "" or is_encrypted(str(value)):
            return value
        return encrypt_text(str(value))

    customer = quote("customers_customer")
    for batch in rows(f"SELECT id, name, email, phone, CAST(birthday AS TEXT) FROM {customer}"):
        updates = []
        for pk, name, email, phone, birthday in batch:
            if all(v in (None, "") or is_encrypted(str(v)) for v in (name, email, phone, birthday)):
                continue
            updates.append(
                [
                    seal(name),
                    seal(email),
                    seal(phone),
                    seal(birthday[:10] if birthday else None),
                    blind_index("name", index_form_name(name)) if name else "",
                    blind_index("email", index_form_email(email)) if email else "",
                    blind_index("phone", index_form_phone(phone)) if phone else "",
                    pk,
                ]
            )
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {customer} SET name = %s, email = %s, phone = %s, birthday = %s, "
                "name_index = %s, email_index = %s, phone_index = %s WHERE id = %s",
                updates,
            )

    identity = quote("customers_customeridentity")
    for batch in rows(f"SELECT id, kind, value, secret FROM {identity}"):
        updates = [
            [encrypt_text(value), blind_index(kind, value), pk]
            for pk, kind, value, secret in batch
            if kind in ("email", "phone") and not secret
        ]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {identity} SET secret = %s, value = %s WHERE id = %s", updates
            )

    merge = quote("customers_customermerge")
    masks = {"email": mask_email, "phone": mask_phone}
    for batch in rows(f"SELECT id, snapshot, reason FROM {merge}"):
        updates = []
        for pk, snapshot, reason in batch:
            for kind, mask in masks.items():
                prefix = f"same {kind}: "
                if reason.startswith(prefix):
                    reason = prefix + mask(reason[len(prefix):])
            updates.append([seal(snapshot if snapshot is not None else "{}"), reason, pk])
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {merge} SET snapshot = %s, reason = %s WHERE id = %s", updates
            )


def _decrypt_to_plain(apps, schema_editor):
    from patron.privacy.pii.crypto import decrypt_text, is_encrypted

    connection = schema_editor.connection
    quote = connection.ops.quote_name

    def plain(value):
        return decrypt_text(value) if value and is_encrypted(str(value)) else value

    customer = quote("customers_customer")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, name, email, phone, birthday FROM {customer}")
        rows = cursor.fetchall()
        cursor.executemany(
            f"UPDATE {customer} SET name = %s, email = %s, phone = %s, birthday = %s WHERE id = %s",
            [[plain(name), plain(email), plain(phone), plain(birthday), pk]
             for pk, name, email, phone, birthday in rows],
        )
        identity = quote("customers_customeridentity")
        cursor.execute(f"SELECT id, secret FROM {identity} WHERE secret != ''")
        cursor.executemany(
            f"UPDATE {identity} SET value = %s, secret = '' WHERE id = %s",
            [[plain(secret), pk] for pk, secret in cursor.fetchall()],
        )
        merge = quote("customers_customermerge")
        cursor.execute(f"SELECT id, snapshot FROM {merge}")
        cursor.executemany(
            f"UPDATE {merge} SET snapshot = %s WHERE id = %s",
            [[plain(snapshot), pk] for pk, snapshot in cursor.fetchall()],
        )


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0003_encrypt_personal_data"),
    ]

    operations = [migrations.RunPython(_encrypt_existing, _decrypt_to_plain, elidable=False)]
