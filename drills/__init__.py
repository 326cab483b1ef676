"""The disaster-recovery drill: a fault in the local environment, the operator's moves, a merchant's traffic.

Run it as ``make drill`` (``python -m drills``).
"""
