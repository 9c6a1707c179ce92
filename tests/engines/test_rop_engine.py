"""Tests of the engine R-ops (rnnfast.rop, csrc/cpu/rop.cpp) of the vanilla RNN and the MRNN.

* equal to the NumPy reference R-ops (reference.rnn_rop / mrnn_rop): float64 to 1e-12 relative; float32
  within 2x the float32 reference's own error against the float64 reference (STYLE.md habit 12), on
  shapes including T=1, N=1, C=1, H=1, F=1, with and without bias, with and without directions on x and
  h0, tanh and relu, and a case large enough for the engine's two-thread path;
* against central finite differences of y(theta + eps v) in float64;
* the reverse direction against the reference on the time-flipped sequence;
* SequenceModel(rop="engine") equal to rop="reference", curvature products included;
* bad input: errors naming the argument (Python layer and the bindings' own checks).
"""

import numpy as np
import pytest

import rnnfast
from rnnfast import _core, nn, optim, reference
from rnnfast.hessian_free import SequenceModel
from rnnfast.reference.mrnn import MRNN_KEYS
from rnnfast.reference.rop import RNN_KEYS
from rnnfast.rop import mrnn_rop_engine, rnn_rop_engine

from helpers import fd_direction, randn, rel_err

# (T, N, C, H, F): the degenerate sizes one at a time, a general case, and one with N*H >= 32768 (the
# engine's time loop then splits the batch rows and the per-step GEMMs over two threads)
SHAPES = [(1, 1, 1, 1, 1), (1, 3, 2, 4, 3), (6, 1, 3, 4, 2), (4, 3, 2, 1, 3), (4, 3, 1, 5, 1), (7, 5, 6, 9, 8),
          (3, 64, 8, 512, 96)]
SHAPE_IDS = ["T1N1C1H1F1", "T1", "N1", "H1", "C1F1", "general", "parallel"]
# (bias, direction on x, direction on h0 (a learned initial state's direction), h0 zero)
OPTIONS = [(True, True, True, False), (False, False, False, True), (True, False, True, False),
           (False, True, False, False)]
OPTION_IDS = ["bias-dx-dh0", "nobias-zero_h0", "bias-dh0", "nobias-dx"]


def rnn_case(shape, bias, with_dx, with_dh0, zero_h0, seed, nonlinearity="tanh"):
    """theta (float64: weights, x, h0), direction v (weights), dx, dh0. relu: the first seed from `seed`
    on (in steps of 1000) whose forward has a unit alive at every step, so that R{y} is not all zero."""
    T, N, C, H, _ = shape
    rng = np.random.default_rng(seed)
    theta = dict(W_ih=randn(rng, (H, C), scale=1.0 / np.sqrt(C)), W_hh=randn(rng, (H, H), scale=1.0 / np.sqrt(H)),
                 b_ih=randn(rng, (H,), scale=0.3) if bias else None, b_hh=randn(rng, (H,), scale=0.3) if bias else None,
                 x=randn(rng, (T, N, C)), h0=np.zeros((N, H)) if zero_h0 else randn(rng, (N, H), scale=0.5))
    v = {k: randn(rng, theta[k].shape) for k in RNN_KEYS if theta[k] is not None}
    dx = randn(rng, (T, N, C)) if with_dx else None
    dh0 = randn(rng, (N, H)) if with_dh0 else None
    if nonlinearity == "relu":
        y = reference.rnn_forward(theta["x"], theta["h0"], *(theta[k] for k in RNN_KEYS), nonlinearity="relu")[0]
        if not (y > 0).reshape(T, -1).any(axis=1).all():
            assert seed < 50_000, "no seed with a live relu unit at every step"
            return rnn_case(shape, bias, with_dx, with_dh0, zero_h0, seed + 1000, nonlinearity)
    return theta, v, dx, dh0


def mrnn_case(shape, bias, with_dx, with_dh0, zero_h0, seed):
    T, N, C, H, F = shape
    rng = np.random.default_rng(seed)
    theta = dict(W_fx=randn(rng, (F, C), scale=1.0 / np.sqrt(C)), W_fh=randn(rng, (F, H), scale=1.0 / np.sqrt(H)),
                 W_hf=randn(rng, (H, F), scale=1.0 / np.sqrt(F)), W_hx=randn(rng, (H, C), scale=1.0 / np.sqrt(C)),
                 b=randn(rng, (H,), scale=0.3) if bias else None,
                 x=randn(rng, (T, N, C)), h0=np.zeros((N, H)) if zero_h0 else randn(rng, (N, H), scale=0.5))
    v = {k: randn(rng, theta[k].shape) for k in MRNN_KEYS if theta[k] is not None}
    dx = randn(rng, (T, N, C)) if with_dx else None
    dh0 = randn(rng, (N, H)) if with_dh0 else None
    return theta, v, dx, dh0


def cast(d, dtype):
    return {k: None if a is None else a.astype(dtype) for k, a in d.items()}


def rnn_cache(theta, nonlinearity, dtype):
    th = cast(theta, dtype)
    return reference.rnn_forward(th["x"], th["h0"], *(th[k] for k in RNN_KEYS), nonlinearity=nonlinearity)[2]


def mrnn_cache(theta, dtype):
    th = cast(theta, dtype)
    return reference.mrnn_forward(th["x"], th["h0"], *(th[k] for k in MRNN_KEYS))[2]


def check_against_reference(rop_ref, rop_engine, cache64, cache32, v, dx, dh0):
    """float64: engine = reference to 1e-12; float32: engine's error <= 2x the float32 reference's."""
    want = rop_ref(cache64, v, dx, dh0)
    got = rop_engine(cache64, v, dx, dh0)
    assert got.dtype == np.float64 and got.shape == want.shape
    assert np.abs(want).max() > 0
    assert rel_err(got, want) <= 1e-12
    v32, dx32, dh032 = cast(v, np.float32), None if dx is None else dx.astype(np.float32), \
        None if dh0 is None else dh0.astype(np.float32)
    ref32 = rop_ref(cache32, v32, dx32, dh032)
    got32 = rop_engine(cache32, v32, dx32, dh032)
    assert got32.dtype == np.float32
    err_ref, err_engine = rel_err(ref32, want), rel_err(got32, want)
    assert 0 < err_ref < 1e-3
    # On the tiny shapes both errors are one or two roundings, and twice one rounding is no baseline:
    # the bound never goes below 2 float32 epsilons (relative to the largest element).
    assert err_engine <= max(2 * err_ref, 2 * np.finfo(np.float32).eps), (err_engine, err_ref)


# ---- equal to the reference ---------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_rnn_rop_engine_matches_reference(shape, options, nonlinearity):
    theta, v, dx, dh0 = rnn_case(shape, *options, seed=sum(shape), nonlinearity=nonlinearity)
    check_against_reference(reference.rnn_rop, rnn_rop_engine, rnn_cache(theta, nonlinearity, np.float64),
                            rnn_cache(theta, nonlinearity, np.float32), v, dx, dh0)


@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_mrnn_rop_engine_matches_reference(shape, options):
    theta, v, dx, dh0 = mrnn_case(shape, *options, seed=sum(shape) + 1)
    check_against_reference(reference.mrnn_rop, mrnn_rop_engine, mrnn_cache(theta, np.float64),
                            mrnn_cache(theta, np.float32), v, dx, dh0)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (5, 3, 2, 4, 3)])
def test_mrnn_rop_engine_recomputes_the_factors(shape):
    """Without FX, FH in the cache the engine recomputes f_x, f_h (also from h0 = None: zeros)."""
    theta, v, dx, dh0 = mrnn_case(shape, True, True, True, True, seed=11)
    cache = mrnn_cache(theta, np.float64)
    want = reference.mrnn_rop(cache, v, dx, dh0)
    bare = {k: a for k, a in cache.items() if k not in ("FX", "FH")}
    bare["h0"] = None
    assert rel_err(mrnn_rop_engine(bare, v, dx, dh0), want) <= 1e-12


def test_rnn_rop_engine_h0_none_and_partial_directions():
    theta, v, dx, dh0 = rnn_case((4, 3, 2, 5, 0), True, False, False, True, seed=12)
    cache = rnn_cache(theta, "tanh", np.float64)
    for keys in [(), ("W_hh",), ("b_hh",), ("W_ih", "b_ih")]:
        part = {k: v[k] for k in keys}
        want = reference.rnn_rop(cache, part)
        got = rnn_rop_engine(dict(cache, h0=None), part)
        if not keys:
            np.testing.assert_array_equal(got, np.zeros_like(want))
        else:
            assert rel_err(got, want) <= 1e-12


# ---- finite differences -------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (6, 3, 4, 5, 0), (3, 1, 2, 1, 0)])
def test_rnn_rop_engine_matches_finite_differences(shape, nonlinearity):
    theta, v, dx, dh0 = rnn_case(shape, True, True, True, False, seed=21, nonlinearity=nonlinearity)

    def run(th):
        return reference.rnn_forward(th["x"], th["h0"], *(th[k] for k in RNN_KEYS), nonlinearity=nonlinearity)[0]

    got = rnn_rop_engine(rnn_cache(theta, nonlinearity, np.float64), v, dx, dh0)
    want = fd_direction(run, theta, dict(v, x=dx, h0=dh0))
    assert np.abs(want).max() > 1e-3
    assert rel_err(got, want) <= 1e-7


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1), (6, 3, 4, 5, 4), (3, 2, 2, 1, 1)])
def test_mrnn_rop_engine_matches_finite_differences(shape, bias):
    theta, v, dx, dh0 = mrnn_case(shape, bias, True, True, False, seed=24)

    def run(th):
        return reference.mrnn_forward(th["x"], th["h0"], *(th[k] for k in MRNN_KEYS))[0]

    got = mrnn_rop_engine(mrnn_cache(theta, np.float64), v, dx, dh0)
    want = fd_direction(run, theta, dict(v, x=dx, h0=dh0))
    assert np.abs(want).max() > 1e-3
    assert rel_err(got, want) <= 1e-7


# ---- the reverse direction ------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["tanh", "relu", "mrnn"])
def test_rop_engine_reverse_equals_reference_on_flipped_time(cell):
    """reverse=True: the forward ran t = T-1 .. 0 from h0; arrays stay indexed by t."""
    shape = (5, 3, 2, 4, 3)
    if cell == "mrnn":
        theta, v, dx, dh0 = mrnn_case(shape, True, True, True, False, seed=31)
        flipped = dict(theta, x=theta["x"][::-1].copy())
        cache = mrnn_cache(flipped, np.float64)
        ref, engine = reference.mrnn_rop, mrnn_rop_engine
    else:
        theta, v, dx, dh0 = rnn_case(shape, True, True, True, False, seed=31, nonlinearity=cell)
        flipped = dict(theta, x=theta["x"][::-1].copy())
        cache = rnn_cache(flipped, cell, np.float64)
        ref, engine = reference.rnn_rop, rnn_rop_engine
    want = ref(cache, v, dx[::-1].copy(), dh0)[::-1]
    rev = dict(cache, x=theta["x"], y=cache["y"][::-1].copy())
    rev.pop("FX", None)  # the engine recomputes f_x, f_h in time order
    rev.pop("FH", None)
    assert rel_err(engine(rev, v, dx, dh0, reverse=True), want) <= 1e-12


# ---- SequenceModel (Hessian-free) ----------------------------------------------------------------
def sequence_model(kind, rop, batch_first, learned, dtype="float64"):
    C, H, K = 3, 5, 2
    if kind == "mrnn":
        rnn = rnnfast.MRNN(C, H, 4, dtype=dtype, batch_first=batch_first, learn_initial_state=learned, seed=4)
    else:
        rnn = rnnfast.RNN(C, H, nonlinearity=kind, dtype=dtype, batch_first=batch_first,
                          learn_initial_state=learned, seed=4)
    if learned:
        rnn.parameters()["h0"][...] = np.random.default_rng(9).uniform(-0.5, 0.5, (1, H))
    return SequenceModel(rnn, nn.Linear(H, K, dtype=dtype, seed=5), rop=rop)


@pytest.mark.parametrize("kind", ["tanh", "relu", "mrnn"])
@pytest.mark.parametrize("batch_first,learned", [(False, False), (True, True)])
def test_sequence_model_engine_rop_equals_reference_rop(kind, batch_first, learned):
    eng = sequence_model(kind, "engine", batch_first, learned)
    ref = sequence_model(kind, "reference", batch_first, learned)
    assert eng.rop_impl == "engine" and ref.rop_impl == "reference"
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 3))
    v = {k: rng.standard_normal(p.shape) for k, p in eng.parameters().items()}
    _, ce = eng.forward(x)
    _, cr = ref.forward(x)
    for _ in range(2):  # the second call reuses the cached f_x, f_h (MRNN)
        (oe, he), (orf, hr) = eng.rop(ce, v), ref.rop(cr, v)
        assert rel_err(oe, orf) <= 1e-12 and rel_err(he, hr) <= 1e-12


@pytest.mark.parametrize("kind", ["tanh", "mrnn"])
def test_curvature_product_engine_equals_reference(kind):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4, 3))
    y = rng.standard_normal((5, 4, 2))
    out = {}
    for rop in ("engine", "reference"):
        model = sequence_model(kind, rop, False, True)
        opt = optim.HessianFree(model, loss="mse", damping=0.5, structural_damping=0.3)
        v = {k: np.random.default_rng(3).standard_normal(p.shape) for k, p in model.parameters().items()}
        out[rop] = opt.curvature_product(x, y, v, damped=True)
    for k in out["engine"]:
        assert rel_err(out["engine"][k], out["reference"][k]) <= 1e-11


def test_sequence_model_rejects_unknown_rop():
    rnn = rnnfast.RNN(3, 5, dtype="float64")
    with pytest.raises(ValueError, match="rop must be one of"):
        SequenceModel(rnn, nn.Linear(5, 2, dtype="float64"), rop="numpy")


# ---- bad input ----------------------------------------------------------------------------------
@pytest.fixture
def rnn_setup():
    theta, v, dx, dh0 = rnn_case((3, 2, 4, 5, 0), False, True, True, False, seed=41)
    return rnn_cache(theta, "tanh", np.float64), v


def test_rnn_rop_engine_rejects_bad_input(rnn_setup):
    cache, v = rnn_setup
    with pytest.raises(ValueError, match="'W_hh'.*shape"):
        rnn_rop_engine(cache, {"W_hh": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="unknown keys"):
        rnn_rop_engine(cache, {"W_xx": np.zeros((5, 5))})
    with pytest.raises(ValueError, match="'b_ih'.*bias=False"):
        rnn_rop_engine(cache, {"b_ih": np.zeros(5)})
    with pytest.raises(TypeError, match="dict"):
        rnn_rop_engine(cache, [1, 2])
    with pytest.raises(ValueError, match="dx must have shape"):
        rnn_rop_engine(cache, v, dx=np.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match="dh0 must have shape"):
        rnn_rop_engine(cache, v, dh0=np.zeros((5,)))
    with pytest.raises(TypeError, match=r"cache\['W_hh'\] must have dtype float64, got float32"):
        rnn_rop_engine(dict(cache, W_hh=cache["W_hh"].astype(np.float32)), v)
    with pytest.raises(ValueError, match=r"cache\['W_ih'\] must have shape"):
        rnn_rop_engine(dict(cache, W_ih=cache["W_ih"].T), v)
    with pytest.raises(ValueError, match=r"cache\['y'\] must have shape"):
        rnn_rop_engine(dict(cache, y=cache["y"][:, :1]), v)
    with pytest.raises(ValueError, match=r"cache\['x'\] must be an array"):
        rnn_rop_engine(dict(cache, x=cache["x"][0]), v)
    with pytest.raises(TypeError, match=r"cache\['x'\] must be float32 or float64"):
        rnn_rop_engine(dict(cache, x=cache["x"].astype(np.int64)), v)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnn_rop_engine(dict(cache, nonlinearity="gelu"), v)
    with pytest.raises(KeyError, match="W_ih"):
        rnn_rop_engine({k: a for k, a in cache.items() if k != "W_ih"}, v)


def test_mrnn_rop_engine_rejects_bad_input():
    theta, v, dx, dh0 = mrnn_case((3, 2, 4, 5, 3), False, False, False, False, seed=42)
    cache = mrnn_cache(theta, np.float64)
    with pytest.raises(ValueError, match="'W_hf'.*shape"):
        mrnn_rop_engine(cache, {"W_hf": np.zeros((3, 5))})
    with pytest.raises(ValueError, match="'b'.*bias=False"):
        mrnn_rop_engine(cache, {"b": np.zeros(5)})
    with pytest.raises(ValueError, match="both 'FX' and 'FH'"):
        mrnn_rop_engine(dict(cache, FH=None), v)
    with pytest.raises(ValueError, match=r"cache\['FX'\] must have shape"):
        mrnn_rop_engine(dict(cache, FX=cache["FX"][:, :, :2]), v)
    with pytest.raises(ValueError, match=r"cache\['W_fh'\] must have shape \(F, H\)"):
        mrnn_rop_engine(dict(cache, W_fh=np.zeros((3, 4))), v)
    with pytest.raises(ValueError, match="dx must have shape"):
        mrnn_rop_engine(cache, v, dx=np.zeros((3, 2, 5)))


def test_bindings_check_their_arguments(rnn_setup):
    """The engine entry points re-check what the C++ relies on and name the argument."""
    cache, v = rnn_setup
    x, y, W_ih, W_hh = cache["x"], cache["y"], cache["W_ih"], cache["W_hh"]
    ry = np.empty_like(y)

    def call(**kw):
        args = dict(x=x, h0=None, y=y, w_ih=W_ih, w_hh=W_hh, v_ih=None, v_hh=None, v_b_ih=None, v_b_hh=None,
                    rx=None, rh0=None, ry=ry, nonlinearity="tanh", reverse=False)
        args.update(kw)
        _core.rnn_rop(**args)

    call()
    np.testing.assert_array_equal(ry, 0)
    with pytest.raises(ValueError, match="'ry' must have shape"):
        call(ry=np.empty((3, 2, 4)))
    readonly = np.empty_like(y)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="'ry' must be writable"):
        call(ry=readonly)
    with pytest.raises(ValueError, match="'v_hh' must have dtype float64"):
        call(v_hh=v["W_hh"].astype(np.float32))
    with pytest.raises(ValueError, match="'v_ih' must be C-contiguous"):
        call(v_ih=np.asfortranarray(np.ones((5, 4))))
    with pytest.raises(ValueError, match="'w_hh' must be square"):
        call(w_hh=np.zeros((5, 4)))
    with pytest.raises(ValueError, match="'nonlinearity'"):
        call(nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="'x' must have dtype float32 or float64"):
        call(x=x.astype(np.float16))
    with pytest.raises(ValueError, match="'rx' must have contiguous rows"):
        call(rx=np.ones((2, 3, 4)).transpose(1, 0, 2))

    theta, vm, _, _ = mrnn_case((3, 2, 4, 5, 3), True, False, False, False, seed=43)
    mc = mrnn_cache(theta, np.float64)
    work = np.empty(_core.mrnn_rop_workspace_size(3, 2, 3, True))
    margs = dict(x=mc["x"], h0=None, y=mc["y"], fx=mc["FX"], fh=mc["FH"], w_fx=mc["W_fx"], w_fh=mc["W_fh"],
                 w_hf=mc["W_hf"], w_hx=mc["W_hx"], v_fx=None, v_fh=None, v_hf=None, v_hx=None, v_b=vm["b"], rx=None,
                 rh0=None, ry=ry, work=work, reverse=False)
    _core.mrnn_rop(**margs)
    with pytest.raises(ValueError, match="'work' must have shape"):
        _core.mrnn_rop(**dict(margs, fx=None, fh=None))  # recomputing f_x, f_h needs the larger workspace
    with pytest.raises(ValueError, match="'fh' must be given together"):
        _core.mrnn_rop(**dict(margs, fh=None))
    with pytest.raises(ValueError, match="'w_hf' must have shape"):
        _core.mrnn_rop(**dict(margs, w_hf=mc["W_hf"].T.copy()))
    with pytest.raises(ValueError, match="steps, batch and factors"):
        _core.mrnn_rop_workspace_size(0, 2, 3, True)
