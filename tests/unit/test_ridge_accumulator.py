"""rnnfast.esn.RidgeAccumulator: the ridge read-out's statistics and solve against a float64 NumPy oracle,
including the search's paths (strided state views with a reused scratch, a reused solve workspace) and the
least-squares fallback when the system is not positive definite."""

import numpy as np
import pytest

from rnnfast.esn import RidgeAccumulator


def _oracle(X, Y, ridge):
    """argmin |Y - X W - b|^2 + ridge |W|^2 with an unpenalised intercept, by centring."""
    xm, ym = X.mean(0), Y.mean(0)
    Xc, Yc = X - xm, Y - ym
    W = np.linalg.solve(Xc.T @ Xc + ridge * np.eye(X.shape[1]), Xc.T @ Yc)
    return W, ym - xm @ W


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ridge", [1e-8, 1e-3, 2.5])
def test_solve_matches_oracle_over_chunks(seed, ridge):
    rng = np.random.default_rng(seed)
    N, O = 37, 3
    X = np.tanh(rng.standard_normal((301, N)) + 0.7)  # a common offset, as reservoir states have
    Y = X @ rng.standard_normal((N, O)) + 0.1 * rng.standard_normal((301, O)) + 2.0
    acc = RidgeAccumulator(N, O)
    for a, b in ((0, 50), (50, 51), (51, 200), (200, 301)):  # uneven chunks, one of a single row
        acc.add(X[a:b], Y[a:b])
    W, b = acc.solve(ridge)
    W0, b0 = _oracle(X, Y, ridge)
    np.testing.assert_allclose(W, W0, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(b, b0, rtol=1e-7, atol=1e-9)
    # the same solve in a reused workspace, twice (the workspace's old contents must not leak in)
    work = np.full((N, N), np.nan, order="F")
    for _ in range(2):
        W2, b2 = acc.solve(ridge, work)
        np.testing.assert_array_equal(W2, W)
        np.testing.assert_array_equal(b2, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_views_with_scratch_equal_contiguous_add(dtype):
    """The search's _add path: a member's states as a strided view (T, B, N) of (T, P, B, N), centred into a
    reused float64 scratch, gives the statistics of the contiguous float64 rows."""
    rng = np.random.default_rng(3)
    T, P, B, N, O = 40, 3, 2, 11, 2
    states = np.tanh(rng.standard_normal((T, P, B, N))).astype(dtype)
    Y = rng.standard_normal((T * B, O))
    scratch = np.full((T * B, N), np.nan)
    for p in range(P):
        a, c = RidgeAccumulator(N, O), RidgeAccumulator(N, O)
        for t0 in (0, 17):
            t1 = 17 if t0 == 0 else T
            a._add(states[t0:t1, p], Y[t0 * B:t1 * B], scratch)
            c.add(np.asarray(states[t0:t1, p], np.float64).reshape(-1, N), Y[t0 * B:t1 * B])
        assert a.n == c.n == T * B
        for r in (0.0, 1e-4):
            for x, y in zip(a.solve(r), c.solve(r)):
                np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


def test_singular_system_falls_back_to_least_squares():
    """ridge 0 with collinear columns: no Cholesky; the answer still minimises the squared error."""
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((200, 4))
    X = np.concatenate([Z, Z[:, :2] * 2.0], axis=1)  # rank 4 of 6
    Y = Z @ rng.standard_normal((4, 1)) + 0.5
    acc = RidgeAccumulator(6, 1)
    acc.add(X, Y)
    W, b = acc.solve(0.0)
    assert np.isfinite(W).all() and np.isfinite(b).all()
    resid = Y - X @ W - b
    np.testing.assert_allclose(resid, 0.0, atol=1e-8)


def test_solve_before_any_rows_raises():
    with pytest.raises(ValueError, match="no training samples"):
        RidgeAccumulator(3, 1).solve(1e-6)


def test_concurrent_accumulators_in_threads_equal_serial():
    """The engine's update releases the GIL: accumulators filled from several threads at once (as the tasks
    of a multi-threaded Dask worker do) equal the same ones filled one after another."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(9)
    N, O = 160, 2
    blocks = [(np.tanh(rng.standard_normal((400, N))), rng.standard_normal((400, O))) for _ in range(4)]

    def fill(k):
        acc = RidgeAccumulator(N, O)
        for s in range(0, 400, 100):
            X, Y = blocks[k]
            acc.add(X[s:s + 100], Y[s:s + 100])
        return acc.solve(1e-6)

    serial = [fill(k) for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fill, range(4)))
    for (W1, b1), (W2, b2) in zip(serial, threaded):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)


def test_engine_statistics_check_their_arguments():
    from rnnfast import _core
    N, O = 5, 1
    X = np.zeros((3, 1, N))
    Y = np.zeros((3, O))
    good = dict(x=X, y=Y, cx=np.zeros(N), cy=np.zeros(O), xx=np.zeros((N, N), order="F"), xy=np.zeros((N, O)),
                xs=np.zeros(N), ys=np.zeros(O), scratch=np.zeros((3, N)))
    _core.ridge_stats_add(**good)
    for name, value, match in (("xx", np.zeros((N, N)), "Fortran"), ("y", np.zeros((4, O)), "steps \\* batch"),
                               ("x", np.zeros((3, N), np.float32), "3-D"), ("scratch", np.zeros(2), "at least"),
                               ("cx", np.zeros(N + 1), "shape")):
        with pytest.raises(ValueError, match=f"ridge_stats_add.*'{name}'.*{match}"):
            _core.ridge_stats_add(**dict(good, **{name: value}))


def test_statistics_do_not_depend_on_the_engine_threads():
    """Above the size where the engine splits the update over its threads, one and two threads give the
    same statistics bit for bit (the same BLAS calls either way): a search's scores do not depend on where
    its tasks ran."""
    from rnnfast import _core
    rng = np.random.default_rng(11)
    N, O = 200, 2
    X, Y = np.tanh(rng.standard_normal((600, N))), rng.standard_normal((600, O))
    before = _core.build_info()["threads"]
    got = []
    try:
        for n in (1, 2):
            _core.set_num_threads(n)
            acc = RidgeAccumulator(N, O)
            acc.add(X[:300], Y[:300])
            acc.add(X[300:], Y[300:])
            got.append((np.triu(acc.xx), acc.xy.copy(), acc.solve(1e-6)))
    finally:
        _core.set_num_threads(before)
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_array_equal(got[0][1], got[1][1])
    for a, b in zip(got[0][2], got[1][2]):
        np.testing.assert_array_equal(a, b)
