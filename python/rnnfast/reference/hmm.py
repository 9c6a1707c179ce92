"""Plain NumPy reference of a hidden Markov model's recursions: the scaled forward-backward pass and Viterbi.

The specification that the C++ engine (``rnnfast._core.hmm_forward_backward``, ``hmm_viterbi``) and
:class:`rnnfast.statespace.HMM` are tested against; it favours clarity over speed (a Python loop over time).

Notation: K states, one sequence of T observations, its emission log-likelihoods
framelogprob[t, k] = log p(x_t | z_t = k); startprob[k] = p(z_0 = k); transmat[i, j] = p(z_t = j | z_t-1 = i).

Forward (Rabiner's scaling): with b_t = exp(framelogprob[t] - m_t), m_t = max_k framelogprob[t, k],

    alpha_0 = startprob * b_0 / c_0,      alpha_t = (alpha_t-1 @ transmat) * b_t / c_t,

c_t the normaliser, so alpha_t = p(z_t | x_0..t) and log p(x_t | x_0..t-1) = log c_t + m_t.
Backward, scaled by the same c_t: beta_T-1 = 1, beta_t = transmat @ (b_t+1 * beta_t+1) / c_t+1; then
gamma_t = alpha_t * beta_t = p(z_t | x) and xi_t(i, j) = alpha_t-1(i) transmat(i, j) b_t(j) beta_t(j) / c_t.
(The engine normalises beta on its own, so its two passes run concurrently; the results are the same.)

Viterbi: delta_0 = log startprob + framelogprob[0],
delta_t(j) = max_i (delta_t-1(i) + log transmat(i, j)) + framelogprob[t, j], ties to the lowest i.
"""

import numpy as np

__all__ = ["forward_backward", "viterbi", "split"]


def split(framelogprob, lengths):
    """The rows of each sequence of a concatenation (lengths None: one sequence)."""
    if lengths is None:
        return [framelogprob]
    bounds = np.cumsum(lengths)[:-1]
    return np.split(framelogprob, bounds)


def _forward_backward_one(startprob, transmat, flp):
    T, K = flp.shape
    m = flp.max(axis=1)
    b = np.exp(flp - m[:, None])
    alpha, c = np.empty((T, K)), np.empty(T)
    for t in range(T):
        a = startprob * b[0] if t == 0 else (alpha[t - 1] @ transmat) * b[t]
        c[t] = a.sum()
        alpha[t] = a / c[t]
    beta = np.empty((T, K))
    beta[-1] = 1.0
    for t in range(T - 2, -1, -1):
        beta[t] = transmat @ (b[t + 1] * beta[t + 1]) / c[t + 1]
    gamma = alpha * beta
    xi = np.zeros((K, K))
    for t in range(1, T):
        xi += np.outer(alpha[t - 1], b[t] * beta[t] / c[t]) * transmat
    step = np.log(c) + m
    return step.sum(), step, alpha, gamma, xi


def forward_backward(startprob, transmat, framelogprob, lengths=None):
    """(loglik [S], step_logprob [R], filtered [R,K], posterior [R,K], xi_sum [K,K]) in float64, over the
    sequences of the concatenation framelogprob [R,K] (lengths: their lengths; None: one sequence)."""
    startprob, transmat = np.asarray(startprob, np.float64), np.asarray(transmat, np.float64)
    parts = [_forward_backward_one(startprob, transmat, np.asarray(f, np.float64))
             for f in split(framelogprob, lengths)]
    return (np.array([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
            sum(p[4] for p in parts))


def _viterbi_one(log_start, log_trans, flp):
    T, K = flp.shape
    delta = log_start + flp[0]
    back = np.zeros((T, K), dtype=np.int64)
    for t in range(1, T):
        cand = delta[:, None] + log_trans          # [i, j]
        back[t] = np.argmax(cand, axis=0)          # the first maximum
        delta = cand[back[t], np.arange(K)] + flp[t]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return float(delta[path[-1]]), path


def viterbi(startprob, transmat, framelogprob, lengths=None):
    """(logprob [S], path [R]): each sequence's most likely state sequence and log p(x, z*)."""
    with np.errstate(divide="ignore"):
        log_start = np.log(np.asarray(startprob, np.float64))
        log_trans = np.log(np.asarray(transmat, np.float64))
    parts = [_viterbi_one(log_start, log_trans, np.asarray(f, np.float64)) for f in split(framelogprob, lengths)]
    return np.array([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
