"""The panel's scores and ranking. Pure.

A reviewer scores every criterion of the call from 0 to 10. Their review's score is the
weighted sum over the criteria, with the call's weights normalised to sum to 1, so it is on
the same 0..10 scale::

    review score   = sum over criteria c of  w_c / (sum of w) * score_c
    proposal score = mean of its submitted reviews' scores       (rounded to 3 decimals)
    spread         = highest minus lowest review score           (disagreement of the panel)

Proposals are ranked by score, highest first; ties go to the one submitted first (then the
lower proposal id). A proposal with no submitted review has no score and no rank yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aifactories.domain.errors import InvalidInput
from aifactories.programme.modes import Criterion, criteria_weights_normalised

MIN_SCORE = 0.0
MAX_SCORE = 10.0
DECIMALS = 3


def check_scores(scores: Mapping[str, float], criteria: Sequence[Criterion]) -> dict[str, float]:
    """A reviewer's scores, checked: every criterion of the call, each 0..10, nothing else."""
    names = [c.name for c in criteria]
    for name in scores:
        if name not in names:
            raise InvalidInput(
                f"scores.{name}",
                f"{name!r} is no criterion of this call; score {', '.join(names)}",
            )
    out: dict[str, float] = {}
    for name in names:
        if name not in scores or scores[name] is None:
            raise InvalidInput(
                f"scores.{name}",
                f"missing: score every criterion of the call ({', '.join(names)}), "
                f"each {MIN_SCORE:g} to {MAX_SCORE:g}",
            )
        value = float(scores[name])
        if not math.isfinite(value) or not MIN_SCORE <= value <= MAX_SCORE:
            raise InvalidInput(
                f"scores.{name}",
                f"{scores[name]!r} is out of range",
                f"{MIN_SCORE:g} to {MAX_SCORE:g}",
            )
        out[name] = value
    return out


def review_score(scores: Mapping[str, float], criteria: Sequence[Criterion]) -> float:
    """One review's weighted score, 0..10."""
    weights = criteria_weights_normalised(tuple(criteria))
    return round(sum(w * float(scores[name]) for name, w in weights.items()), DECIMALS)


@dataclass(frozen=True, slots=True)
class ProposalReviews:
    """A proposal's submitted reviews (each a criterion -> score mapping)."""

    proposal_id: int
    submitted_at: float | None
    reviews: tuple[Mapping[str, float], ...]


@dataclass(frozen=True, slots=True)
class RankedProposal:
    proposal_id: int
    rank: int | None  # 1 = best; None without a submitted review
    score: float | None
    reviews: int  # submitted reviews counted
    spread: float | None
    review_scores: tuple[float, ...]


def proposal_score(
    reviews: Sequence[Mapping[str, float]], criteria: Sequence[Criterion]
) -> tuple[float | None, float | None, tuple[float, ...]]:
    """(score, spread, each review's score); (None, None, ()) without reviews."""
    each = tuple(review_score(r, criteria) for r in reviews)
    if not each:
        return None, None, ()
    mean = round(math.fsum(each) / len(each), DECIMALS)
    return mean, round(max(each) - min(each), DECIMALS), each


def rank_proposals(
    proposals: Sequence[ProposalReviews], criteria: Sequence[Criterion]
) -> list[RankedProposal]:
    """Every proposal with its score and rank: ranked ones first (best first), then the ones
    without a submitted review (by submission)."""
    scored: list[tuple[ProposalReviews, float | None, float | None, tuple[float, ...]]] = []
    for p in proposals:
        score, spread, each = proposal_score(p.reviews, criteria)
        scored.append((p, score, spread, each))

    def key(
        item: tuple[ProposalReviews, float | None, float | None, tuple[float, ...]],
    ) -> tuple[int, float, float, int]:
        p, score, _, _ = item
        submitted = p.submitted_at if p.submitted_at is not None else math.inf
        return (score is None, -(score or 0.0), submitted, p.proposal_id)

    out: list[RankedProposal] = []
    rank = 0
    for p, score, spread, each in sorted(scored, key=key):
        if score is not None:
            rank += 1
        out.append(
            RankedProposal(
                proposal_id=p.proposal_id,
                rank=rank if score is not None else None,
                score=score,
                reviews=len(each),
                spread=spread,
                review_scores=each,
            )
        )
    return out
