"""Masked forms of personal values, for people who may see that a value exists but not read it.

``138****5678``, ``z***@qq.com``, ``张*``, ``J*** S****``, ``****-05-17``, ``上海市浦东新区****``.
Each function takes the plaintext (blank gives blank) and never returns more than the
masked form shows; they do not decide who sees what (roles do).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

MASK = "*"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ADDRESS_AREA = re.compile(
    r"^(.*?(?:省|自治区|市|特别行政区))?(.*?(?:市|州|盟))?(.*?(?:区|县|旗))?"
)


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits: ``13812345678`` → ``138****5678``,
    ``+8613812345678`` → ``+86 138****5678``; a short number keeps its last two digits."""
    text = unicodedata.normalize("NFKC", phone or "").strip()
    if not text:
        return ""
    country = ""
    digits = re.sub(r"\D", "", text)
    if text.startswith("+86") and len(digits) == 13:
        country, digits = "+86 ", digits[2:]
    elif text.startswith("+") and len(digits) > 11:
        country, digits = f"+{digits[: len(digits) - 11]} ", digits[len(digits) - 11 :]
    if len(digits) >= 11:
        return f"{country}{digits[:3]}{MASK * 4}{digits[-4:]}"
    if len(digits) >= 7:
        return f"{country}{digits[:2]}{MASK * (len(digits) - 4)}{digits[-2:]}"
    return MASK * max(len(digits) - 2, 1) + digits[-2:] if len(digits) > 2 else MASK * 3


def mask_email(email: str) -> str:
    """Keep the first character of the mailbox and the domain: ``zhang.wei@qq.com`` →
    ``z***@qq.com``."""
    text = (email or "").strip()
    if not text:
        return ""
    local, at, domain = text.rpartition("@")
    if not at:
        return text[:1] + MASK * 3
    return f"{local[:1]}{MASK * 3}@{domain}"


def mask_name(name: str) -> str:
    """A Chinese name keeps its first character (``张伟`` → ``张*``, ``欧阳娜娜`` → ``欧***``);
    a Latin name keeps each word's initial (``John Smith`` → ``J*** S****``)."""
    text = " ".join((name or "").split())
    if not text:
        return ""
    if _CJK.search(text):
        compact = text.replace(" ", "")
        return compact[0] + MASK * max(len(compact) - 1, 1)
    return " ".join(word[0] + MASK * max(len(word) - 1, 1) for word in text.split(" "))


def mask_birthday(birthday: dt.date | str | None) -> str:
    """Hide the year, keep month and day (what birthday care needs): ``****-05-17``."""
    if not birthday:
        return ""
    day = birthday if isinstance(birthday, dt.date) else dt.date.fromisoformat(str(birthday))
    return f"{MASK * 4}-{day.month:02d}-{day.day:02d}"


def mask_address(address: str) -> str:
    """Keep the province, city and district of a Chinese address and hide the rest
    (``上海市浦东新区世纪大道100号`` → ``上海市浦东新区****``); other addresses keep their last
    comma-separated part (the city or country)."""
    text = (address or "").strip()
    if not text:
        return ""
    if _CJK.search(text):
        match = _ADDRESS_AREA.match(text)
        area = match.group(0) if match else ""
        if area == text:  # nothing but the area: hide its last part too
            area = text[: max(len(text) // 2, 1)]
        return f"{area}{MASK * 4}"
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return f"{MASK * 4}, {parts[-1]}" if len(parts) > 1 else MASK * 4
