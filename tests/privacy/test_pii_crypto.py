"""The low layer of personal data: keys, encryption, blind indexes, fields and masking."""

from __future__ import annotations

import base64
import datetime as dt
import io

import pytest
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from pytest_django.fixtures import Settings

from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.customers.resolution import sync_identities
from patron.customers.selectors import (
    find_customer_by_email,
    find_customer_by_phone,
    search_customers,
)
from patron.privacy.models import AuditEvent
from patron.privacy.pii.crypto import (
    PiiDecryptionError,
    blind_index,
    blind_index_candidates,
    decrypt_text,
    encrypt_text,
    key_id_of,
)
from patron.privacy.pii.keys import PiiKeyError, new_key_entry, parse_key_ring
from patron.privacy.pii.masking import (
    mask_address,
    mask_birthday,
    mask_email,
    mask_name,
    mask_phone,
)

KEY_ONE = new_key_entry("k1")
KEY_TWO = new_key_entry("k2")


@pytest.fixture
def one_key(settings: Settings) -> Settings:
    """PATRON_PII_KEYS holding one known key, k1."""
    settings.PATRON_PII_KEYS = KEY_ONE
    return settings


def raw_row(table: str, pk: int, *columns: str) -> tuple[object, ...]:
    """The stored (not decrypted) values of one row."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", [pk])
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


# --- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"PATRON_PII_KEYS is empty: give at least one key as id:base64"),
        ("k1", r"entry 1: write it as id:base64 \(no ':' found\)"),
        ("k 1:AAAA", r"entry 1: key id 'k 1' must be 1 to 32 letters, digits, '-' or '_'"),
        ("k1:***", r"entry 1 \(key 'k1'\): the key is not base64"),
        (
            "k1:" + base64.b64encode(b"short").decode(),
            r"entry 1 \(key 'k1'\): the key is 5 bytes, it must be 32 random bytes in base64",
        ),
        (f"{KEY_ONE},{KEY_ONE}", r"entry 2: key id 'k1' is listed twice"),
    ],
)
def test_a_wrong_key_configuration_is_refused_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(PiiKeyError, match=message):
        parse_key_ring(text)


def test_the_key_material_never_shows_in_errors_or_repr() -> None:
    secret = KEY_ONE.split(":", 1)[1]
    ring = parse_key_ring(KEY_ONE)
    assert secret not in repr(ring)
    with pytest.raises(PiiKeyError) as error:
        parse_key_ring(f"{KEY_ONE},{KEY_ONE[:-8]}")
    assert secret[:-8] not in str(error.value)


# --- encryption --------------------------------------------------------------------------


def test_a_value_round_trips_and_names_its_key() -> None:
    ring = parse_key_ring(f"{KEY_TWO},{KEY_ONE}")
    token = encrypt_text("张伟 +8613812345678", ring)
    assert key_id_of(token) == "k2"
    assert "张伟" not in token
    assert "138" not in token
    assert decrypt_text(token, ring) == "张伟 +8613812345678"
    # the same value encrypts differently each time (random nonce)
    assert encrypt_text("张伟", ring) != encrypt_text("张伟", ring)


def test_an_older_key_still_decrypts_what_it_wrote() -> None:
    old = encrypt_text("13812345678", parse_key_ring(KEY_ONE))
    assert decrypt_text(old, parse_key_ring(f"{KEY_TWO},{KEY_ONE}")) == "13812345678"


def test_a_tampered_value_is_refused_with_a_clear_error() -> None:
    ring = parse_key_ring(KEY_ONE)
    token = encrypt_text("zhang.wei@qq.com", ring)
    prefix, data = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(data))
    raw[-1] ^= 0x01
    tampered = f"{prefix}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(PiiDecryptionError, match=r"under key 'k1' failed authentication"):
        decrypt_text(tampered, ring)


def test_a_value_moved_to_another_key_id_is_refused() -> None:
    ring = parse_key_ring(f"{KEY_TWO},{KEY_ONE}")
    token = encrypt_text("zhang.wei@qq.com", ring)
    relabelled = token.replace(".k2.", ".k1.", 1)
    with pytest.raises(PiiDecryptionError, match=r"failed authentication"):
        decrypt_text(relabelled, ring)


def test_an_unknown_key_id_is_refused_naming_the_keys_held() -> None:
    token = encrypt_text("13812345678", parse_key_ring(KEY_ONE))
    with pytest.raises(
        PiiKeyError,
        match=r"encrypted with key 'k1', which is not in PATRON_PII_KEYS \(it holds k2\)",
    ):
        decrypt_text(token, parse_key_ring(KEY_TWO))


def test_plain_text_is_not_taken_for_an_encrypted_value() -> None:
    with pytest.raises(PiiDecryptionError, match=r"not an encrypted personal value"):
        decrypt_text("13812345678", parse_key_ring(KEY_ONE))


def test_blind_indexes_are_keyed_per_purpose_and_per_key() -> None:
    ring = parse_key_ring(f"{KEY_TWO},{KEY_ONE}")
    index = blind_index("phone", "+8613812345678", ring)
    assert index.startswith("k2:")
    assert index == blind_index("phone", "+8613812345678", ring)
    assert index != blind_index("email", "+8613812345678", ring)
    assert blind_index_candidates("phone", "+8613812345678", ring) == [
        index,
        blind_index("phone", "+8613812345678", parse_key_ring(KEY_ONE)),
    ]
    assert "13812345678" not in index


# --- model fields -----------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_personal_fields_are_stored_encrypted_and_read_back(one_key: object) -> None:
    # given a customer saved through the ORM
    customer = Customer.objects.create(
        external_id="C-1",
        name="张伟",
        email="Zhang.Wei@QQ.com",
        phone="138 1234 5678",
        birthday=dt.date(1990, 5, 17),
        address="上海市浦东新区世纪大道100号",
    )
    # then the table holds ciphertext and blind indexes, never the values
    stored = raw_row(
        "customers_customer",
        customer.pk,
        "name",
        "email",
        "phone",
        "birthday",
        "address",
        "email_index",
        "phone_index",
    )
    assert all(str(value).startswith("pii1.k1.") for value in stored[:5])
    assert stored[5] == blind_index("email", "zhang.wei@qq.com")
    assert stored[6] == blind_index("phone", "+8613812345678")
    # and reading decrypts
    again = Customer.objects.get(pk=customer.pk)
    assert (again.name, again.email, again.phone, again.birthday, again.address) == (
        "张伟",
        "Zhang.Wei@QQ.com",
        "138 1234 5678",
        dt.date(1990, 5, 17),
        "上海市浦东新区世纪大道100号",
    )
    assert list(Customer.objects.values_list("name", "birthday")) == [
        ("张伟", dt.date(1990, 5, 17))
    ]


@pytest.mark.django_db
def test_a_query_on_ciphertext_is_refused_pointing_to_the_blind_index(one_key: object) -> None:
    with pytest.raises(FieldError, match=r"Customer.name is encrypted: the lookup 'icontains'"):
        list(Customer.objects.filter(name__icontains="张"))
    with pytest.raises(FieldError, match=r"only be compared with a blank value"):
        list(Customer.objects.filter(email="zhang.wei@qq.com"))
    with pytest.raises(FieldError, match=r"Customer.birthday is encrypted: the lookup 'month'"):
        list(Customer.objects.filter(birthday__month=5))
    # comparing with blank still works: who gave no e-mail?
    Customer.objects.create(external_id="C-2", email="")
    assert list(Customer.objects.filter(email="").values_list("external_id", flat=True)) == ["C-2"]


@pytest.mark.django_db
def test_identities_hold_a_blind_index_and_resolution_still_merges(one_key: object) -> None:
    # given two customers entered with one phone and one e-mail written differently
    first = Customer.objects.create(external_id="A", phone="138 1234 5678")
    second = Customer.objects.create(external_id="B", phone="+86-138-1234-5678", email="A@X.cn")
    sync_identities(first)
    survivor = sync_identities(second)

    # then they are one customer and the identity rows hold no plain identifier
    assert survivor.pk == first.pk
    phone = CustomerIdentity.objects.get(kind="phone")
    assert phone.value == blind_index("phone", "+8613812345678")
    assert phone.identifier == "+8613812345678"
    stored = raw_row("customers_customeridentity", phone.pk, "value", "secret")
    assert "138" not in str(stored[0])
    assert str(stored[1]).startswith("pii1.k1.")
    # the merge record's snapshot is encrypted and its reason masked
    merge = CustomerMerge.objects.get()
    assert merge.reason == "same phone: +86 138****5678"
    assert merge.snapshot["email"] == "A@X.cn"
    assert str(raw_row("customers_customermerge", merge.pk, "snapshot")[0]).startswith("pii1.")
    # and lookups by phone and e-mail, in any spelling, find the survivor
    assert find_customer_by_phone("13812345678") == survivor
    assert find_customer_by_email(" a@x.CN ") == survivor
    assert find_customer_by_phone("13900000000") is None


@pytest.mark.django_db
def test_search_matches_whole_names_phones_and_emails_only(one_key: object) -> None:
    zhang = Customer.objects.create(external_id="Z", name="张伟", email="zw@qq.com")
    smith = Customer.objects.create(external_id="S", name="John  Smith", phone="13912345678")
    merge_target = Customer.objects.create(external_id="T")
    assert list(search_customers("张伟")) == [zhang]
    assert list(search_customers("张 伟")) == [zhang]
    assert list(search_customers("john smith")) == [smith]
    assert list(search_customers("139-1234-5678")) == [smith]
    assert list(search_customers("ZW@QQ.COM")) == [zhang]
    assert list(search_customers("张")) == []
    assert list(search_customers("qq.com")) == []
    assert list(search_customers("T")) == [merge_target]


# --- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "value", "masked"),
    [
        (mask_phone, "13812345678", "138****5678"),
        (mask_phone, "+8613812345678", "+86 138****5678"),
        (mask_phone, "138 1234 5678", "138****5678"),
        (mask_phone, "", ""),
        (mask_email, "zhang.wei@qq.com", "z***@qq.com"),
        (mask_email, "not-an-address", "n***"),
        (mask_name, "张伟", "张*"),
        (mask_name, "欧阳娜娜", "欧***"),
        (mask_name, "John Smith", "J*** S****"),
        (mask_name, "", ""),
        (mask_birthday, dt.date(1990, 5, 17), "****-05-17"),
        (mask_birthday, None, ""),
        (mask_address, "上海市浦东新区世纪大道100号", "上海市浦东新区****"),
        (mask_address, "广东省深圳市南山区科技园1栋", "广东省深圳市南山区****"),
        (mask_address, "221B Baker Street, London", "****, London"),
    ],
)
def test_masking_examples(function: object, value: object, masked: str) -> None:
    assert function(value) == masked  # type: ignore[operator]


def test_a_malformed_key_list_fails_the_system_check(settings: Settings) -> None:
    settings.PATRON_PII_KEYS = "k1:tooshort"
    with pytest.raises(SystemCheckError, match=r"patron.E001.*PATRON_PII_KEYS entry 1"):
        call_command("check")
    settings.PATRON_PII_KEYS = KEY_ONE
    call_command("check", stdout=io.StringIO())


def test_new_key_prints_an_entry_with_the_next_id(one_key: Settings) -> None:
    output = io.StringIO()
    call_command("privacy", "new-key", stdout=output)
    entry = output.getvalue().strip()
    assert entry.startswith("k2:")
    assert parse_key_ring(entry).key_ids == ("k2",)


@pytest.mark.django_db
def test_check_keys_counts_what_rotation_has_left_to_do(one_key: Settings) -> None:
    # given a customer written under k1, then k2 put first
    Customer.objects.create(external_id="C-1", name="张伟")
    one_key.PATRON_PII_KEYS = f"{KEY_TWO},{KEY_ONE}"

    # when the keys are checked, then its name and name index are named as left to do
    with pytest.raises(CommandError, match=r"^2 values are not under key k2 yet: run"):
        call_command("privacy", "check-keys", stdout=io.StringIO())

    # and after a rotation nothing is
    call_command("privacy", "rotate-keys", stdout=io.StringIO())
    rotation = AuditEvent.objects.get(action="key_rotation")
    assert rotation.details == {"key_id": "k2", "values_reencrypted": 1, "indexes_recomputed": 1}
    assert rotation.actor_label == "command: patron privacy"
    output = io.StringIO()
    call_command("privacy", "check-keys", stdout=output)
    assert output.getvalue().splitlines()[-1] == "every value is under key k2"
    one_key.PATRON_PII_KEYS = KEY_TWO
    assert Customer.objects.get().name == "张伟"
    assert list(search_customers("张伟")) == [Customer.objects.get()]
