"""Agreement and ranking statistics, as pure functions over plain values and numpy arrays.

Nothing here touches the database: the quality services read judgments with `values_list` / SQL, turn
them into values per unit (an item) or per-pair outcome counts, and call these functions. The AI-judge
feature calls them too, so the public names and signatures are kept stable:

- `krippendorff_alpha(units, level=..., categories=..., distance=...) -> AlphaResult`
- `agreement_rate(units) -> AgreementResult`
- `fleiss_kappa(units, categories=..., raters=...) -> KappaResult`
- `bradley_terry(wins, ties=..., names=..., rounds=..., seed=..., ...) -> BradleyTerryResult`
- `pair_outcome_counts(winners, losers, n_models, tied=...) -> (wins, ties)`

A *unit* is the sequence of values the annotators gave one item (`None` entries are missing values and
are dropped). Units with fewer than two values cannot be compared and are left out of every agreement
figure; the results say how many units and values they rest on.

Definitions and references are in docs/quality.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval"]

# The signed strength scale: -4..-1 prefer the response in slot 0 (significantly better .. negligibly
# better), 1..4 prefer slot 1. There is no 0: the LLaMa-2 scale has no "equal" answer.
SIGNED_STRENGTH_SCALE: tuple[int, ...] = (-4, -3, -2, -1, 1, 2, 3, 4)

# Past this many distinct values, a custom distance without `features` would need too many calls.
MAX_DISTINCT_FOR_CUSTOM_DISTANCE = 3000


def signed_strength(slot: int, level: int) -> int:
    """The signed strength of a pairwise answer: the chosen slot gives the sign (slot 0 negative), and
    the strength level (0 = negligibly .. 3 = significantly better, choices.STRENGTH_LEVEL) the size."""
    if slot not in (0, 1) or not 0 <= level <= 3:
        raise ValueError(f"slot must be 0 or 1 and level 0..3, got {slot!r}, {level!r}")
    return -(level + 1) if slot == 0 else level + 1


# --- Krippendorff's alpha -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha; `None` when undefined (no unit with two values, or no variation at all)."""

    alpha: float | None
    n_units: int  # units with at least two values (the ones alpha rests on)
    n_values: int  # values in those units
    observed_disagreement: float | None = None
    expected_disagreement: float | None = None


def _hashable(value: Any) -> Hashable:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _flatten(units: Iterable[Sequence[Any]]) -> tuple[np.ndarray, list[Hashable]]:
    """Unit index and value of every value in a unit with at least two (non-missing) values."""
    unit_index: list[int] = []
    values: list[Hashable] = []
    u = 0
    for unit in units:
        present = [_hashable(v) for v in unit if v is not None]
        if len(present) < 2:
            continue
        unit_index.extend([u] * len(present))
        values.extend(present)
        u += 1
    return np.asarray(unit_index, dtype=np.int64), values


def _encode(values: list[Hashable], categories: Sequence[Any] | None) -> tuple[np.ndarray, list[Hashable]]:
    """Codes 0..C-1 of the values in the category order (given, or sorted when the values sort)."""
    if categories is not None:
        domain = [_hashable(c) for c in categories]
        if len(set(domain)) != len(domain):
            raise ValueError("categories must not repeat")
    else:
        distinct = set(values)
        try:
            domain = sorted(distinct)  # type: ignore[type-var]
        except TypeError:
            domain = list(dict.fromkeys(values))
    code_of = {c: i for i, c in enumerate(domain)}
    try:
        codes = np.fromiter((code_of[v] for v in values), dtype=np.int64, count=len(values))
    except KeyError as exc:
        raise ValueError(f"value {exc.args[0]!r} is not one of the categories") from None
    return codes, domain


def value_counts(unit_index: np.ndarray, codes: np.ndarray, n_categories: int) -> np.ndarray:
    """The units x categories matrix of how many values each unit got in each category."""
    if len(unit_index) == 0:
        return np.zeros((0, n_categories), dtype=np.int64)
    n_units = int(unit_index.max()) + 1
    flat = np.bincount(unit_index * n_categories + codes, minlength=n_units * n_categories)
    return flat.reshape(n_units, n_categories)


def coincidences(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix o[c, k] of a units x categories count matrix; units with fewer
    than two values contribute nothing."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    weighted = counts / (m - 1)[:, None]
    o = weighted.T @ counts
    o[np.diag_indices_from(o)] -= weighted.sum(axis=0)
    return o


def _delta_nominal(n_c: np.ndarray) -> np.ndarray:
    size = len(n_c)
    return 1.0 - np.eye(size)


def _delta_ordinal(n_c: np.ndarray) -> np.ndarray:
    # delta^2(c, k) = (sum of n_g for g from c to k - (n_c + n_k) / 2)^2
    cumulative = np.concatenate([[0.0], np.cumsum(n_c)])
    idx = np.arange(len(n_c))
    low = np.minimum(idx[:, None], idx[None, :])
    high = np.maximum(idx[:, None], idx[None, :])
    between = cumulative[high + 1] - cumulative[low]
    return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2


def _alpha_from_coincidences(o: np.ndarray, delta: np.ndarray, n_units: int) -> AlphaResult:
    n_c = o.sum(axis=0)
    n = float(n_c.sum())
    n_values = round(n)
    if n_units == 0 or n < 2:
        return AlphaResult(None, n_units, n_values)
    observed = float((o * delta).sum()) / n
    expected = float((np.outer(n_c, n_c) * delta).sum()) / (n * (n - 1))
    if expected <= 0:
        return AlphaResult(None, n_units, n_values, observed, expected)
    return AlphaResult(1.0 - observed / expected, n_units, n_values, observed, expected)


def alpha_from_counts(
    counts: np.ndarray, level: Level = "nominal", category_values: Sequence[float] | None = None
) -> AlphaResult:
    """Krippendorff's alpha from a units x categories count matrix (columns in category order; for
    "interval", `category_values` gives each column's number, by default 0..C-1)."""
    counts = np.asarray(counts)
    n_units = int((counts.sum(axis=1) >= 2).sum()) if counts.size else 0
    o = coincidences(counts) if counts.size else np.zeros((counts.shape[1],) * 2)
    n_c = o.sum(axis=0)
    if level == "nominal":
        delta = _delta_nominal(n_c)
    elif level == "ordinal":
        delta = _delta_ordinal(n_c)
    elif level == "interval":
        x = np.asarray(
            category_values if category_values is not None else range(counts.shape[1]), dtype=np.float64
        )
        delta = (x[:, None] - x[None, :]) ** 2
    else:
        raise ValueError(f"level must be nominal, ordinal or interval, not {level!r}")
    return _alpha_from_coincidences(o, delta, n_units)


def krippendorff_alpha(
    units: Iterable[Sequence[Any]],
    level: Level = "nominal",
    categories: Sequence[Any] | None = None,
    distance: Callable[[Any, Any], float] | None = None,
) -> AlphaResult:
    """Krippendorff's alpha of the values per unit.

    - `level="nominal"`: any hashable values; two values differ or not.
    - `level="ordinal"`: values ordered by `categories` (or sorted); the rank-based ordinal metric.
    - `level="interval"`: numeric values; squared difference.
    - `distance`: a custom difference function d(a, b) >= 0 with d(a, a) = 0, used as Krippendorff's
      delta^2 (overrides `level`). If it has a `features(values) -> 0/1 matrix` method, d is the number of
      differing features (a Hamming distance) and alpha is computed in linear time, for any number of
      distinct values; `kendall_tau_distance` is such a distance, for rankings.
    """
    unit_index, values = _flatten(units)
    n_units = int(unit_index.max()) + 1 if len(unit_index) else 0
    if distance is not None:
        features = getattr(distance, "features", None)
        if callable(features):
            return alpha_hamming(unit_index, np.asarray(features(values)))
        return _alpha_custom(unit_index, values, distance, n_units)
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be nominal, ordinal or interval, not {level!r}")
    if n_units == 0:
        return AlphaResult(None, 0, 0)
    codes, domain = _encode(values, categories)
    counts = value_counts(unit_index, codes, len(domain))
    category_values = None
    if level == "interval":
        try:
            category_values = [float(c) for c in domain]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError("interval alpha needs numeric values") from None
    return alpha_from_counts(counts, level, category_values)


def _alpha_custom(
    unit_index: np.ndarray, values: list[Hashable], distance: Callable[[Any, Any], float], n_units: int
) -> AlphaResult:
    if n_units == 0:
        return AlphaResult(None, 0, 0)
    codes, domain = _encode(values, None)
    size = len(domain)
    if size > MAX_DISTINCT_FOR_CUSTOM_DISTANCE:
        raise ValueError(
            f"{size} distinct values: too many for a custom distance; give it a features() method"
        )
    delta = np.zeros((size, size))
    for a, b in combinations(range(size), 2):
        d = float(distance(domain[a], domain[b]))
        if d < 0 or not math.isfinite(d):
            raise ValueError("a distance must be finite and not negative")
        delta[a, b] = delta[b, a] = d
    counts = value_counts(unit_index, codes, size)
    return _alpha_from_coincidences(coincidences(counts), delta, n_units)


def alpha_hamming(unit_index: np.ndarray, bits: np.ndarray) -> AlphaResult:
    """Alpha for d(a, b) = number of features where a and b differ (`bits`: one 0/1 row per value, in
    units given by `unit_index`; units with one value are ignored). The disagreements add up feature by
    feature, each a binary nominal variable, so no matrix of all distinct values is ever built."""
    unit_index = np.asarray(unit_index, dtype=np.int64)
    sizes = np.bincount(unit_index) if len(unit_index) else np.zeros(0, dtype=np.int64)
    if np.any(sizes == 1):
        keep = sizes[unit_index] >= 2
        unit_index = np.unique(unit_index[keep], return_inverse=True)[1].astype(np.int64)
        bits = np.asarray(bits)[keep]
    n_units = int(unit_index.max()) + 1 if len(unit_index) else 0
    n = len(unit_index)
    if n_units == 0 or n < 2:
        return AlphaResult(None, n_units, n)
    bits = np.asarray(bits).astype(np.float64).reshape(n, -1)
    m = np.bincount(unit_index, minlength=n_units).astype(np.float64)
    ones = np.stack(
        [np.bincount(unit_index, weights=bits[:, p], minlength=n_units) for p in range(bits.shape[1])], axis=1
    )
    zeros = m[:, None] - ones
    # Ordered pairs within a unit that differ on a feature: 2 * ones * zeros, weighted 1 / (m_u - 1).
    observed_sum = float((2.0 * ones * zeros / (m - 1)[:, None]).sum())
    total_ones = bits.sum(axis=0)
    expected_sum = float((2.0 * total_ones * (n - total_ones)).sum())
    observed = observed_sum / n
    expected = expected_sum / (n * (n - 1))
    if expected <= 0:
        return AlphaResult(None, n_units, n, observed, expected)
    return AlphaResult(1.0 - observed / expected, n_units, n, observed, expected)


class KendallTauDistance:
    """The Kendall tau distance of two rankings of the same items: how many pairs of items they order
    differently (0 .. K(K-1)/2). Rankings are sequences of item labels, best first."""

    def __call__(self, a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
        if sorted(a) != sorted(b) or len(set(a)) != len(a):  # type: ignore[type-var]
            raise ValueError("Kendall tau compares two rankings of the same distinct items")
        position = {label: i for i, label in enumerate(b)}
        order = [position[label] for label in a]
        return float(sum(1 for i, j in combinations(range(len(order)), 2) if order[i] > order[j]))

    def features(self, rankings: Sequence[Sequence[Hashable]]) -> np.ndarray:
        """One 0/1 column per pair of items (x, y), x < y: 1 when x is ranked above y. The Kendall tau
        distance of two rankings is the number of columns where they differ."""
        if not rankings:
            return np.zeros((0, 0))
        labels = sorted(rankings[0])  # type: ignore[type-var]
        k = len(labels)
        index = {label: i for i, label in enumerate(labels)}
        positions = np.empty((len(rankings), k), dtype=np.int64)
        for r, ranking in enumerate(rankings):
            if len(ranking) != k or len(set(ranking)) != k:
                raise ValueError("Kendall tau compares rankings of the same distinct items")
            try:
                positions[r, [index[label] for label in ranking]] = np.arange(k)
            except KeyError:
                raise ValueError("Kendall tau compares rankings of the same distinct items") from None
        first, second = np.triu_indices(k, 1)
        return (positions[:, first] < positions[:, second]).astype(np.int8)


kendall_tau_distance = KendallTauDistance()


# --- Agreement rate, Fleiss' kappa, majority of others ---------------------------------------------------


@dataclass(frozen=True)
class AgreementResult:
    """Pairwise percent agreement: per unit, the share of pairs of its values that are equal, averaged
    over the units with at least two values (for a constant overlap, Fleiss' P-bar)."""

    rate: float | None
    n_units: int
    n_values: int
    n_pairs: int  # unordered pairs of values compared, over all units


def agreement_from_counts(counts: np.ndarray) -> AgreementResult:
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    if len(m) == 0:
        return AgreementResult(None, 0, 0, 0)
    pairs = m * (m - 1) / 2
    agreeing = (counts * (counts - 1) / 2).sum(axis=1)
    return AgreementResult(float((agreeing / pairs).mean()), len(m), int(m.sum()), int(pairs.sum()))


def agreement_rate(units: Iterable[Sequence[Any]]) -> AgreementResult:
    """Pairwise percent agreement of the values per unit (values compared for equality)."""
    unit_index, values = _flatten(units)
    if len(unit_index) == 0:
        return AgreementResult(None, 0, 0, 0)
    codes, domain = _encode(values, None)
    return agreement_from_counts(value_counts(unit_index, codes, len(domain)))


@dataclass(frozen=True)
class KappaResult:
    kappa: float | None
    n_units: int  # units that had at least `raters` values
    raters: int  # values per unit used (a unit with more contributes its first `raters`)


def fleiss_kappa(
    units: Iterable[Sequence[Any]], categories: Sequence[Any] | None = None, raters: int | None = None
) -> KappaResult:
    """Fleiss' kappa, which needs the same number of values per unit: `raters` (by default the most common
    count among units with two or more). Units with fewer values are left out; units with more (adaptive
    overlap) contribute their first `raters` values, in the order given."""
    listed = [[_hashable(v) for v in unit if v is not None] for unit in units]
    sizes = [len(u) for u in listed if len(u) >= 2]
    if raters is None:
        if not sizes:
            return KappaResult(None, 0, 0)
        # The most common size; the larger one on a tie, so that more of each unit counts.
        raters = max(set(sizes), key=lambda s: (sizes.count(s), s))
    if raters < 2:
        raise ValueError("Fleiss' kappa needs at least two raters per unit")
    kept = [u[:raters] for u in listed if len(u) >= raters]
    if not kept:
        return KappaResult(None, 0, raters)
    flat = [v for u in kept for v in u]
    codes, domain = _encode(flat, categories)
    unit_index = np.repeat(np.arange(len(kept)), raters)
    return kappa_from_counts(value_counts(unit_index, codes, len(domain)))


def kappa_from_counts(counts: np.ndarray) -> KappaResult:
    """Fleiss' kappa of a units x categories count matrix whose rows all sum to the same count."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape[0] == 0:
        return KappaResult(None, 0, 0)
    m = counts.sum(axis=1)
    raters = int(m[0])
    if raters < 2 or not np.all(m == raters):
        raise ValueError("Fleiss' kappa needs the same number (two or more) of values in every unit")
    p_unit = ((counts * counts).sum(axis=1) - raters) / (raters * (raters - 1))
    p_bar = float(p_unit.mean())
    p_cat = counts.sum(axis=0) / counts.sum()
    p_e = float((p_cat * p_cat).sum())
    if p_e >= 1:
        return KappaResult(None, counts.shape[0], raters)
    return KappaResult((p_bar - p_e) / (1 - p_e), counts.shape[0], raters)


def agreement_with_majority_of_others(
    unit_index: np.ndarray, codes: np.ndarray, n_categories: int
) -> np.ndarray:
    """For each value: 1.0 when it equals the strict majority answer of the *other* values of its unit,
    0.0 when it does not, NaN when the others have no strict plurality (none, or a tie at the top)."""
    unit_index = np.asarray(unit_index, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    result = np.full(len(codes), np.nan)
    if len(codes) == 0:
        return result
    counts = value_counts(unit_index, codes, n_categories)
    others = counts[unit_index].copy()
    others[np.arange(len(codes)), codes] -= 1
    top = others.max(axis=1)
    leaders = (others == top[:, None]).sum(axis=1)
    defined = (top > 0) & (leaders == 1)
    majority = others.argmax(axis=1)
    result[defined] = (majority[defined] == codes[defined]).astype(np.float64)
    return result


# --- Bradley-Terry leaderboard -------------------------------------------------------------------------


def pair_outcome_counts(
    winners: np.ndarray, losers: np.ndarray, n_models: int, tied: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate comparisons (model indices of the winner and loser of each) into a wins matrix
    (wins[i, j] = times i beat j) and a symmetric ties matrix; rows flagged in `tied` count as ties."""
    winners = np.asarray(winners, dtype=np.int64)
    losers = np.asarray(losers, dtype=np.int64)
    if np.any(winners == losers):
        raise ValueError("a model cannot be compared with itself")
    size = n_models * n_models
    if tied is None:
        tied = np.zeros(len(winners), dtype=bool)
    tied = np.asarray(tied, dtype=bool)
    flat = winners * n_models + losers
    wins = np.bincount(flat[~tied], minlength=size).reshape(n_models, n_models).astype(np.float64)
    one_way = np.bincount(flat[tied], minlength=size).reshape(n_models, n_models).astype(np.float64)
    return wins, one_way + one_way.T


@dataclass(frozen=True)
class BradleyTerryResult:
    """A Bradley-Terry fit: P(i beats j) = 1 / (1 + exp(scores[j] - scores[i])), scores centred on 0."""

    names: list[str]
    scores: np.ndarray
    lower: np.ndarray  # bootstrap percentile interval at `confidence`
    upper: np.ndarray
    wins: np.ndarray  # wins[i, j]: times i beat j (ties not included)
    ties: np.ndarray  # symmetric
    comparisons: np.ndarray  # symmetric: comparisons of i with j
    rounds: int
    confidence: float
    prior: float
    regularized_rounds: int = 0  # bootstrap rounds whose data left a score unbounded (see `prior`)
    regularized: bool = False  # the point estimate itself needed the tiny prior (a score is unbounded)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def win_rate(self) -> np.ndarray:
        """win_rate[i, j]: share of i's comparisons with j that i won (ties as half); NaN if none."""
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = (self.wins + 0.5 * self.ties) / self.comparisons
        return np.where(self.comparisons > 0, rate, np.nan)

    def ratings(self, scale: float = 400 / math.log(10), anchor: float = 1000.0) -> np.ndarray:
        """The scores on an Elo-like scale (400 points = 10:1 odds), centred on `anchor`."""
        return anchor + scale * self.scores

    def order(self) -> list[int]:
        return sorted(range(len(self.names)), key=lambda i: (-self.scores[i], self.names[i]))


def _strongly_connected(effective_wins: np.ndarray) -> bool:
    from scipy.sparse.csgraph import connected_components

    n = effective_wins.shape[0]
    if n <= 1:
        return True
    count, _ = connected_components(effective_wins > 0, directed=True, connection="strong")
    return count == 1


def _log_likelihood(beta: np.ndarray, w: np.ndarray) -> float:
    diff = beta[:, None] - beta[None, :]
    return float(-(w * np.logaddexp(0.0, -diff)).sum())


def fit_bradley_terry(effective_wins: np.ndarray, *, tol: float = 1e-12, max_iter: int = 200) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry scores (centred on 0) of a matrix w[i, j] of (possibly fractional)
    wins of i over j, by Newton's method with step halving. The maximum exists when the graph of wins is
    strongly connected; otherwise some scores run off to infinity (callers add a prior first)."""
    w = np.asarray(effective_wins, dtype=np.float64)
    m = w.shape[0]
    beta = np.zeros(m)
    if m < 2:
        return beta
    n = w + w.T
    total_wins = w.sum(axis=1)
    ones = np.ones((m, m)) / m
    current = _log_likelihood(beta, w)
    scale = max(float(n.sum()), 1.0)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(beta[:, None] - beta[None, :])))
        gradient = total_wins - (n * p).sum(axis=1)
        if np.abs(gradient).max() <= tol * scale:
            break
        curvature = n * p * (1.0 - p)
        laplacian = np.diag(curvature.sum(axis=1)) - curvature
        # The likelihood does not change when every score moves by the same amount; adding the all-ones
        # projection pins the step to sum zero and makes the system solvable.
        step = np.linalg.solve(laplacian + ones, gradient)
        t = 1.0
        while True:
            candidate = beta + t * step
            value = _log_likelihood(candidate, w)
            if value >= current - 1e-12 * abs(current):
                break
            t /= 2
            if t < 1e-10:  # no ascent left: we are at the optimum up to rounding
                return beta - beta.mean()
        beta, current = candidate - candidate.mean(), value
    return beta - beta.mean()


def bradley_terry(
    wins: np.ndarray,
    ties: np.ndarray | None = None,
    *,
    names: Sequence[str] | None = None,
    rounds: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    prior: float = 0.0,
) -> BradleyTerryResult:
    """Bradley-Terry scores by maximum likelihood with a bootstrap interval.

    `wins[i, j]` counts the comparisons i won against j; `ties[i, j]` (symmetric) the ties, each counted as
    half a win for both. `prior` adds that many virtual ties between every two models (0 = the plain
    maximum-likelihood fit); it keeps every score finite when a model never lost (or never won). With
    `prior=0`, a fit whose data leave a score unbounded uses a tiny prior (1e-6) instead and the bootstrap
    counts such rounds in `regularized_rounds`.

    The bootstrap resamples the comparisons: one multinomial draw over the (pair, outcome) cells with the
    observed total, which is the same as resampling rows but costs nothing per comparison. The interval
    is the percentile interval of each score over `rounds` resamples (seeded, so reproducible).
    """
    wins = np.asarray(wins, dtype=np.float64)
    m = wins.shape[0]
    if wins.shape != (m, m):
        raise ValueError("wins must be a square matrix")
    ties = np.zeros_like(wins) if ties is None else np.asarray(ties, dtype=np.float64)
    if ties.shape != (m, m) or not np.allclose(ties, ties.T):
        raise ValueError("ties must be a symmetric matrix of the same size as wins")
    if np.any(wins < 0) or np.any(ties < 0) or np.any(np.diag(wins) != 0) or np.any(np.diag(ties) != 0):
        raise ValueError("counts must be non-negative with an empty diagonal")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    if rounds < 0:
        raise ValueError("rounds must not be negative")
    labels = list(names) if names is not None else [str(i) for i in range(m)]
    if len(labels) != m:
        raise ValueError("one name per model")

    def fit(w_: np.ndarray, t_: np.ndarray) -> tuple[np.ndarray, bool]:
        effective = w_ + 0.5 * t_
        if prior > 0:
            effective = effective + (prior / 2.0) * (1.0 - np.eye(m))
            return fit_bradley_terry(effective), False
        if _strongly_connected(effective):
            return fit_bradley_terry(effective), False
        return fit_bradley_terry(effective + 0.5e-6 * (1.0 - np.eye(m))), True

    scores, regularized_point = fit(wins, ties)
    upper_i, upper_j = np.triu_indices(m, 1)
    cells = np.concatenate([wins[upper_i, upper_j], wins[upper_j, upper_i], ties[upper_i, upper_j]])
    total = round(float(cells.sum()))
    lower = upper = np.full(m, np.nan)
    regularized = 0
    if rounds > 0 and total > 0 and m >= 2:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(total, cells / cells.sum(), size=rounds).astype(np.float64)
        pairs = len(upper_i)
        samples = np.empty((rounds, m))
        for r in range(rounds):
            w_r = np.zeros((m, m))
            t_r = np.zeros((m, m))
            w_r[upper_i, upper_j] = draws[r, :pairs]
            w_r[upper_j, upper_i] = draws[r, pairs : 2 * pairs]
            t_r[upper_i, upper_j] = t_r[upper_j, upper_i] = draws[r, 2 * pairs :]
            samples[r], was_regularized = fit(w_r, t_r)
            regularized += was_regularized
        tail = (1 - confidence) / 2 * 100
        lower, upper = np.percentile(samples, [tail, 100 - tail], axis=0)
    return BradleyTerryResult(
        names=labels,
        scores=scores,
        lower=lower,
        upper=upper,
        wins=wins,
        ties=ties,
        comparisons=wins + wins.T + ties,
        rounds=rounds,
        confidence=confidence,
        prior=prior,
        regularized_rounds=regularized,
        regularized=regularized_point,
    )
