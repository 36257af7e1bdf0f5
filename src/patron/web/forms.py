"""Forms of the dashboard's pages: they parse and check query parameters, nothing more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


class KpiPeriodForm(forms.Form):
    """The period of the KPI page: first and last day, both included (shop-local days)."""

    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        """Refuse a period that ends before it starts."""
        cleaned: dict[str, Any] = super().clean() or {}
        start: dt.date | None = cleaned.get("start")
        end: dt.date | None = cleaned.get("end")
        if start is not None and end is not None and start > end:
            raise forms.ValidationError(
                _("The period must not end before it starts."), code="reversed_period"
            )
        return cleaned
