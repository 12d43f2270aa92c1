"""A linear-chain CRF over BIO tags: the sequence-level loss and its learned transition scores.

The head's logits serve as the CRF's emission scores.  A sequence's score is
the sum of its emissions plus an opening score for its first tag, a
transition score for each pair of neighbouring tags and a closing score for
its last tag.  Sequences that break the BIO scheme (``I-X`` after anything
but ``B-X`` or ``I-X``) are left out of the normalization, so the model
learns to rank only well-formed sequences.  Decoding is
``tags.best_valid_tags`` with the learned scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy

from .tags import FORBIDDEN, LearnedScores, constrained_scores, piece_runs, split_tag

# A gold path worth less than this is impossible under the BIO constraints
# (its score includes a FORBIDDEN term), so the run would teach nothing.
IMPOSSIBLE = FORBIDDEN / 2


@dataclass
class TransitionScores:
    """The CRF's learned scores: opening ``(n_tags,)``, transition ``(n_tags, n_tags)`` indexed ``[previous, next]``, closing ``(n_tags,)``."""

    opening: numpy.ndarray
    transition: numpy.ndarray
    closing: numpy.ndarray

    @classmethod
    def zeros(cls, n_tags: int) -> "TransitionScores":
        return cls(
            numpy.zeros(n_tags, dtype="float32"),
            numpy.zeros((n_tags, n_tags), dtype="float32"),
            numpy.zeros(n_tags, dtype="float32"),
        )

    def as_tuple(self) -> LearnedScores:
        return self.opening, self.transition, self.closing

    def arrays(self) -> dict:
        """Return the scores by name, the form they are saved in."""
        return {"opening": self.opening, "transition": self.transition, "closing": self.closing}


def crf_loss(
    emissions: numpy.ndarray,
    gold_ids: numpy.ndarray,
    has_piece: Sequence[bool],
    tags: Sequence[str],
    learned: TransitionScores,
) -> Tuple[float, numpy.ndarray, TransitionScores]:
    """Return the negative log-likelihood of the gold tags of one sequence, with its gradients.

    Args:
        emissions: shape ``(n_tokens, n_tags)``, the head's logits.
        gold_ids: shape ``(n_tokens,)``, the gold tag id of each token, or -1
            where it is unknown (tokenizations disagree): any tag counts as
            gold there.
        has_piece: False for tokens without word pieces; they split the
            sequence into runs, each scored on its own, as in decoding.

    A gold entity cut by the start of a run (a token without pieces inside
    it, or a sentence boundary when the caller passes sentences) continues
    there with ``I-X``, which no run may open.  That token's gold tag is read
    as ``B-X``, what decoding outputs there, so the run still trains.

    Returns:
        The loss summed over runs, its gradient with respect to the
        emissions (zeros for tokens without pieces) and with respect to the
        learned scores.
    """
    n_tokens, n_tags = emissions.shape
    scores = constrained_scores(tags, learned.as_tuple())
    opening_tag = _opening_tag_ids(tags)
    d_emissions = numpy.zeros((n_tokens, n_tags), dtype="float64")
    d_learned = [numpy.zeros_like(a, dtype="float64") for a in scores]
    loss = 0.0
    for start, end in piece_runs(has_piece):
        run = numpy.asarray(emissions[start:end], dtype="float64")
        gold = numpy.array(gold_ids[start:end])
        if gold[0] >= 0:
            gold[0] = opening_tag[gold[0]]
        gold_only = numpy.where(
            (gold[:, None] < 0) | (gold[:, None] == numpy.arange(n_tags)), 0.0, FORBIDDEN
        )
        log_z, unary, pairs = _marginals(run, *scores)
        gold_log_z, gold_unary, gold_pairs = _marginals(run + gold_only, *scores)
        # A guard only: once the first gold tag opens the run, a valid path matches.
        if gold_log_z < IMPOSSIBLE:
            continue
        loss += log_z - gold_log_z
        d_emissions[start:end] = unary - gold_unary
        d_learned[0] += unary[0] - gold_unary[0]
        d_learned[1] += pairs - gold_pairs
        d_learned[2] += unary[-1] - gold_unary[-1]
    gradient = TransitionScores(*(a.astype("float32") for a in d_learned))
    return loss, d_emissions.astype("float32"), gradient


def _opening_tag_ids(tags: Sequence[str]) -> numpy.ndarray:
    """Map each tag id to the id of the tag that opens the same entity: ``I-X`` to ``B-X``, others to themselves."""
    index = {tag: i for i, tag in enumerate(tags)}
    opening = numpy.arange(len(tags))
    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if prefix == "I" and f"B-{label}" in index:
            opening[i] = index[f"B-{label}"]
    return opening


def _marginals(
    emissions: numpy.ndarray,
    opening: numpy.ndarray,
    transition: numpy.ndarray,
    closing: numpy.ndarray,
) -> Tuple[float, numpy.ndarray, numpy.ndarray]:
    """Run forward-backward in log space: return the log partition, tag marginals per token and summed pair marginals."""
    n_tokens = len(emissions)
    alpha = numpy.empty_like(emissions)
    beta = numpy.empty_like(emissions)
    alpha[0] = opening + emissions[0]
    for t in range(1, n_tokens):
        alpha[t] = _logsumexp(alpha[t - 1][:, None] + transition, axis=0) + emissions[t]
    beta[-1] = closing
    for t in range(n_tokens - 2, -1, -1):
        beta[t] = _logsumexp(transition + (emissions[t + 1] + beta[t + 1])[None, :], axis=1)
    log_z = float(_logsumexp(alpha[-1] + closing, axis=0))
    unary = numpy.exp(alpha + beta - log_z)
    pairs = numpy.zeros_like(transition)
    for t in range(1, n_tokens):
        pairs += numpy.exp(
            alpha[t - 1][:, None] + transition + (emissions[t] + beta[t])[None, :] - log_z
        )
    return log_z, unary, pairs


def _logsumexp(values: numpy.ndarray, axis: int) -> numpy.ndarray:
    peak = values.max(axis=axis, keepdims=True)
    return numpy.squeeze(peak, axis=axis) + numpy.log(numpy.exp(values - peak).sum(axis=axis))

