"""The check vocabulary: one function per check kind named in vocabulary.CHECK_KINDS.

A check function takes a CheckContext and returns None when the clause holds, or
raises ClauseFailure with the clause id and a message that says what was found,
what was expected and where.
"""

from nnconform.checks import exact, gradients, modes, reference_checks, state, statistical
from nnconform.checks.context import CheckContext, ClauseFailure

CHECKS = {**exact.CHECKS, **reference_checks.CHECKS, **state.CHECKS, **statistical.CHECKS,
          **gradients.CHECKS, **modes.CHECKS}

__all__ = ["CHECKS", "CheckContext", "ClauseFailure"]
