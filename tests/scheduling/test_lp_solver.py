"""Every HiGHS solver in the process shares one thread scheduler: the platform's solvers
must keep working whatever ran before them."""

from __future__ import annotations

import highspy
import numpy as np
import pytest

from aifactories.programme.review_assignment import (
    ProposalProfile,
    ReviewerProfile,
    assign_reviewers,
)
from aifactories.scheduling.lp_solver import new_highs


def _tiny_lp_optimum() -> float:
    """max x + y, x + y <= 3, 0 <= x, y <= 2, through new_highs."""
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = 2, 1
    lp.col_cost_ = np.array([1.0, 1.0])
    lp.col_lower_, lp.col_upper_ = np.zeros(2), np.full(2, 2.0)
    lp.row_lower_, lp.row_upper_ = np.array([-highspy.kHighsInf]), np.array([3.0])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array([0, 1, 2], dtype=np.int32)
    lp.a_matrix_.index_ = np.array([0, 0], dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(2)
    lp.sense_ = highspy.ObjSense.kMaximize
    highs = new_highs(solver="simplex")
    highs.passModel(lp)
    highs.run()
    assert highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(highs.getInfo().objective_function_value)


def test_solvers_one_after_another_in_one_process() -> None:
    # the award optimiser's MIP (default threads) used to leave the reviewer assignment
    # (which asked for threads=1) with status "Not Set": solve in both orders, repeatedly
    for _ in range(3):
        assert _tiny_lp_optimum() == pytest.approx(3.0)
        plan = assign_reviewers(
            [ProposalProfile(1, 1, "ES", "health", frozenset({900}))],
            [ReviewerProfile(2, 2, "DE", frozenset({"health"}), 0)],
            [],
            per_proposal=1,
        )
        assert [a.reviewer_id for a in plan.assignments] == [2]


def test_threads_option_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="thread scheduler is shared"):
        new_highs(threads=1)
