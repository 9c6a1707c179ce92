"""Plain NumPy reference of the linear-Gaussian state-space model: the Kalman filter and the
Rauch-Tung-Striebel smoother, one sequence, float64, in the textbook form.

The specification that the C++ engine (``rnnfast._core.kalman``) and :class:`rnnfast.statespace.LinearGaussian`
are tested against; clarity over speed (a Python loop over time).

Model (t = 0..T-1; o_t and d_t are offsets, e.g. B u_t + b and D u_t + d with inputs u_t):

    x_0 ~ N(mu0, P0),   x_t = A x_t-1 + o_t + w_t,  w ~ N(0, Q),    y_t = C x_t + d_t + v_t,  v ~ N(0, R)

Filter: predict m_t|t-1 = A m_t-1|t-1 + o_t, P_t|t-1 = A P_t-1|t-1 A^T + Q (m_0|-1 = mu0, P_0|-1 = P0);
update, when y_t is observed (no NaN in the row):
    S = C P C^T + R,  K = P C^T S^-1,  m_t|t = m + K (y_t - C m - d_t),  P_t|t = P - K C P,
    log p(y_t | y_0..t-1) = log N(y_t; C m + d_t, S).
A row with a NaN is missing: m_t|t = m_t|t-1, P_t|t = P_t|t-1, and it adds nothing to the log-likelihood.

Smoother: J_t = P_t|t A^T P_t+1|t^-1,  m_t|T = m_t|t + J_t (m_t+1|T - m_t+1|t),
P_t|T = P_t|t + J_t (P_t+1|T - P_t+1|t) J_t^T,  Cov(x_t+1, x_t | y) = P_t+1|T J_t^T.
"""

import numpy as np

__all__ = ["kalman_filter", "rts_smoother"]


def _at(offsets, t, width):
    if offsets is None:
        return np.zeros(width)
    offsets = np.asarray(offsets, np.float64)
    return offsets if offsets.ndim == 1 else offsets[t]


def kalman_filter(A, C, Q, R, mu0, P0, y, state_offsets=None, obs_offsets=None):
    """(pred_means [T,X], pred_covs [T,X,X], filt_means [T,X], filt_covs [T,X,X], loglik) for y [T,Y].

    state_offsets / obs_offsets: [X] / [Y] (constant) or [T,X] / [T,Y] (per step; row 0 of the state
    offsets is not used), or None (zero)."""
    A, C, Q, R = (np.asarray(a, np.float64) for a in (A, C, Q, R))
    y = np.asarray(y, np.float64)
    T, Yd = y.shape
    X = A.shape[0]
    pm, pc = np.empty((T, X)), np.empty((T, X, X))
    fm, fc = np.empty((T, X)), np.empty((T, X, X))
    loglik = 0.0
    m, P = np.asarray(mu0, np.float64), np.asarray(P0, np.float64)
    for t in range(T):
        if t > 0:
            m = A @ fm[t - 1] + _at(state_offsets, t, X)
            P = A @ fc[t - 1] @ A.T + Q
        pm[t], pc[t] = m, P
        if np.isnan(y[t]).any():
            fm[t], fc[t] = m, P
            continue
        S = C @ P @ C.T + R
        K = np.linalg.solve(S, C @ P).T          # P C^T S^-1 (S and P symmetric)
        r = y[t] - C @ m - _at(obs_offsets, t, Yd)
        fm[t] = m + K @ r
        fc[t] = P - K @ C @ P
        _, logdet = np.linalg.slogdet(S)
        loglik += -0.5 * (Yd * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(S, r))
    return pm, pc, fm, fc, loglik


def rts_smoother(A, pred_means, pred_covs, filt_means, filt_covs):
    """(smooth_means [T,X], smooth_covs [T,X,X], pair_covs [T,X,X]) from kalman_filter's results;
    pair_covs[t] = Cov(x_t, x_t-1 | y), zero at t = 0."""
    A = np.asarray(A, np.float64)
    T, X = filt_means.shape
    sm, sc, pair = np.empty((T, X)), np.empty((T, X, X)), np.zeros((T, X, X))
    sm[-1], sc[-1] = filt_means[-1], filt_covs[-1]
    for t in range(T - 2, -1, -1):
        J = np.linalg.solve(pred_covs[t + 1], A @ filt_covs[t]).T   # P_t|t A^T P_t+1|t^-1
        sm[t] = filt_means[t] + J @ (sm[t + 1] - pred_means[t + 1])
        sc[t] = filt_covs[t] + J @ (sc[t + 1] - pred_covs[t + 1]) @ J.T
        pair[t + 1] = sc[t + 1] @ J.T
    return sm, sc, pair
