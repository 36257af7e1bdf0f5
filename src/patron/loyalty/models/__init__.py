"""The loyalty programme's tables: programme, tiers, members and the points ledger
(``programme.py``, ``ledger.py``), coupons and rewards (``coupons.py``)."""
