"""Forms of the CLV and churn pages: they parse and check query parameters, nothing more."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patron.analytics.choices import SegmentationChoices
from patron.analytics.models import AnalysisRun
from patron.analytics.selectors import segment_codes

#: The segmentations the churn list can be narrowed to.
CHURN_FILTER_SEGMENTATIONS = (
    SegmentationChoices.RFM,
    SegmentationChoices.VALUE_TIER,
    SegmentationChoices.LIFECYCLE,
)


class ChurnFilterForm(forms.Form):
    """The churn list's filters: a lowest churn probability in percent, and one segment
    (``rfm:champions``, ``value_tier:top``, ``lifecycle:at_risk`` ...)."""

    min_probability = forms.IntegerField(
        label=_("Churn probability at least (%)"),
        min_value=0,
        max_value=100,
        required=False,
        widget=forms.NumberInput(attrs={"step": 5, "placeholder": "0"}),
    )
    segment = forms.ChoiceField(label=_("Segment"), required=False)

    def __init__(self, data: Any, run: AnalysisRun) -> None:
        super().__init__(data)
        choices: list[tuple[str, Any]] = [("", _("All customers"))]
        for by in CHURN_FILTER_SEGMENTATIONS:
            group = [(f"{by}:{code}", label) for code, label in segment_codes(run, by)]
            choices.append((str(SegmentationChoices(by).label), group))
        segment_field = self.fields["segment"]
        assert isinstance(segment_field, forms.ChoiceField)
        segment_field.choices = choices

    def probability(self) -> float | None:
        """The lowest churn probability as a share (0–1), or None for no limit."""
        percent = self.cleaned_data.get("min_probability")
        return None if percent is None else percent / 100

    def segment_filter(self) -> tuple[str | None, str | None]:
        """The segmentation and segment code picked, or (None, None)."""
        value = self.cleaned_data.get("segment") or ""
        if not value:
            return None, None
        by, code = value.split(":", 1)
        return by, code
