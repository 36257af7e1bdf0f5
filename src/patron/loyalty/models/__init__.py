"""The loyalty programme's tables: programme, tiers, members and the points ledger
(``programme.py``, ``ledger.py``), coupons and rewards (``coupons.py``)."""

from patron.loyalty.models.coupons import Coupon as Coupon
from patron.loyalty.models.coupons import CouponRedemption as CouponRedemption
from patron.loyalty.models.coupons import CouponTemplate as CouponTemplate
from patron.loyalty.models.ledger import LedgerTransaction as LedgerTransaction
from patron.loyalty.models.ledger import LotConsumption as LotConsumption
from patron.loyalty.models.ledger import PointBalance as PointBalance
from patron.loyalty.models.ledger import PointLot as PointLot
from patron.loyalty.models.ledger import Posting as Posting
from patron.loyalty.models.programme import CategoryMultiplier as CategoryMultiplier
from patron.loyalty.models.programme import Member as Member
from patron.loyalty.models.programme import Programme as Programme
from patron.loyalty.models.programme import Promotion as Promotion
from patron.loyalty.models.programme import Tier as Tier
from patron.loyalty.models.programme import TierChange as TierChange
from patron.loyalty.models.referrals import CareGrant as CareGrant
from patron.loyalty.models.referrals import CarePolicy as CarePolicy
from patron.loyalty.models.referrals import Referral as Referral
from patron.loyalty.models.referrals import ReferralPolicy as ReferralPolicy
from patron.loyalty.models.rewards import Reward as Reward
from patron.loyalty.models.rewards import RewardRedemption as RewardRedemption
