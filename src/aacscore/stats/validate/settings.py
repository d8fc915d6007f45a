"""How ``aacscore validate`` computes its statistics."""

from __future__ import annotations

from dataclasses import dataclass

from aacscore.kauppila import parse_groups
from aacscore.stats.agreement import LOA_CI_METHODS, LoaCIMethod
from aacscore.stats.bootstrap import BOOTSTRAP_METHODS, BootstrapMethod
from aacscore.stats.validate.inputs import ValidationInputError


@dataclass(frozen=True)
class ValidationSettings:
    """Severity groups, confidence level, bootstrap and LoA CI settings.

    ``ci_method`` and ``loa_ci_method`` accept the enum members or their values and are stored
    as members.
    """

    groups: str = "lewis"
    confidence: float = 0.95
    n_resamples: int = 2000
    ci_method: str | BootstrapMethod = BootstrapMethod.BCA
    seed: int = 0
    loa_ci_method: str | LoaCIMethod = LoaCIMethod.BLAND_ALTMAN_1999

    def __post_init__(self) -> None:
        if not (0.0 < self.confidence < 1.0):
            raise ValidationInputError(
                f"confidence must lie between 0 and 1, got {self.confidence}"
            )
        try:
            object.__setattr__(self, "ci_method", BootstrapMethod(self.ci_method))
        except ValueError:
            raise ValidationInputError(
                f"unknown bootstrap CI method {self.ci_method!r}; use one of {BOOTSTRAP_METHODS}"
            ) from None
        try:
            object.__setattr__(self, "loa_ci_method", LoaCIMethod(self.loa_ci_method))
        except ValueError:
            raise ValidationInputError(
                f"unknown LoA CI method {self.loa_ci_method!r}; use one of {LOA_CI_METHODS}"
            ) from None
        if self.n_resamples < 0:
            raise ValidationInputError(f"n_resamples must be >= 0, got {self.n_resamples}")
        try:
            parse_groups(self.groups)
        except ValueError as e:
            raise ValidationInputError(f"severity groups: {e}") from None
