"""Family B of the simulator: a second rendering family designed independently of family A.

It shares only the project contracts with family A (levels, label values, corner order and
Kauppila bounds of :mod:`aacscore.vertebrae`, the grading of :mod:`aacscore.kauppila`, the
on-disk format of :mod:`aacscore.simulate.dataset`), so that models trained on one family can be
tested on the other. Skeleton: :mod:`.shapes`; soft tissue, aorta and plaques: :mod:`.scene`;
rasterisation and imaging chain: :mod:`.render`; truth: :mod:`.truth`; one film: :mod:`.case`.
"""

from aacscore.simulate.family_b.case import FAMILY, OVERRIDES, FamilyBCase, simulate_case_b

__all__ = ["FAMILY", "OVERRIDES", "FamilyBCase", "simulate_case_b"]
