"""Plain NumPy reference of next-generation reservoir computing's features (NVAR; Gauthier et al. 2021),
step by step as reservoirpy 0.4's ``NVAR`` node: the specification :class:`rnnfast.esn.NVAR` is tested
against.

With k = delay, s = strides, n = order and inputs u_t of I features, the store holds the last k*s inputs
(zeros before the first). At each step the input is pushed to the front of the store and

    linear_t    = [u_t, u_{t-s}, ..., u_{t-(k-1)s}]                  (k*I values)
    nonlinear_t = [prod_j linear_t[i_j]  for (i_1 <= ... <= i_n)]      (every monomial of degree n, in
                                                  itertools.combinations_with_replacement's order)
    features_t  = [linear_t, nonlinear_t]
"""

import itertools

import numpy as np

__all__ = ["nvar_features"]


def nvar_features(u, delay, order, strides=1, store=None):
    """u (T, I) -> (features (T, k*I + C(k*I + n - 1, n)), store (k*s, I) after the last step)."""
    u = np.asarray(u, np.float64)
    T, I = u.shape
    store = np.zeros((delay * strides, I)) if store is None else np.array(store, np.float64)
    idx = np.array(list(itertools.combinations_with_replacement(range(delay * I), order)))
    out = []
    for t in range(T):
        store = np.roll(store, 1, axis=0)
        store[0] = u[t]
        linear = np.ravel(store[::strides, :])
        out.append(np.concatenate([linear, np.prod(linear[idx], axis=1)]))
    return np.array(out), store
