"""Language switching and the committed Simplified Chinese translations."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

import patron
from patron.customers.models import Customer
from patron.orders.choices import OrderStatusChoices
from tests.web.conftest import SmallShop

LOCALE = Path(patron.__file__).resolve().parent / "locale" / "zh_Hans" / "LC_MESSAGES"


def _parse_po(path: Path) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of every entry of a .po file; the first msgstr of plurals."""
    entries: list[tuple[str, str, bool]] = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        current = ""
        for line in block.splitlines():
            match = re.match(r"^(msgid|msgid_plural|msgstr(?:\[\d+\])?) (\".*\")$", line)
            if match:
                current = match.group(1)
                fields[current] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and current:
                fields[current] += ast.literal_eval(line)
        if "msgid" not in fields or not fields["msgid"]:
            continue  # the header
        msgstr = fields.get("msgstr", fields.get("msgstr[0]", ""))
        entries.append((fields["msgid"], msgstr, "#, fuzzy" in block or ", fuzzy" in block))
    return entries


def test_every_message_has_a_chinese_translation() -> None:
    # when
    entries = _parse_po(LOCALE / "django.po")
    # then
    assert len(entries) > 150
    assert [msgid for msgid, msgstr, _ in entries if not msgstr] == []
    assert [msgid for msgid, _, fuzzy in entries if fuzzy] == []


def test_committed_mo_file_matches_the_po_file() -> None:
    # given
    entries = _parse_po(LOCALE / "django.po")
    # when
    with (LOCALE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    # then: every translation of the .po is in the .mo, unchanged (run compilemessages)
    stale = [msgid for msgid, msgstr, _ in entries if compiled.gettext(msgid) != msgstr]
    assert stale == []


def test_activating_chinese_translates_interface_and_model_strings() -> None:
    # when
    with translation.override("zh-hans"):
        overview = translation.gettext("Overview")
        cancelled = str(OrderStatusChoices.CANCELLED.label)
        repeat = translation.gettext("Repeat purchase rate")
    # then
    assert (overview, cancelled, repeat) == ("概览", "已取消", "复购率")


def test_browser_language_chooses_the_page_language(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    chinese = staff_client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    english = staff_client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    # then
    assert '<html lang="zh-hans">' in chinese
    assert "复购率" in chinese
    assert '<html lang="en">' in english
    assert "Repeat purchase rate" in english


@pytest.mark.django_db
def test_language_switch_keeps_the_choice_over_the_browser_language(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when the staff user picks Chinese on an English page
    response = staff_client.post(
        "/i18n/setlang/", {"language": "zh-hans", "next": "/customers/C-0001/"}
    )
    page = staff_client.get("/customers/C-0001/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    # then
    assert response.status_code == 302
    assert response["Location"] == "/customers/C-0001/"
    assert "订单记录" in page
    assert "已取消" in page
    assert "行为时间线" in page


def test_chinese_pages_show_large_counts_in_wan(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # given
    Customer.objects.bulk_create(
        Customer(external_id=f"BULK-{number}") for number in range(12_345 - 3)
    )
    # when
    html = staff_client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    # then
    assert re.search(r'data-kpi="customers">.*?class="kpi-value">1.23万<', html, re.DOTALL)
