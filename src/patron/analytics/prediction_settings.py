"""The settings of the predictive models of an analysis run (``patron analyze`` options)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from patron.engine.frames import EngineInputError


@dataclass(frozen=True)
class PredictionSettings:
    """How the predictive models run (``patron analyze`` options).

    ``horizon_days`` is the churn horizon and the window of ``expected_purchases_90d``
    (named for its default); ``clv_months`` and the monthly ``discount_rate`` define the CLV;
    ``calibration_end`` (with ``validate``) ends the period the validation fits see.
    """

    horizon_days: int = 90
    clv_months: int = 12
    discount_rate: float = 0.01
    validate: bool = False
    calibration_end: dt.date | None = None

    def check(self, as_of: dt.date) -> None:
        """Refuse settings that cannot work as of ``as_of``, naming the setting."""
        if self.horizon_days < 1:
            raise EngineInputError(f"horizon_days must be at least 1, got {self.horizon_days}")
        if self.clv_months < 1:
            raise EngineInputError(f"clv_months must be at least 1, got {self.clv_months}")
        if not -1.0 < self.discount_rate < 1.0:
            raise EngineInputError(
                f"discount_rate is monthly and must lie in (-1, 1), got {self.discount_rate}"
            )
        if self.validate:
            if self.calibration_end is None:
                raise EngineInputError("validation needs a calibration end date")
            if self.calibration_end >= as_of:
                raise EngineInputError(
                    f"the calibration end {self.calibration_end} must be before the analysis "
                    f"day {as_of}"
                )
