"""The validation matrix: every public entry point against every kind of bad (or unusual) argument.

Each row of the table is one call with one argument replaced, and one expectation:

* ``Raises(exc, name)``: a Python exception of that type whose message names the argument;
* ``SameAs(transform)``: a documented result, the same (dtype, shape and bits) as the call on
  ``transform(value)``: non-contiguous, Fortran-ordered, negatively strided, broadcast and read-only
  inputs give what their contiguous copy gives; integer inputs where the API documents a conversion give
  what the converted input gives. The input itself must come back unchanged.

Never a crash, a hang (every case runs under an alarm), a MemoryError from trying to allocate an absurd
size, or a silent cast of an output. Array arguments are expanded over ARRAY_KINDS (wrong ndim, size,
dtypes, Python types, a GPU-like array, NaN/Inf, empty, layouts); scalar arguments over SCALAR_KINDS.
tests/test_errors.py keeps its hand-written cases (the low-level _core calls, failure atomicity); this
table is the systematic sweep. The case count is printed at collection (``-s`` shows it) and asserted.

Problems in layers.py / _engines.py (owned elsewhere at the time of writing) are strict xfails: see the
reasons, which give the fix.
"""

import contextlib
import io
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import rnnfast
from rnnfast import checkpoint, datasets, diagnostics, init, losses, nn, optim
from rnnfast.esn import ESN, RidgeAccumulator, population_sweep, run_population
from rnnfast.esn import spectral_radius as esn_spectral_radius

T, N, C, H = 3, 2, 3, 4
RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------
# expectations
# ---------------------------------------------------------------------------------------------

class Raises:
    def __init__(self, exc, name):
        self.exc, self.name = exc, name

    def __repr__(self):
        return f"Raises({self.exc.__name__}, {self.name!r})"


class SameAs:
    """The call on value gives exactly what the call on transform(value) gives."""

    def __init__(self, transform=np.ascontiguousarray):
        self.transform = transform


class Check:
    """A documented result: check(result, value) asserts it."""

    def __init__(self, check):
        self.check = check


def _flatten(r):
    if isinstance(r, dict):
        return [x for k in sorted(r) for x in _flatten(r[k])]
    if isinstance(r, (tuple, list)):
        return [x for v in r for x in _flatten(v)]
    return [r]


def assert_same(a, b):
    fa, fb = _flatten(a), _flatten(b)
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
            assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, y.dtype, x.shape, y.shape)
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y or (x != x and y != y), (x, y)


def _snapshot(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    return None


# ---------------------------------------------------------------------------------------------
# the kinds of values
# ---------------------------------------------------------------------------------------------

class GpuLikeArray:
    """Stands for a CuPy/torch.cuda array: it has __cuda_array_interface__ and no NumPy buffer."""

    def __init__(self, shape):
        self.shape = shape
        self.__cuda_array_interface__ = {"shape": shape, "typestr": "<f4", "data": (0, False), "version": 3}


def _other_float(g):
    return g.astype(np.float64 if g.dtype == np.float32 else np.float32)


def _strided(g):
    wide = np.repeat(g, 2, axis=-1) if g.ndim else g
    return wide[..., ::2] if g.ndim else g


def _reversed_strides(g):
    return np.ascontiguousarray(g[::-1])[::-1] if g.ndim else g


def _read_only(g):
    r = g.copy()
    r.flags.writeable = False
    return r


def _with(g, value):
    b = g.copy()
    b.reshape(-1)[b.size // 2] = value
    return b


def _empty(g):
    return g[:0]


def _big_endian(g):
    return g.astype(g.dtype.newbyteorder(">"))


# kind -> (make bad value from the good one, default expectation kind)
ARRAY_KINDS = {
    "ndim-1": (lambda g: g[..., 0], "value"),
    "ndim+1": (lambda g: g[None], "value"),
    "last-size+1": (lambda g: np.concatenate([g, g[..., :1]], axis=-1), "value"),
    "int64": (lambda g: g.astype(np.int64), "type"),
    "int32": (lambda g: g.astype(np.int32), "type"),
    "float16": (lambda g: g.astype(np.float16), "type"),
    "other-float": (_other_float, "type"),
    "big-endian": (_big_endian, "type"),
    "complex": (lambda g: g.astype(np.complex64), "type"),
    "object": (lambda g: g.astype(object), "type"),
    "bool": (lambda g: g > 0, "type"),
    "str": (lambda g: "abc", "type"),
    "None": (lambda g: None, "type"),
    "list": (lambda g: g.tolist(), "type"),
    "py-float": (lambda g: 1.5, "type"),
    "gpu-like": (lambda g: GpuLikeArray(g.shape), "type"),
    "nan": (lambda g: _with(g, np.nan), "finite"),
    "inf": (lambda g: _with(g, np.inf), "finite"),
    "-inf": (lambda g: _with(g, -np.inf), "finite"),
    "empty": (_empty, "value"),
    # layouts: the same values, so the same result as the contiguous copy
    "strided": (_strided, "same"),
    "fortran": (np.asfortranarray, "same"),
    "neg-strides": (_reversed_strides, "same"),
    "broadcast": (lambda g: np.broadcast_to(g[:1], g.shape), "same"),
    "read-only": (_read_only, "same"),
}

INDEX_KINDS = {  # integer (index) arrays
    "ndim+1": (lambda g: g[None], "value"),
    "float": (lambda g: g.astype(np.float64), "type"),
    "bool": (lambda g: g > 0, "type"),
    "complex": (lambda g: g.astype(np.complex64), "type"),
    "object": (lambda g: g.astype(object), "type"),
    "str": (lambda g: "abc", "type"),
    "None": (lambda g: None, "type"),
    "list": (lambda g: g.tolist(), "type"),
    "py-int": (lambda g: 1, "type"),
    "gpu-like": (lambda g: GpuLikeArray(g.shape), "type"),
    "negative": (lambda g: _with(g, -1), "value"),
    "too-large": (lambda g: _with(g, 10**6), "value"),
    "int32": (lambda g: g.astype(np.int32), "same"),
    "uint8": (lambda g: g.astype(np.uint8), "same"),
    "strided": (_strided, "same"),
    "neg-strides": (_reversed_strides, "same"),
    "read-only": (_read_only, "same"),
}

CASES = []


def add(case_id, fn, expect, xfail=None, timeout=20):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    CASES.append(pytest.param(fn, expect, timeout, id=case_id, marks=marks))


def array_arg(entry, name, call, good, kinds=ARRAY_KINDS, override=None, skip=(), match=None, xfail=None):
    """Add one case per kind for argument `name` of `entry`; call(value) runs the entry point.

    override: kind -> expectation (documented behaviour that differs from the default); xfail:
    kind -> reason. The default: "value"/"finite" kinds -> ValueError, "type" -> TypeError, "same" ->
    SameAs(contiguous copy); every error must name the argument (`match`, default the name).
    """
    override, xfail = override or {}, xfail or {}
    pattern = match or rf"\b{name}\b"
    for kind, (make, default) in kinds.items():
        if kind in skip:
            continue
        expect = override.get(kind)
        if expect is None:
            expect = {"value": Raises(ValueError, pattern), "finite": Raises(ValueError, pattern),
                      "type": Raises(TypeError, pattern), "same": SameAs()}[default]

        def fn(make=make, expect=expect):
            value = make(good)
            before = _snapshot(value)
            if isinstance(expect, Check):
                expect.check(call(value), value)
                return None
            if isinstance(expect, SameAs):
                ref = call(expect.transform(value))
                got = call(value)
                assert_same(got, ref)
                if before is not None:
                    np.testing.assert_array_equal(value, before)  # inputs are never written
                return None
            return call(value)

        add(f"{entry}:{name}:{kind}", fn, expect, xfail=xfail.get(kind))


SCALAR_KINDS = {
    "str": ("abc", TypeError),
    "None": (None, TypeError),
    "complex": (1j, TypeError),
    "bool": (True, TypeError),
    "list": ([1], TypeError),
    "array": (np.ones(2), TypeError),
    "nan": (float("nan"), ValueError),
    "inf": (float("inf"), ValueError),
}


def scalar_arg(entry, name, call, kinds=SCALAR_KINDS, extra=(), skip=(), override=None, match=None,
               xfail=None):
    """One case per kind of bad scalar (plus `extra`: (kind, value, exc)) for argument `name`."""
    override, xfail = override or {}, xfail or {}
    pattern = match or rf"\b{name}\b"
    rows = [(k, v, e) for k, (v, e) in kinds.items() if k not in skip] + list(extra)
    for kind, value, exc in rows:
        expect = override.get(kind, Raises(exc, pattern))
        add(f"{entry}:{name}:{kind}", lambda value=value: call(value), expect, xfail=xfail.get(kind))


def x_of(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def astype(dt):
    return lambda v: np.asarray(v).astype(dt)


def dtype_is(dt):
    """Check: the result's arrays all have dtype dt (no silent cast of an output)."""
    def check(result, value):
        arrays = [a for a in _flatten(result) if isinstance(a, np.ndarray)]
        assert arrays and all(a.dtype == dt for a in arrays), [a.dtype for a in arrays]
    return Check(check)


# ---------------------------------------------------------------------------------------------
# recurrent layers: RNN, LSTM, GRU (bidirectional, so both directions are exercised)
# ---------------------------------------------------------------------------------------------

LAYERS = {"rnn": rnnfast.RNN, "lstm": rnnfast.LSTM, "gru": rnnfast.GRU}
D = 2


def make_layer(kind, **kw):
    return LAYERS[kind](C, H, bidirectional=True, seed=0, **kw)


def _hx(kind, h0, c0=None):
    if kind != "lstm":
        return h0
    return (h0, np.zeros((D, N, H), np.float32) if c0 is None else c0)


def _grads(layer):
    return {k: g.copy() for k, g in layer.grads.items()}


LOAD_SD_OVERRIDE = {  # load_state_dict converts floating arrays (a torch state dict's .numpy()) to the dtype
    "float16": SameAs(astype(np.float32)), "other-float": SameAs(astype(np.float32)),
    "big-endian": SameAs(astype(np.float32)), "list": SameAs(astype(np.float32)),
    "py-float": Raises(ValueError, "weight_hh_l0"),
}
ABSURD_LAYER = ("layers.py allocates every parameter before checking the total size: add "
                "`_checks.check_memory(n_params, 8, ...)` in _RecurrentLayer.__init__ before the allocation "
                "loop (n_params = sum over layers and directions of G*H*(in+H+2), a Python int), so the "
                "error is a ValueError naming input_size/hidden_size/num_layers, not a MemoryError or a hang")

for kind in LAYERS:
    x = x_of((T, N, C))
    h0 = x_of((D, N, H), seed=1)
    dy = x_of((T, N, D * H), seed=2)

    def fwd(v, kind=kind):
        layer = make_layer(kind)
        return layer(v)

    def fwd_h0(v, kind=kind, x=x):
        return make_layer(kind)(x, _hx(kind, v))

    def bwd_dy(v, kind=kind, x=x):
        layer = make_layer(kind)
        layer(x)
        return layer.backward(v), _grads(layer)

    def bwd_dh(v, kind=kind, x=x):
        layer = make_layer(kind)
        layer(x)
        return layer.backward(None, (v, None) if kind == "lstm" else v), _grads(layer)

    def load(v, kind=kind):
        layer = make_layer(kind)
        sd = layer.state_dict()
        sd["weight_hh_l0"] = v
        return layer.load_state_dict(sd).state_dict()

    def none_is_zeros(call, like):
        """Documented: None means zeros (a zero initial state, or no gradient on that output)."""
        return {"None": Check(lambda r, v, call=call, like=like: assert_same(r, call(np.zeros_like(like))))}

    array_arg(f"{kind}.forward", "x", fwd, x)
    array_arg(f"{kind}.forward", "h0", fwd_h0, h0,
              override=none_is_zeros(fwd_h0, h0) if kind != "lstm" else None)
    array_arg(f"{kind}.backward", "dy", bwd_dy, dy, override=none_is_zeros(bwd_dy, dy))
    array_arg(f"{kind}.backward", "dh_n", bwd_dh, h0, override=none_is_zeros(bwd_dh, h0))
    good_w = make_layer(kind).state_dict()["weight_hh_l0"] * 0.5
    array_arg(f"{kind}.load_state_dict", "weight_hh_l0", load, good_w, override=LOAD_SD_OVERRIDE,
              match="weight_hh_l0")
    if kind == "lstm":
        def fwd_c0(v, x=x, h0=h0):
            return make_layer("lstm")(x, (h0, v))

        def bwd_dc(v, x=x):
            layer = make_layer("lstm")
            layer(x)
            return layer.backward(None, (None, v)), _grads(layer)

        array_arg("lstm.forward", "c0", fwd_c0, h0)
        array_arg("lstm.backward", "dc_n", bwd_dc, h0, override=none_is_zeros(bwd_dc, h0))

    cls = LAYERS[kind]
    # absurd sizes, seeds and flags of the constructor (the rest is in test_errors.py)
    add(f"{kind}.init:hidden_size:absurd", lambda cls=cls: cls(C, 10**12), Raises(ValueError, "hidden_size"),
        xfail=ABSURD_LAYER)
    add(f"{kind}.init:input_size:absurd", lambda cls=cls: cls(10**12, H), Raises(ValueError, "input_size"),
        xfail=ABSURD_LAYER)
    add(f"{kind}.init:input_size:2**63", lambda cls=cls: cls(2**63, H), Raises(ValueError, "input_size"),
        xfail=ABSURD_LAYER + " (here numpy's 'Maximum allowed dimension exceeded' names nothing)")
    add(f"{kind}.init:num_layers:absurd", lambda cls=cls: cls(C, H, num_layers=10**9),
        Raises(ValueError, "num_layers"), timeout=2,
        xfail=ABSURD_LAYER + " (today: a Python loop over 10**9 layers, stopped by the case's alarm)")
    add(f"{kind}.init:seed:negative", lambda cls=cls: cls(C, H, seed=-1), Raises(ValueError, r"\bseed\b"),
        xfail="layers.py passes seed=-1 to numpy ('expected non-negative integer' names nothing): use "
              "`rng = np.random.default_rng(_checks.seed(seed))` in place of its own seed check")
    for bad, exc in (("abc", TypeError), (1.5, TypeError), (True, TypeError), ([1], TypeError)):
        add(f"{kind}.init:seed:{type(bad).__name__}", lambda cls=cls, bad=bad: cls(C, H, seed=bad),
            Raises(exc, r"\bseed\b"))
    add(f"{kind}.load_state_dict:strict:str", lambda kind=kind: make_layer(kind).load_state_dict(
        make_layer(kind).state_dict(), strict="no"), Raises(TypeError, "strict"))

    def load_into_read_only(kind=kind):
        layer = make_layer(kind)
        layer.parameters()["bias_hh_l0"].flags.writeable = False
        layer.load_state_dict(make_layer(kind).state_dict())

    add(f"{kind}.load_state_dict:read-only-parameter", load_into_read_only, Raises(ValueError, "bias_hh_l0"))

    def forward_read_only_params(kind=kind, x=x):  # documented: forward only reads the parameters
        layer = make_layer(kind)
        ref = layer(x)
        for p in layer.parameters().values():
            p.flags.writeable = False
        assert_same(layer(x), ref)

    add(f"{kind}.forward:parameters:read-only", forward_read_only_params, None)

    def zero_read_only_grads(kind=kind):
        layer = make_layer(kind)
        layer.grads["weight_ih_l0"].flags.writeable = False
        layer.zero_grad()

    add(f"{kind}.zero_grad:grads:read-only", zero_read_only_grads, Raises(ValueError, "weight_ih_l0"))
    add(f"{kind}.init:device:cuda-without-gpu", lambda cls=cls: cls(C, H, device="cuda"),
        Raises((RuntimeError, NotImplementedError), "cuda"))


# ---------------------------------------------------------------------------------------------
# echo state networks
# ---------------------------------------------------------------------------------------------

I_ESN, N_RES, O_ESN, B_ESN = 2, 8, 1, 3
U3 = x_of((4, B_ESN, I_ESN), np.float64, seed=3)   # (T, B, I): ndim-1 and ndim+1 are then errors
Y3 = x_of((4, B_ESN, O_ESN), np.float64, seed=4)
ESN_CONVERTS = {k: SameAs(astype(np.float64)) for k in ("int64", "int32", "float16", "other-float", "big-endian")}


def make_esn(fitted=False, **kw):
    e = ESN(I_ESN, N_RES, O_ESN, seed=0, density=0.5, **kw)
    if fitted:
        e.fit(U3, Y3)
        e.reset()
    return e


FITTED = make_esn(fitted=True)

array_arg("esn.run_reservoir", "u", lambda v: make_esn().run_reservoir(v), U3, override=ESN_CONVERTS)
array_arg("esn.predict", "u", lambda v: ESN.predict(_fresh_fitted(), v), U3, override=ESN_CONVERTS)
array_arg("esn.fit", "u", lambda v: make_esn().fit(v, Y3).W_out, U3, override=ESN_CONVERTS)
array_arg("esn.fit", "y", lambda v: make_esn().fit(U3, v).W_out, Y3, override=ESN_CONVERTS)
array_arg("esn.run_population", "u", lambda v: run_population(v, FITTED, spectral_radii=[0.5, 0.9]), U3,
          override=ESN_CONVERTS)
array_arg("esn.population_sweep", "u_train", lambda v: population_sweep(
    FITTED, v, Y3, U3, Y3, spectral_radii=[0.5, 0.9])["scores"], U3, override=ESN_CONVERTS)


def _fresh_fitted():
    e = make_esn()
    e.W_out, e.b_out = FITTED.W_out.copy(), FITTED.b_out.copy()
    return e


def _set_state(v):
    e = make_esn()
    e.state = v
    return e.state


array_arg("esn.state", "state", _set_state, x_of((B_ESN, N_RES), np.float64),
          override=dict(ESN_CONVERTS, list=SameAs(np.asarray)),
          skip=("py-float",))
add("esn.state:state:py-float", lambda: _set_state(1.5), Raises(ValueError, "state"))

FB = ESN(1, N_RES, 1, seed=0, feedback=True).fit(U3[:, :, :1], Y3)


def _generate_fb(v):
    e = ESN(1, N_RES, 1, seed=0, feedback=True)
    e.W_out, e.b_out = FB.W_out.copy(), FB.b_out.copy()
    return e.generate(4, inputs=v)


array_arg("esn.generate", "inputs", _generate_fb, x_of((4, B_ESN, 1), np.float64, seed=5),
          override=dict(ESN_CONVERTS, **{"ndim-1": Raises(ValueError, r"\binputs\b|\bu\b"),
                                         "empty": Raises(ValueError, "inputs"),
                                         "None": Raises(ValueError, "inputs"),  # needed when input_size > 0
                                         "list": Raises(TypeError, "inputs")}),
          match=r"\binputs\b|\bu\b")

# supplied matrices
W_GOOD = 0.2 * np.eye(N_RES) + 0.01
for name, good, shape_kw in (("W", W_GOOD, "W"), ("W_in", x_of((N_RES, I_ESN), np.float64), "W_in"),
                             ("bias", x_of((N_RES,), np.float64), "bias")):
    def build(v, name=name):
        e = ESN(I_ESN, N_RES, O_ESN, seed=0, **{name: v})
        return e.W if name == "W" else getattr(e, name)

    over = dict(ESN_CONVERTS, list=SameAs(np.asarray), broadcast=SameAs(),
                **{"None": Check(lambda r, v: None),  # documented: None generates the matrix
                   "py-float": Raises(ValueError, rf"\b{name}\b")})
    if name == "bias":  # documented: a scalar bias is broadcast to every unit
        over["py-float"] = Check(lambda r, v: np.testing.assert_array_equal(r, np.full(N_RES, 1.5)))
        over["ndim-1"] = Raises(ValueError, "bias")
    array_arg("esn.init", name, build, good, override=over, match=rf"\b{name}\b")


def _sparse_w(dtype):
    return lambda: ESN(I_ESN, N_RES, O_ESN, seed=0, W=sp.csr_matrix(W_GOOD.astype(dtype)))


for dt in (np.complex128, np.bool_):
    add(f"esn.init:W:sparse-{np.dtype(dt).name}", _sparse_w(dt), Raises(TypeError, r"\bW\b"))
add("esn.init:W:sparse-float32", lambda: np.testing.assert_array_equal(
    _sparse_w(np.float32)().W.toarray(), W_GOOD.astype(np.float32).astype(np.float64)), None)

# RidgeAccumulator and spectral radius
X_RA = x_of((5, N_RES), np.float64)


def _ridge_add_x(v):
    acc = RidgeAccumulator(N_RES, 1)
    acc.add(v, np.ones((5, 1)))
    return acc.solve(1e-3)


array_arg("RidgeAccumulator.add", "X", _ridge_add_x, X_RA,
          override=dict(ESN_CONVERTS, list=SameAs(np.asarray), **{"py-float": Raises(ValueError, r"\bX\b")}))
array_arg("esn.spectral_radius", "W", esn_spectral_radius, W_GOOD,
          override=dict(ESN_CONVERTS, list=SameAs(np.asarray), **{"py-float": Raises(ValueError, r"\bW\b")}))
add("esn.spectral_radius:W:sparse-complex", lambda: esn_spectral_radius(sp.csr_matrix(np.eye(3, dtype=complex))),
    Raises(TypeError, r"\bW\b"))

# scalar arguments of the constructor and the calls
ESN_SCALARS = {
    "spectral_radius": {},
    "leak_rate": {"list": Raises(ValueError, "leak_rate"), "array": Raises(ValueError, "leak_rate")},
    "input_scaling": {"list": Raises(ValueError, "input_scaling"), "array": SameAs(lambda v: v)},
    "bias_scaling": {},
    "density": {},
    "ridge": {"list": SameAs(lambda v: v), "array": SameAs(lambda v: v)},  # several ridges to choose from
    "feedback_scaling": {},
    "seed": {"None": SameAs(lambda v: v), "nan": Raises(TypeError, "seed"), "inf": Raises(TypeError, "seed")},
}


def _esn_kw(name):
    def call(v):
        e = ESN(I_ESN, N_RES, O_ESN, **{name: v})
        return e.W_in.shape
    return call


for name, over in ESN_SCALARS.items():
    scalar_arg("esn.init", name, _esn_kw(name), override=over,
               extra=[("negative", -1, ValueError)] + ([("zero", 0, ValueError)]
                                                      if name in ("spectral_radius", "density") else []))
for name, bad in (("input_size", 10**12), ("reservoir_size", 10**12), ("output_size", 10**12)):
    sizes = dict(dict(input_size=I_ESN, reservoir_size=N_RES, output_size=O_ESN), **{name: bad})
    add(f"esn.init:{name}:absurd", lambda sizes=sizes: ESN(sizes["input_size"], sizes["reservoir_size"],
                                                            sizes["output_size"]), Raises(ValueError, name))
add("esn.init:reservoir_size:absurd-sparse", lambda: ESN(1, 10**6, 1, density=0.1),
    Raises(ValueError, "reservoir_size"))
add("esn.init:dtype:float16", lambda: ESN(1, 4, 1, dtype="float16"), Raises(TypeError, "dtype"))
add("esn.init:device:cuda", lambda: ESN(1, 4, 1, device="cuda"), Raises(NotImplementedError, "cuda"))
add("esn.init:device:None", lambda: ESN(1, 4, 1, device=None), Raises(ValueError, "device"))
add("esn.init:W_fb:without-feedback", lambda: ESN(1, 4, 1, W_fb=np.ones((4, 1))), Raises(ValueError, "W_fb"))
add("RidgeAccumulator:n_features:absurd", lambda: RidgeAccumulator(10**12, 1), Raises(ValueError, "n_features"))
add("RidgeAccumulator:n_features:str", lambda: RidgeAccumulator("a", 1), Raises(TypeError, "n_features"))
add("RidgeAccumulator:n_outputs:negative", lambda: RidgeAccumulator(3, -1), Raises(ValueError, "n_outputs"))
def _ridge_solve(v):
    acc = RidgeAccumulator(N_RES, 1)
    acc.add(X_RA, np.ones((5, 1)))
    return acc.solve(v)


scalar_arg("RidgeAccumulator.solve", "ridge", _ridge_solve, extra=[("negative", -1.0, ValueError)])

scalar_arg("esn.fit", "washout", lambda v: make_esn().fit(U3, Y3, washout=v),
           override={"nan": Raises(TypeError, "washout"), "inf": Raises(TypeError, "washout")},
           extra=[("negative", -1, ValueError), ("float", 1.0, TypeError), ("absurd", 10**12, ValueError)])
scalar_arg("esn.fit", "ridge", lambda v: make_esn().fit(U3, Y3, ridge=v),
           override={"list": SameAs(lambda v: v), "array": Raises(ValueError, "validation"),
                     "None": SameAs(lambda v: v)},
           extra=[("negative", -1.0, ValueError)])
scalar_arg("esn.fit", "feedback_noise", lambda v: make_esn().fit(U3, Y3, feedback_noise=v),
           extra=[("without-feedback", 0.1, ValueError), ("negative", -0.1, ValueError)])
scalar_arg("esn.fit", "seed", lambda v: make_esn().fit(U3, Y3, seed=v),
           override={"None": SameAs(lambda v: v), "nan": Raises(TypeError, "seed"), "inf": Raises(TypeError, "seed")},
           extra=[("negative", -1, ValueError)])
add("esn.fit:validation:list", lambda: make_esn().fit(U3, Y3, validation=[U3, Y3]), Raises(TypeError, "validation"))
add("esn.fit:validation:mismatch", lambda: make_esn().fit(U3, Y3, validation=(U3, Y3[:2])),
    Raises(ValueError, "validation"))
scalar_arg("esn.generate", "n_steps", lambda v: _fresh_fitted().generate(v),
           override={"nan": Raises(TypeError, "n_steps"), "inf": Raises(TypeError, "n_steps")},
           extra=[("zero", 0, ValueError), ("float", 3.0, TypeError)])


def _gen_square(n):
    e = ESN(1, N_RES, 1, seed=0)
    e.W_out, e.b_out = np.ones((N_RES, 1)), np.zeros(1)
    return e.generate(n)


add("esn.generate:n_steps:absurd", lambda: _gen_square(10**12), Raises(ValueError, "n_steps"))
add("esn.predict:unfitted", lambda: make_esn().predict(U3), Raises(ValueError, "fit"))
add("esn.generate:unfitted", lambda: make_esn().generate(3), Raises(ValueError, "fit"))
add("esn.run_reservoir:y:without-feedback", lambda: make_esn().run_reservoir(U3, Y3), Raises(ValueError, r"\by\b"))
add("esn.run_reservoir:u:empty-list", lambda: make_esn().run_reservoir([]), Raises(ValueError, r"\bu\b"))
add("esn.run_reservoir:u:batch-after-other-batch", lambda: (lambda e: (e.run_reservoir(U3),
                                                                       e.run_reservoir(U3[:, :2])))(make_esn()),
    Raises(ValueError, "reset"))
for name in ("spectral_radii", "input_scalings", "leak_rates"):
    scalar_arg("esn.run_population", name, lambda v, name=name: run_population(U3, FITTED, **{name: v}),
               override={"None": SameAs(lambda v: v), "list": SameAs(lambda v: v),
                         "array": (SameAs(lambda v: v) if name != "leak_rates"
                                   else Raises(ValueError, "leak_rates"))},
               extra=[("empty-list", [], ValueError),
                      ("above-1", [1.5], ValueError) if name == "leak_rates" else ("zero", [0.0], ValueError)])
add("esn.run_population:esn:str", lambda: run_population(U3, "abc"), Raises(TypeError, "esn"))
add("esn.run_population:esn:feedback", lambda: run_population(U3[:, :, :1], FB), Raises(ValueError, "feedback"))
add("esn.run_population:lists:unequal", lambda: run_population(U3, FITTED, spectral_radii=[0.5, 0.9],
                                                               input_scalings=[1.0]),
    Raises(ValueError, "same length"))
add("esn.population_sweep:washout:absurd", lambda: population_sweep(FITTED, U3, Y3, U3, Y3, washout=10**6),
    Raises(ValueError, "washout"))


# ---------------------------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------------------------

class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds):
    """Stop a case that runs longer than `seconds` (a hang) with CaseTimeout, on the main thread."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def handler(signum, frame):
        raise CaseTimeout(f"the call ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_case_count():
    print(f"\nvalidation matrix: {len(CASES)} cases")
    assert len(CASES) >= 800


@pytest.mark.parametrize("fn,expect,timeout", CASES)
def test_validation_matrix(fn, expect, timeout):
    with alarm(timeout):
        if isinstance(expect, Raises):
            with pytest.raises(expect.exc, match=expect.name):
                fn()
        else:
            fn()
