"""The statistics against independent reference implementations (krippendorff, statsmodels, a direct scipy
optimisation) on fixed data, to 1e-6, and against hand-computed tiny cases."""

from __future__ import annotations

import math
from itertools import permutations

import krippendorff
import numpy as np
import pytest
from scipy.optimize import minimize
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from annotate.quality import metrics
from annotate.quality.metrics import (
    SIGNED_STRENGTH_SCALE,
    agreement_rate,
    agreement_with_majority_of_others,
    bradley_terry,
    fleiss_kappa,
    kendall_tau_distance,
    krippendorff_alpha,
    pair_outcome_counts,
)

# Krippendorff's own worked example (Content Analysis, 2004; also the krippendorff package's doctest):
# 3 coders x 15 units, NaN = missing.
KRIPPENDORFF_EXAMPLE = [
    [np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
    [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
    [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4],
]


def _units_from_matrix(matrix: np.ndarray) -> list[list[float]]:
    """Coders x units (NaN missing) to values per unit."""
    matrix = np.asarray(matrix, dtype=float)
    return [[float(v) for v in matrix[:, u] if not math.isnan(v)] for u in range(matrix.shape[1])]


def _random_reliability(seed: int, coders: int = 6, units: int = 300, values: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, values + 1, size=units)
    noise = rng.integers(-1, 2, size=(coders, units)) * (rng.random((coders, units)) < 0.35)
    data = np.clip(truth + noise, 1, values).astype(float)
    data[rng.random((coders, units)) < 0.3] = np.nan
    return data


# --- Krippendorff's alpha -------------------------------------------------------------------------------


def test_alpha_matches_krippendorffs_worked_example() -> None:
    units = _units_from_matrix(KRIPPENDORFF_EXAMPLE)
    assert krippendorff_alpha(units, "nominal").alpha == pytest.approx(0.691358, abs=1e-6)
    assert krippendorff_alpha(units, "interval").alpha == pytest.approx(0.810845, abs=1e-6)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_alpha_matches_the_krippendorff_package(level: str, seed: int) -> None:
    data = _random_reliability(seed)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    result = krippendorff_alpha(_units_from_matrix(data), level)  # type: ignore[arg-type]
    assert result.alpha == pytest.approx(expected, abs=1e-6)


def test_ordinal_alpha_on_the_signed_strength_scale_matches_the_package() -> None:
    # The category order matters for ordinal alpha: it is the scale's, not the order values appear in.
    rng = np.random.default_rng(7)
    scale = np.array(SIGNED_STRENGTH_SCALE)
    truth = rng.integers(0, 8, size=400)
    data = np.clip(truth + rng.integers(-2, 3, size=(3, 400)), 0, 7)
    values = scale[data].astype(float)
    values[rng.random((3, 400)) < 0.2] = np.nan
    expected = krippendorff.alpha(
        reliability_data=values, value_domain=list(SIGNED_STRENGTH_SCALE), level_of_measurement="ordinal"
    )
    units = _units_from_matrix(values)
    result = krippendorff_alpha(units, "ordinal", categories=SIGNED_STRENGTH_SCALE)
    assert result.alpha == pytest.approx(expected, abs=1e-6)
    # A category nobody used still shifts the ordinal distances of the ones around it only through counts:
    # listing the full scale or only the used values gives the same alpha (unused categories weigh zero).
    used = sorted({int(v) for u in units for v in u})
    assert krippendorff_alpha(units, "ordinal", categories=used).alpha == pytest.approx(expected, abs=1e-6)


def test_alpha_with_kendall_tau_distance_matches_the_package_with_the_same_metric() -> None:
    rng = np.random.default_rng(11)
    k = 4
    perms = list(permutations(range(k)))
    units: list[list[tuple[int, ...]]] = []
    for _ in range(150):
        base = list(rng.permutation(k))
        unit = []
        for _coder in range(int(rng.integers(1, 5))):
            ranking = base.copy()
            if rng.random() < 0.4:
                i = int(rng.integers(0, k - 1))
                ranking[i], ranking[i + 1] = ranking[i + 1], ranking[i]
            unit.append(tuple(int(x) for x in ranking))
        units.append(unit)
    index = {p: i for i, p in enumerate(perms)}
    distances = np.array([[kendall_tau_distance(a, b) for b in perms] for a in perms])
    coders = max(len(u) for u in units)
    matrix = np.full((coders, len(units)), np.nan)
    for u, unit in enumerate(units):
        for c, ranking in enumerate(unit):
            matrix[c, u] = index[ranking]

    def metric(v1, v2, i1, i2, n_v, dtype=np.float64):  # type: ignore[no-untyped-def]
        return distances[v1.astype(int), v2.astype(int)].astype(dtype)

    expected = krippendorff.alpha(
        reliability_data=matrix, value_domain=list(range(len(perms))), level_of_measurement=metric
    )
    fast = krippendorff_alpha(units, distance=kendall_tau_distance)  # linear-time feature path
    generic = krippendorff_alpha(units, distance=lambda a, b: kendall_tau_distance(a, b))  # matrix path
    assert fast.alpha == pytest.approx(expected, abs=1e-6)
    assert generic.alpha == pytest.approx(expected, abs=1e-6)
    assert fast.n_units == generic.n_units == sum(1 for u in units if len(u) >= 2)


def test_alpha_hand_computed_tiny_cases() -> None:
    # Perfect agreement.
    assert krippendorff_alpha([["a", "a"], ["b", "b"]]).alpha == pytest.approx(1.0)
    # Two units, each split a/b: o_ab = o_ba = 2, n = 4, D_o = 4/4 = 1; D_e = 2*2*2 / (4*3) = 2/3.
    result = krippendorff_alpha([["a", "b"], ["b", "a"]])
    assert result.alpha == pytest.approx(1 - 1 / (2 / 3))
    assert (result.n_units, result.n_values) == (2, 4)
    # Units with one value do not count; no variation at all leaves alpha undefined.
    assert krippendorff_alpha([["a"], ["b"], [None, "a"]]) == metrics.AlphaResult(None, 0, 0)
    undefined = krippendorff_alpha([["a", "a"], ["a", "a", "a"]])
    assert undefined.alpha is None and undefined.n_units == 2 and undefined.n_values == 5


def test_alpha_refuses_values_outside_the_categories() -> None:
    with pytest.raises(ValueError, match="not one of the categories"):
        krippendorff_alpha([[1, 5], [1, 1]], "ordinal", categories=[1, 2, 3])


def test_kendall_tau_distance_counts_discordant_pairs() -> None:
    assert kendall_tau_distance((0, 1, 2), (0, 1, 2)) == 0
    assert kendall_tau_distance((0, 1, 2), (2, 1, 0)) == 3
    assert kendall_tau_distance(("a", "b", "c", "d"), ("b", "a", "c", "d")) == 1
    with pytest.raises(ValueError):
        kendall_tau_distance((0, 1), (0, 2))


# --- Agreement rate, Fleiss' kappa, majority of others ---------------------------------------------------


def test_agreement_rate_hand_computed() -> None:
    # Unit 1: pairs (a,a) (a,b) (a,b) -> 1/3 agree; unit 2: 1/1; a single value does not count.
    result = agreement_rate([["a", "a", "b"], ["a", "a"], ["b"]])
    assert result.rate == pytest.approx((1 / 3 + 1) / 2)
    assert (result.n_units, result.n_values, result.n_pairs) == (2, 5, 4)
    assert agreement_rate([["a"]]).rate is None


@pytest.mark.parametrize("seed", [4, 5])
def test_fleiss_kappa_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=250)
    ratings = np.where(rng.random((250, 4)) < 0.7, truth[:, None], rng.integers(0, 3, size=(250, 4)))
    table = np.stack([(ratings == c).sum(axis=1) for c in range(3)], axis=1)
    expected = sm_fleiss_kappa(table, method="fleiss")
    result = fleiss_kappa([list(row) for row in ratings])
    assert result.kappa == pytest.approx(expected, abs=1e-6)
    assert (result.n_units, result.raters) == (250, 4)
    # With a constant overlap, the pairwise agreement rate is Fleiss' P-bar.
    p_bar = ((table * (table - 1)).sum(axis=1) / (4 * 3)).mean()
    assert agreement_rate([list(row) for row in ratings]).rate == pytest.approx(p_bar, abs=1e-12)


def test_fleiss_kappa_hand_computed_and_uneven_units() -> None:
    assert fleiss_kappa([["a", "a"], ["b", "b"]]).kappa == pytest.approx(1.0)
    assert fleiss_kappa([["a", "b"], ["a", "b"]]).kappa == pytest.approx(-1.0)
    # Most units have 2 values: the 3-value unit counts with its first two, the 1-value unit not at all.
    result = fleiss_kappa([["a", "a"], ["b", "b"], ["a", "a", "b"], ["b"]])
    assert (result.kappa, result.n_units, result.raters) == (pytest.approx(1.0), 3, 2)


def test_agreement_with_majority_of_others() -> None:
    # Unit 0: a a b -> the first a agrees with the others' majority (a vs b tie? others = a, b: no majority).
    # Unit 1: a a a b -> each a sees {a: 2, b: 1}: agrees; b sees {a: 3}: disagrees.
    units = np.array([0, 0, 0, 1, 1, 1, 1])
    codes = np.array([0, 0, 1, 0, 0, 0, 1])
    result = agreement_with_majority_of_others(units, codes, 2)
    assert np.isnan(result[0]) and np.isnan(result[1])
    assert result[2] == 0.0  # b against the others' a a
    assert list(result[3:]) == [1.0, 1.0, 1.0, 0.0]


def test_signed_strength() -> None:
    assert metrics.signed_strength(0, 3) == -4
    assert metrics.signed_strength(1, 0) == 1
    with pytest.raises(ValueError):
        metrics.signed_strength(2, 0)


# --- Bradley-Terry -------------------------------------------------------------------------------------


def _scipy_bradley_terry(effective: np.ndarray) -> np.ndarray:
    m = effective.shape[0]

    def negative_log_likelihood(free: np.ndarray) -> float:
        beta = np.concatenate([[0.0], free])
        diff = beta[:, None] - beta[None, :]
        return float((effective * np.logaddexp(0.0, -diff)).sum())

    def gradient(free: np.ndarray) -> np.ndarray:
        beta = np.concatenate([[0.0], free])
        p = 1.0 / (1.0 + np.exp(-(beta[:, None] - beta[None, :])))
        n = effective + effective.T
        grad = -(effective.sum(axis=1) - (n * p).sum(axis=1))
        return grad[1:]

    fit = minimize(
        negative_log_likelihood, np.zeros(m - 1), jac=gradient, method="BFGS", options={"gtol": 1e-11}
    )
    beta = np.concatenate([[0.0], fit.x])
    return beta - beta.mean()


def test_bradley_terry_matches_a_direct_scipy_optimisation() -> None:
    rng = np.random.default_rng(3)
    m = 6
    strength = rng.normal(0, 1, size=m)
    a = rng.integers(0, m, size=5000)
    b = (a + rng.integers(1, m, size=5000)) % m
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    a_wins = rng.random(5000) < p
    tied = rng.random(5000) < 0.1
    winners = np.where(a_wins, a, b)
    losers = np.where(a_wins, b, a)
    wins, ties = pair_outcome_counts(winners, losers, m, tied=tied)
    assert wins.sum() + ties.sum() / 2 == 5000
    result = bradley_terry(wins, ties, rounds=0)
    expected = _scipy_bradley_terry(wins + 0.5 * ties)
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)
    assert result.scores.sum() == pytest.approx(0.0, abs=1e-9)


def test_bradley_terry_hand_computed_two_models() -> None:
    # A beat B 3 times out of 4: P(A > B) = 3/4, so score(A) - score(B) = ln 3.
    result = bradley_terry(np.array([[0, 3], [1, 0]]), rounds=0, names=["A", "B"])
    assert result.scores[0] - result.scores[1] == pytest.approx(math.log(3), abs=1e-9)
    # Ties are half wins: 2 wins + 1/2 against 1 win + 1/2 gives ln(2.5 / 1.5).
    tied = bradley_terry(np.array([[0, 2], [1, 0]]), np.array([[0, 1], [1, 0]]), rounds=0)
    assert tied.scores[0] - tied.scores[1] == pytest.approx(math.log(2.5 / 1.5), abs=1e-9)
    assert tied.win_rate[0, 1] == pytest.approx(2.5 / 4)
    assert tied.comparisons[0, 1] == 4
    assert result.ratings()[0] - result.ratings()[1] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert result.order() == [0, 1]


def test_bradley_terry_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(5)
    m = 5
    wins = rng.integers(20, 80, size=(m, m)).astype(float)
    np.fill_diagonal(wins, 0)
    first = bradley_terry(wins, rounds=200, seed=1)
    again = bradley_terry(wins, rounds=200, seed=1)
    other = bradley_terry(wins, rounds=200, seed=2)
    np.testing.assert_array_equal(first.lower, again.lower)
    assert not np.array_equal(first.lower, other.lower)
    assert np.all(first.lower < first.scores) and np.all(first.scores < first.upper)
    # A hundred times the data narrows the interval about tenfold (sqrt(100)).
    bigger = bradley_terry(wins * 100, rounds=200, seed=1)
    ratio = (first.upper - first.lower) / (bigger.upper - bigger.lower)
    assert np.all((ratio > 6) & (ratio < 15))
    np.testing.assert_allclose(bigger.scores, first.scores, atol=1e-9)


def test_bradley_terry_unbeaten_model_stays_finite() -> None:
    # A never lost: the plain maximum likelihood is unbounded. With prior=0 a tiny prior keeps it finite
    # (and very large); with a real prior, it is shrunk.
    wins = np.array([[0, 5, 5], [0, 0, 3], [0, 2, 0]], dtype=float)
    plain = bradley_terry(wins, rounds=20, seed=0)
    assert np.all(np.isfinite(plain.scores)) and plain.scores[0] > 5
    assert plain.regularized_rounds == 20
    shrunk = bradley_terry(wins, rounds=20, seed=0, prior=1.0)
    assert 0 < shrunk.scores[0] < plain.scores[0] and shrunk.regularized_rounds == 0


def test_pair_outcome_counts_refuses_self_comparisons() -> None:
    with pytest.raises(ValueError):
        pair_outcome_counts(np.array([1]), np.array([1]), 3)


def test_bradley_terry_refuses_bad_matrices() -> None:
    with pytest.raises(ValueError):
        bradley_terry(np.ones((2, 3)))
    with pytest.raises(ValueError):
        bradley_terry(np.array([[1, 0], [0, 0]]))
    with pytest.raises(ValueError):
        bradley_terry(np.zeros((2, 2)), np.array([[0, 1], [0, 0]]))
