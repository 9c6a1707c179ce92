"""Property tests (hypothesis): random small shapes, cells, dtypes and options.

* the C++ engine equals the float64 NumPy reference, forward and backward (tolerance from the dtype);
* a batch gives what its sequences give one by one;
* a bidirectional layer is two unidirectional ones, the second run on the time-reversed sequence;
* an ESN batch gives what its sequences give one by one.

Shapes stay small (T <= 6, N <= 4, C <= 5, H <= 6). Every test is derandomized and uses no example
database, so CI runs the same examples every time; the whole file runs in a few seconds.
"""

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rnnfast

PROFILE = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

# cell name -> (class, constructor keywords)
CELLS = {
    "rnn_tanh": (rnnfast.RNN, dict(nonlinearity="tanh")),
    "rnn_relu": (rnnfast.RNN, dict(nonlinearity="relu")),
    "lstm": (rnnfast.LSTM, {}),
    "gru": (rnnfast.GRU, dict(reset_after=True)),
    "gru_cho": (rnnfast.GRU, dict(reset_after=False)),
}
# max |engine - float64 reference| / (1 + max |reference|): float32 keeps ~1e-7 per operation, a few
# hundred operations deep at these sizes; float64 should agree to rounding.
TOL = {np.float32: 2e-5, np.float64: 1e-11}


@st.composite
def configs(draw, bidirectional=None, num_layers=None):
    return dict(
        cell=draw(st.sampled_from(sorted(CELLS))),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        T=draw(st.integers(1, 6)), N=draw(st.integers(1, 4)), C=draw(st.integers(1, 5)), H=draw(st.integers(1, 6)),
        bias=draw(st.booleans()),
        bidirectional=draw(st.booleans()) if bidirectional is None else bidirectional,
        num_layers=draw(st.integers(1, 2)) if num_layers is None else num_layers,
        batch_first=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def make(cfg, dtype=None, engine="cpu", bidirectional=None):
    cls, kw = CELLS[cfg["cell"]]
    return cls(cfg["C"], cfg["H"], num_layers=cfg["num_layers"], bias=cfg["bias"], batch_first=cfg["batch_first"],
               bidirectional=cfg["bidirectional"] if bidirectional is None else bidirectional,
               dtype=np.dtype(dtype or cfg["dtype"]).name, engine=engine, seed=cfg["seed"], **kw)


def data(cfg, dtype):
    """x, h0 (and c0), dy, dh_n (and dc_n) for cfg, from its seed, in `dtype`."""
    rng = np.random.default_rng(cfg["seed"] + 1)
    T, N, C, H = cfg["T"], cfg["N"], cfg["C"], cfg["H"]
    D = 2 if cfg["bidirectional"] else 1
    LD = cfg["num_layers"] * D
    seq = (N, T) if cfg["batch_first"] else (T, N)

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    lstm = cfg["cell"] == "lstm"
    hx = (r(LD, N, H), r(LD, N, H)) if lstm else r(LD, N, H)
    dhx = (r(LD, N, H), r(LD, N, H)) if lstm else r(LD, N, H)
    return r(*seq, C), hx, r(*seq, D * H), dhx


def cast(a, dtype):
    if isinstance(a, tuple):
        return tuple(cast(v, dtype) for v in a)
    return a.astype(dtype)


def run(layer, x, hx, dy, dhx):
    """Forward then backward; everything a user sees, flattened to a list of arrays."""
    y, h = layer(x, hx)
    dx, dh0 = layer.backward(dy, dhx)
    out = [y, *(h if isinstance(h, tuple) else (h,)), dx, *(dh0 if isinstance(dh0, tuple) else (dh0,))]
    return out + [layer.grads[k] for k in sorted(layer.grads)]


def close(a, b, tol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    if a.size == 0:
        return
    err = float(np.abs(a - b).max())
    assert err <= tol * (1 + float(np.abs(b).max())), err


@settings(max_examples=200, **PROFILE)
@given(configs())
def test_engine_equals_float64_reference(cfg):
    dt = cfg["dtype"]
    fast = make(cfg)
    ref = make(cfg, dtype=np.float64, engine="reference")
    ref.load_state_dict({k: v.astype(np.float64) for k, v in fast.state_dict().items()})
    x, hx, dy, dhx = data(cfg, dt)
    got = run(fast, x, hx, dy, dhx)
    want = run(ref, cast(x, np.float64), cast(hx, np.float64), cast(dy, np.float64), cast(dhx, np.float64))
    assert all(g.dtype == dt for g in got)  # outputs keep the layer's dtype
    for g, w in zip(got, want):
        close(g, w, TOL[dt])


@settings(max_examples=150, **PROFILE)
@given(configs())
def test_batch_equals_one_by_one(cfg):
    dt = cfg["dtype"]
    layer = make(cfg)
    x, hx, dy, dhx = data(cfg, dt)
    b_axis = 0 if cfg["batch_first"] else 1
    y, h = layer(x, hx)
    dx, _ = layer.backward(dy, dhx)
    states = h if isinstance(h, tuple) else (h,)
    for n in range(cfg["N"]):
        def one(a, axis=b_axis, n=n):
            return np.ascontiguousarray(np.take(a, [n], axis=axis))

        hx_n = tuple(one(s, 1) for s in hx) if isinstance(hx, tuple) else one(hx, 1)
        dhx_n = tuple(one(s, 1) for s in dhx) if isinstance(dhx, tuple) else one(dhx, 1)
        y_n, h_n = layer(one(x), hx_n)
        dx_n, _ = layer.backward(one(dy), dhx_n)
        close(y_n, one(y), TOL[dt])
        close(dx_n, one(dx), TOL[dt])
        for s_n, s in zip(h_n if isinstance(h_n, tuple) else (h_n,), states):
            close(s_n, one(s, 1), TOL[dt])


@settings(max_examples=150, **PROFILE)
@given(configs(bidirectional=True, num_layers=1))
def test_bidirectional_equals_two_unidirectional_runs(cfg):
    dt = cfg["dtype"]
    bi = make(cfg)
    fwd, bwd = make(cfg, bidirectional=False), make(cfg, bidirectional=False)
    sd = bi.state_dict()
    fwd.load_state_dict({k: v for k, v in sd.items() if not k.endswith("_reverse")})
    bwd.load_state_dict({k[:-len("_reverse")]: v for k, v in sd.items() if k.endswith("_reverse")})
    x, hx, dy, dhx = data(cfg, dt)
    t_axis = 1 if cfg["batch_first"] else 0
    H = cfg["H"]

    def flip(a):
        return np.ascontiguousarray(np.flip(a, axis=t_axis))

    def part(s, d):  # direction d of a (2, N, H) state, or of an LSTM pair
        return tuple(v[d:d + 1] for v in s) if isinstance(s, tuple) else s[d:d + 1]

    y, h = bi(x, hx)
    dx, dh0 = bi.backward(dy, dhx)
    y_f, h_f = fwd(x, part(hx, 0))
    dx_f, dh0_f = fwd.backward(np.ascontiguousarray(dy[..., :H]), part(dhx, 0))
    y_b, h_b = bwd(flip(x), part(hx, 1))
    dx_b, dh0_b = bwd.backward(flip(dy[..., H:]), part(dhx, 1))
    tol = TOL[dt]
    close(y[..., :H], y_f, tol)
    close(y[..., H:], flip(y_b), tol)
    close(dx, dx_f + flip(dx_b), tol)
    for both, f, b in ((h, h_f, h_b), (dh0, dh0_f, dh0_b)):
        for s, s_f, s_b in zip(*((v if isinstance(v, tuple) else (v,)) for v in (both, f, b))):
            close(s[0:1], s_f, tol)
            close(s[1:2], s_b, tol)
    for k, g in bi.grads.items():
        other = bwd.grads[k[:-len("_reverse")]] if k.endswith("_reverse") else fwd.grads[k]
        close(g, other, tol)


@settings(max_examples=100, **PROFILE)
@given(T=st.integers(1, 6), B=st.integers(1, 4), I=st.integers(1, 3), R=st.integers(1, 12),
       dtype=st.sampled_from(["float32", "float64"]), density=st.sampled_from([0.3, 1.0]),
       leak=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_esn_batch_equals_one_by_one(T, B, I, R, dtype, density, leak, seed):
    try:
        esn = rnnfast.ESN(I, R, 1, seed=seed, density=density, leak_rate=leak, dtype=dtype, bias_scaling=0.5)
    except ValueError as e:  # a sparse W drawn without a cycle (radius 0) cannot be scaled: refused
        assert "no cycle" in str(e) and density < 1
        assume(False)
    u = np.random.default_rng(seed + 1).standard_normal((T, B, I))
    states = esn.run_reservoir(u)
    assert states.shape == (T, B, R) and states.dtype == np.dtype(dtype)
    tol = TOL[np.dtype(dtype).type]
    for b in range(B):
        esn.reset()
        close(esn.run_reservoir(u[:, b]), states[:, b], tol)
