"""The validation matrix: every public entry point against every kind of bad (or unusual) argument.

Each row of the table is one call with one argument replaced, and one expectation:

* ``Raises(exc, name)``: a Python exception of that type whose message names the argument;
* ``SameAs(transform)``: a documented result, the same (dtype, shape and bits) as the call on
  ``transform(value)``, which must be another value (a call is never compared with itself):
  non-contiguous, Fortran-ordered, negatively strided, broadcast and read-only inputs give what their
  contiguous, writable copy gives; integer inputs where the API documents a conversion give what the
  converted input gives; None where it documents a default gives what that default gives. The input
  itself must come back unchanged.
* ``Check(check)``: a documented result that is not another call's: check(result, value) compares it
  with an oracle (a closed form, the definition the docstring gives, an independent computation).

Array and scalar arguments both go through `_documented`, which evaluates SameAs and Check.

Never a crash, a hang, a MemoryError from trying to allocate an absurd size, or a silent cast of an
output. Every case runs under an alarm (SIGALRM), which stops a Python loop but not a call stuck in C or
C++ (the handler only runs when control returns to the interpreter); so the hang-prone cases (absurd
sizes: what hangs or exhausts memory when a guard is missing) run in a worker process that is killed when
a case outlives its timeout. Array arguments are expanded over ARRAY_KINDS (wrong ndim, size,
dtypes, Python types, a GPU-like array, NaN/Inf, empty, layouts); scalar arguments over SCALAR_KINDS.
tests/validation/test_errors.py keeps its hand-written cases (the low-level _core calls, failure atomicity); this
table is the systematic sweep. The case count is printed at collection (``-s`` shows it) and asserted.

A problem that cannot be fixed at once is added as a strict xfail whose reason gives the fix (none now:
the layers' absurd sizes and negative seeds, the last ones, are fixed).
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


def _copy(v):
    """A C-contiguous, writable copy: what a layout or read-only variant must give the same result as."""
    return np.array(v, order="C", copy=True)


class SameAs:
    """The call on value gives exactly what the call on transform(value) gives."""

    def __init__(self, transform=_copy):
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
BY_ID = {}   # case id -> (fn, expect, timeout): what the isolation worker runs
HANG_PRONE = ("absurd", "2**63", "(1000000, 1000000)", "=1000000000")  # ids of absurd sizes


def add(case_id, fn, expect, xfail=None, timeout=20, isolate=None):
    """isolate: run in the worker process (default: the hang-prone ids, HANG_PRONE)."""
    if isolate is None:
        isolate = any(k in case_id for k in HANG_PRONE)
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    assert case_id not in BY_ID, case_id
    BY_ID[case_id] = (fn, expect, timeout)
    CASES.append(pytest.param(case_id, fn, expect, timeout, isolate, id=case_id, marks=marks))


def _documented(call, value, expect, before=None, updated_in_place=False):
    """Evaluate a SameAs or Check expectation of call(value) (the other expectations: just call it)."""
    if isinstance(expect, Check):
        expect.check(call(value), value)
        return None
    if isinstance(expect, SameAs):
        other = expect.transform(value)
        assert other is not value, "SameAs must compare with the call on another value, not the call itself"
        ref = call(other)
        got = call(value)
        assert_same(got, ref)
        if before is not None and not updated_in_place:
            np.testing.assert_array_equal(value, before)  # inputs are never written
        return None
    return call(value)


def array_arg(entry, name, call, good, kinds=ARRAY_KINDS, override=None, skip=(), match=None, xfail=None,
              updated_in_place=False):
    """Add one case per kind for argument `name` of `entry`; call(value) runs the entry point.

    override: kind -> expectation (documented behaviour that differs from the default); xfail:
    kind -> reason. The default: "value"/"finite" kinds -> ValueError, "type" -> TypeError, "same" ->
    SameAs(contiguous copy); every error must name the argument (`match`, default the name). Inputs must
    come back unchanged, except an argument the entry point documents as `updated_in_place` (a parameter
    that an optimizer steps).
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
            return _documented(call, value, expect, _snapshot(value), updated_in_place)

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
    """One case per kind of bad scalar (plus `extra`: (kind, value, exc)) for argument `name`; override:
    kind -> expectation (a documented result: SameAs or Check, evaluated as for arrays)."""
    override, xfail = override or {}, xfail or {}
    pattern = match or rf"\b{name}\b"
    rows = [(k, v, e) for k, (v, e) in kinds.items() if k not in skip] + list(extra)
    for kind, value, exc in rows:
        expect = override.get(kind, Raises(exc, pattern))
        add(f"{entry}:{name}:{kind}", lambda value=value, expect=expect: _documented(call, value, expect), expect,
            xfail=xfail.get(kind))


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
    add(f"{kind}.init:hidden_size:absurd", lambda cls=cls: cls(C, 10**12), Raises(ValueError, "hidden_size"))
    add(f"{kind}.init:input_size:absurd", lambda cls=cls: cls(10**12, H), Raises(ValueError, "input_size"))
    add(f"{kind}.init:input_size:2**63", lambda cls=cls: cls(2**63, H), Raises(ValueError, "input_size"))
    add(f"{kind}.init:num_layers:absurd", lambda cls=cls: cls(C, H, num_layers=10**9),
        Raises(ValueError, "num_layers"), timeout=2)
    add(f"{kind}.init:seed:negative", lambda cls=cls: cls(C, H, seed=-1), Raises(ValueError, r"\bseed\b"))
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

    # variable lengths (forward and backward), dropout, zoneout, proj_size (issue 17)
    def fwd_len(v, kind=kind, x=x, dy=dy):
        layer = make_layer(kind)
        out = layer(x, lengths=v)
        return out, layer.backward(dy), _grads(layer)

    array_arg(f"{kind}.forward", "lengths", fwd_len, np.array([T, 2]), kinds=INDEX_KINDS,
              override={"None": SameAs(lambda v: np.full(N, T)), "list": SameAs(np.asarray)})
    scalar_arg(f"{kind}.init", "dropout", lambda v, cls=cls: cls(C, H, num_layers=2, dropout=v),
               extra=(("one", 1.0, ValueError), ("negative", -0.1, ValueError)))
    if kind != "rnn":
        scalar_arg(f"{kind}.init", "zoneout", lambda v, cls=cls: cls(C, H, zoneout=v),
                   extra=(("one", 1.0, ValueError), ("negative", -0.1, ValueError)))
    else:
        add("rnn.init:zoneout:not-lstm-gru", lambda: rnnfast.RNN(C, H, zoneout=0.1), Raises(ValueError, "zoneout"))
    if kind == "lstm":
        scalar_arg("lstm.init", "proj_size", lambda v: rnnfast.LSTM(C, H, proj_size=v),
                   override={"nan": Raises(TypeError, "proj_size"), "inf": Raises(TypeError, "proj_size")},
                   extra=(("hidden_size", H, ValueError), ("negative", -1, ValueError), ("float", 2.0, TypeError)))
    else:
        add(f"{kind}.init:proj_size:not-lstm", lambda cls=cls: cls(C, H, proj_size=2), Raises(ValueError, "proj_size"))


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


FITTED = make_esn(fitted=True)  # its readout only: each case runs on a fresh ESN (_fresh_fitted)

array_arg("esn.run_reservoir", "u", lambda v: make_esn().run_reservoir(v), U3, override=ESN_CONVERTS)
array_arg("esn.predict", "u", lambda v: ESN.predict(_fresh_fitted(), v), U3, override=ESN_CONVERTS)
array_arg("esn.fit", "u", lambda v: make_esn().fit(v, Y3).W_out, U3, override=ESN_CONVERTS)
array_arg("esn.fit", "y", lambda v: make_esn().fit(U3, v).W_out, Y3, override=ESN_CONVERTS)
array_arg("esn.run_population", "u", lambda v: run_population(v, _fresh_fitted(), spectral_radii=[0.5, 0.9]), U3,
          override=ESN_CONVERTS)
array_arg("esn.population_sweep", "u_train", lambda v: population_sweep(
    _fresh_fitted(), v, Y3, U3, Y3, spectral_radii=[0.5, 0.9])["scores"], U3, override=ESN_CONVERTS)


# from_state / reset / stateful (reservoirpy's): the start state is checked like `state`; None starts from the
# carried state (zeros for a new ESN); a single (N,) state is every sequence's
array_arg("esn.run_reservoir", "from_state", lambda v: make_esn().run_reservoir(U3, from_state=v, stateful=False),
          x_of((B_ESN, N_RES), np.float64, seed=6),
          override=dict(ESN_CONVERTS, list=SameAs(np.asarray), **{
              "None": SameAs(lambda v: np.zeros((B_ESN, N_RES))),
              "py-float": Raises(ValueError, "from_state"), "str": Raises(TypeError, "from_state"),
              "gpu-like": Raises(TypeError, "from_state")}))
add("esn.run_reservoir:from_state:one-state", lambda: assert_same(
    make_esn().run_reservoir(U3, from_state=np.full(N_RES, 0.1), stateful=False),
    make_esn().run_reservoir(U3, from_state=np.full((B_ESN, N_RES), 0.1), stateful=False)), None)
add("esn.predict:from_state+reset", lambda: _fresh_fitted().predict(U3, from_state=np.zeros(N_RES), reset=True),
    Raises(ValueError, "from_state"))
for name in ("reset", "stateful"):
    scalar_arg("esn.predict", name, lambda v, name=name: _fresh_fitted().predict(U3, **{name: v}),
               # True: a new ESN's state is zeros, so reset=True and stateful=True predict what the other value does
               override={"bool": SameAs(lambda v: not v)}, skip=("nan", "inf"),
               extra=[("int", 1, TypeError), ("nan", float("nan"), TypeError)])


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


def _fresh_fb():
    e = ESN(1, N_RES, 1, seed=0, feedback=True)
    e.W_out, e.b_out = FB.W_out.copy(), FB.b_out.copy()
    return e


def _generate_fb(v):
    return _fresh_fb().generate(4, inputs=v)


array_arg("esn.generate", "inputs", _generate_fb, x_of((4, B_ESN, 1), np.float64, seed=5),
          override=dict(ESN_CONVERTS, **{"ndim-1": Raises(ValueError, r"\binputs\b|\bu\b"),
                                         "empty": Raises(ValueError, "inputs"),
                                         "None": Raises(ValueError, "inputs"),  # needed when input_size > 0
                                         "list": Raises(TypeError, "inputs")}),
          match=r"\binputs\b|\bu\b")

# supplied matrices
W_GOOD = 0.2 * np.eye(N_RES) + 0.01
for name, good, _shape_kw in (("W", W_GOOD, "W"), ("W_in", x_of((N_RES, I_ESN), np.float64), "W_in"),
                             ("bias", x_of((N_RES,), np.float64), "bias")):
    def build(v, name=name):
        e = ESN(I_ESN, N_RES, O_ESN, seed=0, **{name: v})
        return e.W if name == "W" else getattr(e, name)

    def generated(r, v, name=name):  # documented: None generates the matrix, as when it is not passed
        want = getattr(ESN(I_ESN, N_RES, O_ESN, seed=0), name)
        assert_same(_dense(r), _dense(want))

    over = dict(ESN_CONVERTS, list=SameAs(np.asarray), broadcast=SameAs(),
                **{"None": Check(generated), "py-float": Raises(ValueError, rf"\b{name}\b")})
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
def _dense(W):
    return W.toarray() if sp.issparse(W) else W


def _fresh_random_esn(r, v):
    """seed=None: fresh randomness, with the documented distributions: W_in in U(-1, 1) (input_scaling 1),
    W scaled to spectral radius 0.9 (the default), and not the matrices of a seeded ESN."""
    W_in, W, bias = r
    assert np.all(np.abs(W_in) <= 1) and not np.array_equal(W_in, ESN(I_ESN, N_RES, O_ESN, seed=0).W_in)
    assert abs(np.max(np.abs(np.linalg.eigvals(W))) - 0.9) < 1e-9 and not np.any(bias)


ESN_SCALARS = {
    "spectral_radius": {},
    "leak_rate": {"list": Raises(ValueError, "leak_rate"), "array": Raises(ValueError, "leak_rate")},
    # one scale per input, all 1: the matrices of the scalar 1
    "input_scaling": {"list": Raises(ValueError, "input_scaling"), "array": SameAs(lambda v: 1.0)},
    "bias_scaling": {},
    "density": {},
    # ridges to choose from by validation in fit: [1] and [1, 1] choose what ridge=1 gives
    "ridge": {"list": SameAs(lambda v: 1.0), "array": SameAs(lambda v: 1.0)},
    "feedback_scaling": {},
    "seed": {"None": Check(_fresh_random_esn), "nan": Raises(TypeError, "seed"), "inf": Raises(TypeError, "seed")},
}


def _esn_kw(name):
    def call(v):
        kw = {"seed": 0, "density": 0.5}  # (an 8-unit reservoir at density 0.1 may have no cycle: radius 0)
        kw[name] = v
        e = ESN(I_ESN, N_RES, O_ESN, **kw)
        if name == "ridge":  # what a ridge changes: the readout fit chooses (validation: for lists)
            e.fit(U3, Y3, validation=(U3, Y3))
            return e.W_out, e.b_out
        return e.W_in, _dense(e.W), e.bias
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
add("esn.init:device:cuda-without-gpu", lambda: ESN(1, 4, 1, device="cuda"), Raises(RuntimeError, "cuda"))
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
def _readout(e):
    return e.W_out, e.b_out


scalar_arg("esn.fit", "ridge", lambda v: _readout(make_esn().fit(U3, Y3, ridge=v)),
           override={"list": SameAs(lambda v: v[0]),              # one value to choose from: that value
                     "array": Raises(ValueError, "validation"),
                     "None": SameAs(lambda v: make_esn().ridge)},  # None: the ESN's own ridge
           extra=[("negative", -1.0, ValueError)])
scalar_arg("esn.fit", "feedback_noise", lambda v: make_esn().fit(U3, Y3, feedback_noise=v),
           extra=[("without-feedback", 0.1, ValueError), ("negative", -0.1, ValueError)])
scalar_arg("esn.fit", "seed", lambda v: _readout(make_esn().fit(U3, Y3, seed=v)),
           # the seed only seeds feedback noise: without feedback every seed (None too) fits the same readout
           override={"None": SameAs(lambda v: 0), "nan": Raises(TypeError, "seed"), "inf": Raises(TypeError, "seed")},
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
def _members_like(**config):
    """Check: every member's states are those of an ESN built alone with `config` (FITTED's matrices and
    seed otherwise), run from zeros (documented; the scaling of W differs by a rounding)."""
    def check(r, v):
        alone = make_esn(**config).run_reservoir(U3)
        assert r.shape[0] >= 1
        for member in r:
            np.testing.assert_allclose(member, alone, rtol=1e-12, atol=1e-14)
    return Check(check)


# None: the ESN's own value; [1] / [1, 1]: one / two members with the value 1 (the ESN's own input scaling
# and leak rate, and a spectral radius of 1 instead of 0.9)
POPULATION_ONE = {"spectral_radii": dict(spectral_radius=1.0), "input_scalings": {}, "leak_rates": {}}
for name in ("spectral_radii", "input_scalings", "leak_rates"):
    scalar_arg("esn.run_population", name, lambda v, name=name: run_population(U3, _fresh_fitted(), **{name: v}),
               override={"None": _members_like(), "list": _members_like(**POPULATION_ONE[name]),
                         "array": (_members_like(**POPULATION_ONE[name]) if name != "leak_rates"
                                   else Raises(ValueError, "leak_rates"))},
               extra=[("empty-list", [], ValueError),
                      ("above-1", [1.5], ValueError) if name == "leak_rates" else ("zero", [0.0], ValueError)])
add("esn.run_population:esn:str", lambda: run_population(U3, "abc"), Raises(TypeError, "esn"))
add("esn.run_population:esn:feedback", lambda: run_population(U3[:, :, :1], _fresh_fb()),
    Raises(ValueError, "feedback"))
add("esn.run_population:lists:unequal", lambda: run_population(U3, _fresh_fitted(), spectral_radii=[0.5, 0.9],
                                                               input_scalings=[1.0]),
    Raises(ValueError, "same length"))
add("esn.population_sweep:washout:absurd", lambda: population_sweep(_fresh_fitted(), U3, Y3, U3, Y3, washout=10**6),
    Raises(ValueError, "washout"))


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------

K = 5
LOGITS = x_of((T, N, K))
TARGETS = np.random.default_rng(6).integers(0, K, (T, N))
MASK = np.abs(x_of((T, N), seed=7)) + 0.1

array_arg("softmax_cross_entropy", "logits", lambda v: losses.softmax_cross_entropy(v, TARGETS), LOGITS,
          override={"other-float": dtype_is(np.float64),          # float32 and float64 both taken, kept
                    "last-size+1": dtype_is(np.float32)})         # one more class is still valid
array_arg("softmax_cross_entropy", "targets", lambda v: losses.softmax_cross_entropy(LOGITS, v), TARGETS,
          kinds=INDEX_KINDS)
MASK_CONVERTS = {k: SameAs(astype(np.float32)) for k in ("float16", "other-float", "big-endian", "bool")}
array_arg("softmax_cross_entropy", "mask", lambda v: losses.softmax_cross_entropy(LOGITS, TARGETS, v), MASK,
          override=dict(MASK_CONVERTS, **{"None": Check(lambda r, v: assert_same(
              r, losses.softmax_cross_entropy(LOGITS, TARGETS)))}))
array_arg("mse", "target", lambda v: losses.mse(LOGITS, v), LOGITS)
array_arg("mse", "mask", lambda v: losses.mse(LOGITS, LOGITS * 0, v), np.abs(LOGITS) + 0.1,
          override=dict(MASK_CONVERTS, **{"None": Check(lambda r, v: assert_same(r, losses.mse(LOGITS, LOGITS * 0))),
                                          "ndim-1": dtype_is(np.float32)}))  # documented: a per-position mask
add("softmax_cross_entropy:logits:no-classes", lambda: losses.softmax_cross_entropy(
    np.zeros((T, N, 0), np.float32), TARGETS), Raises(ValueError, "logits"))
add("softmax_cross_entropy:mask:all-masked", lambda: losses.softmax_cross_entropy(
    LOGITS, TARGETS, np.zeros((T, N), bool)), Raises(ValueError, "mask"))
for name in ("T", "N"):
    scalar_arg("target_mask", name, lambda v, name=name: losses.target_mask(**dict(dict(T=3, N=2), **{name: v})),
               override={"nan": Raises(TypeError, name), "inf": Raises(TypeError, name)},
               extra=[("zero", 0, ValueError), ("float", 3.0, TypeError)], match=rf"\b{name}\b")
add("target_mask:T,N:absurd", lambda: losses.target_mask(10**12, 10**6), Raises(ValueError, "T="))
for spec, exc in ((("last", 0), ValueError), (("last", 4), ValueError), (("last", 1.0), TypeError),
                  ("first", ValueError), (None, ValueError), (("first", 1), ValueError)):
    add(f"target_mask:spec:{spec!r}", lambda spec=spec: losses.target_mask(3, 2, spec), Raises(exc, "spec"))


# ---------------------------------------------------------------------------------------------
# nn modules
# ---------------------------------------------------------------------------------------------

def _fresh_init(module, seeded):
    """seed=None: fresh randomness in the documented ranges (Linear: U(-1/sqrt(in), 1/sqrt(in)), PyTorch's;
    Embedding: N(0, 1)), and not a seeded module's values."""
    for name, p in module.parameters().items():
        assert np.isfinite(p).all() and not np.array_equal(p, seeded.parameters()[name]), name
        if isinstance(module, nn.Linear):
            assert np.all(np.abs(p) <= 1 / np.sqrt(module.in_features)), name


def _linear(v):
    lin = nn.Linear(C, 2, seed=0)
    return lin(v)


def _linear_backward(v):
    lin = nn.Linear(C, 2, seed=0)
    lin(x_of((T, N, C)))
    return lin.backward(v), {k: g.copy() for k, g in lin.grads.items()}


array_arg("Linear.forward", "x", _linear, x_of((T, N, C)),
          override={"ndim+1": dtype_is(np.float32), "empty": dtype_is(np.float32)})  # any leading dims
array_arg("Linear.backward", "dy", _linear_backward, x_of((T, N, 2)))
IDX = np.random.default_rng(8).integers(0, 5, (T, N))


def _embedding(v):
    return nn.Embedding(5, 3, seed=0)(v)


def _embedding_backward(v):
    emb = nn.Embedding(5, 3, seed=0)
    emb(IDX)
    emb.backward(v)
    return emb.grads["weight"].copy()


array_arg("Embedding.forward", "idx", _embedding, IDX, kinds=INDEX_KINDS,
          override={"ndim+1": dtype_is(np.float32)})
array_arg("Embedding.backward", "dy", _embedding_backward, x_of((T, N, 3)))
array_arg("one_hot", "idx", lambda v: nn.one_hot(v, 5), IDX, kinds=INDEX_KINDS,
          override={"ndim+1": dtype_is(np.float32)})
def _cond():
    return nn.Conditioned(rnnfast.RNN(C + 2, H, seed=0), cond_size=2)


array_arg("Conditioned.forward", "v", lambda v: _cond()(x_of((T, N, C)), v), x_of((N, 2)))
for cls, args, names in ((nn.Linear, (C, 2), ("in_features", "out_features")),
                         (nn.Embedding, (5, 3), ("num_embeddings", "embedding_dim"))):
    for i, name in enumerate(names):
        def build(v, cls=cls, args=args, i=i):
            a = list(args)
            a[i] = v
            return cls(*a)

        scalar_arg(f"{cls.__name__}.init", name, build,
                   override={"nan": Raises(TypeError, name), "inf": Raises(TypeError, name)},
                   extra=[("zero", 0, ValueError), ("float", 3.0, TypeError), ("absurd", 10**12, ValueError)])
    scalar_arg(f"{cls.__name__}.init", "seed", lambda v, cls=cls, args=args: cls(*args, seed=v),
               override={"None": Check(lambda r, v, cls=cls, args=args: _fresh_init(r, cls(*args, seed=0))),
                         "nan": Raises(TypeError, "seed"), "inf": Raises(TypeError, "seed")},
               extra=[("negative", -1, ValueError)])
scalar_arg("one_hot", "num_classes", lambda v: nn.one_hot(IDX, v),
           override={"nan": Raises(TypeError, "num_classes"), "inf": Raises(TypeError, "num_classes")},
           extra=[("zero", 0, ValueError), ("absurd", 10**12, ValueError)])
add("ParameterDict:arrays:list", lambda: nn.ParameterDict([1, 2]), Raises(TypeError, "arrays"))
add("ModuleDict:modules:list", lambda: nn.ModuleDict([1]), Raises(TypeError, "modules"))
add("ModuleDict:modules:str-module", lambda: nn.ModuleDict(a="abc"), Raises(TypeError, "'a'"))
add("Conditioned:layer:str", lambda: nn.Conditioned("abc", 2), Raises(TypeError, "layer"))
add("Conditioned:cond_size:too-large", lambda: nn.Conditioned(rnnfast.RNN(3, 2), 3), Raises(ValueError, "cond_size"))


# ---------------------------------------------------------------------------------------------
# optimizers and clipping
# ---------------------------------------------------------------------------------------------

OPTIMIZERS = {"SGD": dict(lr=0.1, momentum=0.5), "RMSprop": dict(lr=0.1), "Adagrad": dict(lr=0.1),
              "Adam": dict(lr=0.1)}
W_PARAM = x_of((3, 4))


def _step(opt_name, p):
    module = nn.ParameterDict(w=p)
    module.grads["w"][...] = 0.5
    opt = getattr(optim, opt_name)(module, **OPTIMIZERS[opt_name])
    opt.step()
    opt.step()
    return p.copy() if isinstance(p, np.ndarray) else None


READ_ONLY_PARAM = Raises(ValueError, r"'w'.*read-only")
for opt_name, _hp in OPTIMIZERS.items():
    # the parameter array itself (updated in place: a strided view is updated like its contiguous copy)
    array_arg(f"{opt_name}.step", "w", lambda v, o=opt_name: _step(o, v), W_PARAM,
              override={"other-float": dtype_is(np.float64), "read-only": READ_ONLY_PARAM,
                        "broadcast": READ_ONLY_PARAM, "fortran": SameAs(), "empty": dtype_is(np.float32),
                        "ndim-1": dtype_is(np.float32), "ndim+1": dtype_is(np.float32),
                        "last-size+1": dtype_is(np.float32)},
              skip=("nan", "inf", "-inf"), match=r"'w'", updated_in_place=True)
    names = list(OPTIMIZERS[opt_name]) + {"SGD": ["dampening", "weight_decay"],
                                          "RMSprop": ["alpha", "eps", "momentum", "weight_decay"],
                                          "Adagrad": ["lr_decay", "eps", "weight_decay",
                                                      "initial_accumulator_value"],
                                          "Adam": ["eps", "weight_decay"]}[opt_name]
    for name in names:
        def build(v, o=opt_name, name=name):
            return getattr(optim, o)(nn.Linear(2, 2, seed=0), **dict(OPTIMIZERS[o], **{name: v}))

        scalar_arg(f"{opt_name}", name, build, extra=[("negative", -1.0, ValueError)],
                   override={"array": Raises(TypeError, name)})
    add(f"{opt_name}:params:str", lambda o=opt_name: getattr(optim, o)("abc", lr=0.1), Raises(TypeError, "params"))
    add(f"{opt_name}:params:empty", lambda o=opt_name: getattr(optim, o)([], lr=0.1), Raises(ValueError, "params"))
    add(f"{opt_name}.load_state_dict:state_dict:str", lambda o=opt_name: getattr(optim, o)(
        nn.Linear(2, 2), lr=0.1).load_state_dict("abc"), Raises(TypeError, "state_dict"))
    add(f"{opt_name}.load_state_dict:buffer:None", lambda o=opt_name: getattr(optim, o)(
        nn.Linear(2, 2), lr=0.1).load_state_dict({f"state.weight.{getattr(optim, o)._buffers[0]}": None}),
        Raises(TypeError, "state.weight"))


def _made_read_only_after_binding():
    module = nn.ParameterDict(w=x_of((2, 2)))
    opt = optim.SGD(module, lr=0.1)
    module.parameters()["w"].flags.writeable = False
    opt.step()


add("SGD.step:w:read-only-after-binding", _made_read_only_after_binding, READ_ONLY_PARAM)
add("Adam:betas:str", lambda: optim.Adam(nn.Linear(2, 2), betas="ab"), Raises(TypeError, "betas"))
add("Adam:betas:one", lambda: optim.Adam(nn.Linear(2, 2), betas=(0.9,)), Raises(TypeError, "betas"))
add("Adam:betas:above-1", lambda: optim.Adam(nn.Linear(2, 2), betas=(0.9, 1.0)), Raises(ValueError, "betas"))
add("SGD:nesterov:str", lambda: optim.SGD(nn.Linear(2, 2), lr=0.1, nesterov="yes"), Raises(TypeError, "nesterov"))
scalar_arg("clip_grad_norm_", "max_norm", lambda v: optim.clip_grad_norm_(nn.Linear(2, 2), v),
           extra=[("negative", -1.0, ValueError)], override={"array": Raises(TypeError, "max_norm")})
for bad in (1, "inf", None, True, 3.0):
    add(f"clip_grad_norm_:norm_type:{bad!r}", lambda bad=bad: optim.clip_grad_norm_(nn.Linear(2, 2), 1.0, bad),
        Raises(ValueError, "norm_type"))
add("clip_grad_norm_:error_if_nonfinite:str", lambda: optim.clip_grad_norm_(
    nn.Linear(2, 2), 1.0, error_if_nonfinite="no"), Raises(TypeError, "error_if_nonfinite"))
scalar_arg("clip_grad_value_", "clip_value", lambda v: optim.clip_grad_value_(nn.Linear(2, 2), v),
           extra=[("zero", 0.0, ValueError)], override={"array": Raises(TypeError, "clip_value")})
for fn_name, fn in (("clip_grad_norm_", lambda m: optim.clip_grad_norm_(m, 1e-3)),
                    ("clip_grad_value_", lambda m: optim.clip_grad_value_(m, 1e-3))):
    add(f"{fn_name}:params:None", lambda fn=fn: fn(None), Raises(TypeError, "params"))

    def read_only_grad(fn=fn):
        m = nn.Linear(2, 2, seed=0)
        m.grads["weight"][...] = 5
        m.grads["weight"].flags.writeable = False
        fn(m)

    add(f"{fn_name}:grads:read-only", read_only_grad, Raises(ValueError, r"grads\['weight'\].*read-only"))


# ---------------------------------------------------------------------------------------------
# init and diagnostics
# ---------------------------------------------------------------------------------------------

def _radius_2x2(W):
    """max |eigenvalue| of a 2x2 matrix in closed form: tr/2 +- sqrt(tr^2/4 - det)."""
    tr, det = W[0, 0] + W[1, 1], W[0, 0] * W[1, 1] - W[0, 1] * W[1, 0]
    root = np.sqrt(complex(tr * tr / 4 - det))
    return float(max(abs(tr / 2 + root), abs(tr / 2 - root)))


def _scaled_like_native(r, v):
    """A big-endian W comes back in its own type (float64; NumPy's arithmetic gives native byte order), with
    the values of the native-order W's result."""
    assert r.dtype == v.dtype.newbyteorder("="), (r.dtype, v.dtype)
    np.testing.assert_array_equal(r.astype(np.float64), init.scale_to_spectral_radius(v.astype(np.float64), 0.9))


def _esn_blocks_15_per_unit(layer, v):
    """Every gate block of weight_hh_l0 (H = 4 rows): min(H, 15) nonzeros per row, spectral radius 1.1."""
    W = layer.parameters()["weight_hh_l0"]
    for g in range(4):
        block = W[4 * g:4 * (g + 1)].astype(np.float64)
        assert np.all(np.count_nonzero(block, axis=1) == 4), block
        np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(block))), 1.1, rtol=1e-5)


def _biases_untouched(layer, v):
    before = rnnfast.LSTM(2, 4, seed=0).parameters()
    for name, p in layer.parameters().items():
        if name.startswith("bias"):
            np.testing.assert_array_equal(p, before[name])


W_SQ = np.array([[0.5, 0.2], [-0.1, 0.4]])
INT_OK = {"int64": SameAs(astype(np.float64)), "int32": SameAs(astype(np.float64))}
array_arg("init.spectral_radius", "W", init.spectral_radius, W_SQ,  # the ESN's too: array-likes are read
          override=dict(INT_OK, list=SameAs(np.asarray), **{"py-float": Raises(ValueError, r"\bW\b")},
                        **{k: SameAs(astype(np.float64))  # computed in float64 on the host
                           for k in ("float16", "other-float", "big-endian")}))
array_arg("init.scale_to_spectral_radius", "W", lambda v: init.scale_to_spectral_radius(v, 0.9), W_SQ,
          override={"float16": dtype_is(np.float16), "other-float": dtype_is(np.float32),
                    "big-endian": Check(_scaled_like_native)})  # documented: a new array of W's dtype
scalar_arg("init.spectral_radius", "iters", lambda v: init.spectral_radius(W_SQ, iters=v),
           override={"nan": Raises(TypeError, "iters"), "inf": Raises(TypeError, "iters")},
           extra=[("zero", 0, ValueError)])
scalar_arg("init.spectral_radius", "seed", lambda v: init.spectral_radius(W_SQ, seed=v),
           override={"None": Check(lambda r, v: np.testing.assert_allclose(r, _radius_2x2(W_SQ), rtol=1e-12)),
                     "nan": Raises(TypeError, "seed"), "inf": Raises(TypeError, "seed")},
           extra=[("negative", -1, ValueError)])
add("init.spectral_radius:method:str", lambda: init.spectral_radius(W_SQ, method="x"), Raises(ValueError, "method"))
scalar_arg("init.scale_to_spectral_radius", "rho", lambda v: init.scale_to_spectral_radius(W_SQ, v),
           extra=[("zero", 0.0, ValueError)], override={"array": Raises(TypeError, "rho"),
                                                        "nan": Raises(ValueError, "rho")})
scalar_arg("init.orthogonal", "gain", lambda v: init.orthogonal((3, 3), gain=v))
scalar_arg("init.orthogonal", "rng", lambda v: init.orthogonal((3, 3), rng=v),
           override={"None": Check(lambda r, v: np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-6)),
                     "nan": Raises(TypeError, "rng"), "inf": Raises(TypeError, "rng")},
           extra=[("negative", -1, ValueError)])
for shape, exc in ((3, ValueError), ((3,), ValueError), ((0, 3), ValueError), (("a", 3), TypeError),
                   ((10**6, 10**6), ValueError), (None, ValueError)):
    add(f"init.orthogonal:shape:{shape!r}", lambda shape=shape: init.orthogonal(shape), Raises(exc, "shape"))
add("init.orthogonal:dtype:float16", lambda: init.orthogonal((2, 2), dtype="float16"), Raises(TypeError, "dtype"))
for name, extra in (("spectral_radius", [("zero", 0.0, ValueError)]), ("density", [("above-1", 2.0, ValueError)]),
                    ("input_scale", [("negative", -1.0, ValueError)]), ("bias", []),
                    ("seed", [("negative", -1, ValueError)])):
    over = {"array": Raises(TypeError, name)}
    if name in ("density", "bias"):  # documented: None = 15 connections per unit / leave the biases
        over["None"] = Check(_esn_blocks_15_per_unit if name == "density" else _biases_untouched)
    if name in ("spectral_radius", "density", "input_scale"):
        over["nan"] = Raises(ValueError, name)
    if name == "seed":  # fresh randomness, the documented structure (radius 1.1: the default)
        over.update({"None": Check(_esn_blocks_15_per_unit), "nan": Raises(TypeError, name),
                     "inf": Raises(TypeError, name)})
    scalar_arg("init.init_recurrent_esn", name,
               lambda v, name=name: init.init_recurrent_esn(rnnfast.LSTM(2, 4, seed=0), **{name: v}),
               override=over, extra=extra)
for fn_name, fn in (("init.init_recurrent_esn", init.init_recurrent_esn),
                   ("init.recurrent_blocks", init.recurrent_blocks),
                    ("diagnostics.recurrent_spectral_radius", diagnostics.recurrent_spectral_radius)):
    add(f"{fn_name}:layer:str", lambda fn=fn: fn("abc"), Raises(TypeError, "layer"))
    add(f"{fn_name}:layer:Linear", lambda fn=fn: fn(nn.Linear(2, 2)), Raises(ValueError, "recurrent"))
def _diag_layer():
    return rnnfast.GRU(C, H, seed=0)


array_arg("diagnostics.gradient_norms_per_step", "x", lambda v: diagnostics.gradient_norms_per_step(_diag_layer(), v),
          x_of((T, N, C)))
array_arg("diagnostics.gradient_norms_per_step", "direction", lambda v: diagnostics.gradient_norms_per_step(
    _diag_layer(), x_of((T, N, C)), direction=v), x_of((N, H)),
    override={"None": SameAs(lambda v: np.ones((N, H), np.float32))})  # documented: None = all ones
add("diagnostics.gradient_norms_per_step:layer:str",
    lambda: diagnostics.gradient_norms_per_step("abc", x_of((T, N, C))),
    Raises(TypeError, "layer"))


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------

def _mackey_glass_constant_history(r, v):
    """Without a seed the history is x0 = 1.2 on [-tau, 0]; for t < tau the delayed term is then the constant
    c = a x0 / (1 + x0^n), and dx/dt = c - b x has the closed form x(t) = c/b + (x0 - c/b) exp(-b t).
    Sample k is x((k + 1) h) (h = 1); RK4 with dt = 0.1 matches it to ~1e-9."""
    x0, a, b, n = 1.2, 0.2, 0.1, 10
    c = a * x0 / (1 + x0 ** n)
    t = np.arange(1, 6)
    np.testing.assert_allclose(r[:, 0], c / b + (x0 - c / b) * np.exp(-b * t), rtol=0, atol=1e-8)


def _narma_recurrence(r, v):
    """Fresh inputs u ~ U(0, 0.5), and y by the documented recurrence (order 10, zero history)."""
    u, y = r[0][:, 0], r[1][:, 0]
    assert np.all((u >= 0) & (u <= 0.5))
    ys = [0.0] * 10
    for t in range(len(u)):
        u_lag = u[t - 9] if t >= 9 else 0.0
        ys.append(0.3 * ys[-1] + 0.05 * ys[-1] * sum(ys[-10:]) + 1.5 * u_lag * u[t] + 0.1)
    np.testing.assert_allclose(y, ys[10:], rtol=1e-12)


def _sine_of_the_phase(r, v):
    """u holds frequencies in [1/40, 1/10]; y = sin(2 pi cumsum(u)) (documented)."""
    u, y = r[0][:, 0], r[1][:, 0]
    assert np.all((u >= 1 / 40 - 1e-12) & (u <= 1 / 10 + 1e-12))
    np.testing.assert_allclose(y, np.sin(2 * np.pi * np.cumsum(u)), atol=1e-12)


DATASET_ORACLES = {"mackey_glass": _mackey_glass_constant_history, "narma": _narma_recurrence,
                   "sine_frequency": _sine_of_the_phase}
Y_TRUE = x_of((6, 2), np.float64)
NRMSE_OVER = {k: SameAs(astype(np.float64)) for k in ("int64", "int32", "float16", "other-float", "big-endian")}
NRMSE_OVER.update({"list": SameAs(np.asarray), "py-float": Raises(ValueError, "y_pred")})
array_arg("datasets.nrmse", "y_pred", lambda v: datasets.nrmse(Y_TRUE, v), Y_TRUE + 0.1, override=NRMSE_OVER)
add("datasets.nrmse:y_true:empty-list", lambda: datasets.nrmse([], []), Raises(ValueError, "y_true"))
add("datasets.nrmse:norm:str", lambda: datasets.nrmse(Y_TRUE, Y_TRUE, norm="max"), Raises(ValueError, "norm"))
for fn_name, fn in (("mackey_glass", datasets.mackey_glass), ("narma", datasets.narma),
                    ("sine_frequency", datasets.sine_frequency)):
    scalar_arg(f"datasets.{fn_name}", "n_steps", lambda v, fn=fn: fn(v),
               override={"nan": Raises(TypeError, "n_steps"), "inf": Raises(TypeError, "n_steps")},
               extra=[("zero", 0, ValueError), ("float", 5.0, TypeError), ("absurd", 10**12, ValueError)])
    scalar_arg(f"datasets.{fn_name}", "seed", lambda v, fn=fn: fn(5, seed=v),
               override={"None": Check(DATASET_ORACLES[fn_name]), "nan": Raises(TypeError, "seed"),
                         "inf": Raises(TypeError, "seed")},
               extra=[("negative", -1, ValueError)])
for name in ("tau", "h", "dt", "a", "x0"):
    scalar_arg("datasets.mackey_glass", name, lambda v, name=name: datasets.mackey_glass(5, **{name: v}),
               skip=("list",), override={"array": Raises(TypeError, name)})
scalar_arg("datasets.mackey_glass", "discard", lambda v: datasets.mackey_glass(5, discard=v),
           override={"nan": Raises(TypeError, "discard"), "inf": Raises(TypeError, "discard")},
           extra=[("negative", -1, ValueError), ("absurd", 10**12, ValueError)])
add("datasets.mackey_glass:dt:absurd", lambda: datasets.mackey_glass(10, dt=1e-12, h=1.0, tau=1.0),
    Raises(ValueError, "dt"))
for hold, exc in (((5, 5), ValueError), ((0, 3), ValueError), (None, TypeError), ((1.5, 3), TypeError),
                  ("ab", TypeError)):
    add(f"datasets.sine_frequency:hold:{hold!r}", lambda hold=hold: datasets.sine_frequency(10, hold=hold),
        Raises(exc, "hold"))
for name in ("f_min", "f_max"):
    scalar_arg("datasets.sine_frequency", name, lambda v, name=name: datasets.sine_frequency(10, **{name: v}),
               skip=("list",), override={"array": Raises(TypeError, name)})
add("datasets.narma:order:zero", lambda: datasets.narma(10, order=0), Raises(ValueError, "order"))


# ---------------------------------------------------------------------------------------------
# checkpoints and the command line
# ---------------------------------------------------------------------------------------------

_TMPDIRS = []  # made by the running case; evaluate() removes them when it ends


def _tmpdir():
    import tempfile
    path = tempfile.mkdtemp(prefix="rnnfast-matrix-")
    _TMPDIRS.append(path)
    return path


for bad in (None, 3, ["a"], 1.5):
    add(f"checkpoint.load:path:{type(bad).__name__}", lambda bad=bad: checkpoint.load(bad), Raises(TypeError, "path"))
    add(f"checkpoint.save:path:{type(bad).__name__}", lambda bad=bad: checkpoint.save(bad, {}, {}),
        Raises(TypeError, "path"))
add("checkpoint.load:path:directory", lambda: checkpoint.load(_tmpdir()),
    Raises(checkpoint.CheckpointError, "checkpoint"))
add("checkpoint.save:arrays:None", lambda: checkpoint.save(os.path.join(_tmpdir(), "c.npz"), {}, None),
    Raises(TypeError, "arrays"))
add("checkpoint.save:arrays:object", lambda: checkpoint.save(os.path.join(_tmpdir(), "c.npz"), {},
                                                             {"a": np.array([None, 1], object)}),
    Raises(TypeError, r"arrays\['a'\]"))
add("checkpoint.save:meta:object", lambda: checkpoint.save(os.path.join(_tmpdir(), "c.npz"), {"a": object()}, {}),
    Raises(TypeError, "JSON serializable"))


def _header_file(header_bytes):
    path = os.path.join(_tmpdir(), "c.npz")
    np.savez(path, __header__=np.frombuffer(header_bytes, np.uint8))
    return path


add("checkpoint.load:header:no-meta", lambda: checkpoint.load(_header_file(
    b'{"format": "rnnfast-checkpoint", "version": 1}')), Raises(checkpoint.CheckpointError, "meta"))
add("checkpoint.load:header:list", lambda: checkpoint.load(_header_file(b"[1, 2]")),
    Raises(checkpoint.CheckpointError, "not an rnnfast checkpoint"))
add("checkpoint.load:header:binary", lambda: checkpoint.load(_header_file(b"\xff\xfe\x00")),
    Raises(checkpoint.CheckpointError, "corrupted"))


def _text_file():
    path = os.path.join(_tmpdir(), "t.txt")
    words = ["the", "quick", "fox", "dog", "runs"]
    with open(path, "w", encoding="utf-8") as f:
        f.write(" ".join(np.random.default_rng(0).choice(words, 600)) + "\n")
    return path


CLI_TINY = ["--cell", "gru", "--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch", "2", "--steps", "2",
            "--no-progress", "--val-every", "0", "--sample-every", "0", "--save-every", "0"]


def run_cli(argv):
    """(exit status, stderr) of `rnnfast ...` run in-process through its main()."""
    from rnnfast.__main__ import main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


class CliError:
    """Exit status != 0 and exactly one line `error: ...` on stderr that names `name` (no traceback)."""

    def __init__(self, name):
        self.name = name


def cli_case(case_id, argv_fn, name):
    def fn():
        code, err = run_cli(argv_fn())
        assert code not in (0, None), (code, err)
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
        assert name in err, err
    add(f"cli:{case_id}", fn, None, timeout=60)


for flag, value in (("--hidden", "1000000000000"), ("--layers", "1000000000"), ("--seed", "-1"), ("--seed", "1.5"),
                    ("--hidden", "0"), ("--hidden", "abc"), ("--steps", "-1"), ("--batch", "0"), ("--lr", "nan"),
                    ("--lr", "inf"), ("--clip", "-1"), ("--momentum", "nan"), ("--encoding", "nonsense"),
                    ("--seq-len", "1000000000000"), ("--batch", "1000000000000"), ("--val-every", "-1")):
    cli_case(f"train:{flag}={value}", lambda flag=flag, value=value: [
        "char", "train", "--text", _text_file(), "--out", os.path.join(_tmpdir(), "o"), *CLI_TINY, flag, value],
        flag if flag != "--layers" else "--layers")
cli_case("train:--out-is-a-file", lambda: ["char", "train", "--text", _text_file(), "--out", _text_file(), *CLI_TINY],
         "--out")
cli_case("train:--text-missing", lambda: ["char", "train", "--text", os.path.join(_tmpdir(), "nope.txt"),
                                          "--out", os.path.join(_tmpdir(), "o"), *CLI_TINY], "--text")
def _trained_run():
    """A run directory trained now, for this case alone (removed with the case's temporary folders)."""
    out = os.path.join(_tmpdir(), "run")
    code, err = run_cli(["char", "train", "--text", _text_file(), "--out", out, *CLI_TINY])
    assert code == 0, err
    return out


for flag, value in (("--seed", "-1"), ("--length", "-1"), ("--temperature", "0"), ("--temperature", "nan"),
                    ("--temperature", "-1"), ("--length", "abc")):
    cli_case(f"sample:{flag}={value}", lambda flag=flag, value=value: ["char", "sample", _trained_run(), flag, value],
             flag)
cli_case("sample:dir-missing", lambda: ["char", "sample", os.path.join(_tmpdir(), "nope")], "no such directory")


def _sample_greedy():
    """A tiny temperature is greedy sampling (it used to compute inf - inf = NaN probabilities)."""
    run = _trained_run()
    code, err = run_cli(["char", "sample", run, "--temperature", "1e-300", "--length", "20",
                         "--seed", "0", "--prime", "the"])
    assert code == 0, err
    from rnnfast import char
    meta, model = char.load_checkpoint(run)
    vocab = meta["vocab"]
    idx = model.sample(char.encode_text("the", vocab).tolist(), 20, 1e-300, np.random.default_rng(0))
    greedy, state = [], model.initial_state(1)
    model.train(False)
    x = char.encode_text("the", vocab).astype(np.int64)[:, None]
    for _ in range(20):
        logits, state = model.forward(x, state)
        greedy.append(int(np.argmax(logits[-1, 0])))
        x = np.array([[greedy[-1]]])
    assert idx == greedy


add("cli:sample:--temperature=1e-300", _sample_greedy, None, timeout=60)


def _subprocess_absurd_hidden():
    """End to end: the absurd size is refused before allocating, as one line, in a fresh process."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(rnnfast.__file__))))
    r = subprocess.run([sys.executable, "-m", "rnnfast", "char", "train", "--text", _text_file(), "--out",
                        os.path.join(_tmpdir(), "o"), *CLI_TINY, "--hidden", "1000000000000"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "--hidden" in r.stderr


add("cli:subprocess:--hidden=absurd", _subprocess_absurd_hidden, None, timeout=90, isolate=False)  # its own process


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


def evaluate(fn, expect, timeout):
    """Run one case under the alarm and check its expectation (raises on a failure); the temporary folders
    the case made are removed."""
    try:
        with alarm(timeout):
            if isinstance(expect, Raises):
                with pytest.raises(expect.exc, match=expect.name):
                    fn()
            else:
                fn()
    finally:
        import shutil
        while _TMPDIRS:
            shutil.rmtree(_TMPDIRS.pop(), ignore_errors=True)


class IsolationWorker:
    """A process that runs cases by id (this file, run as a script with --worker): a case that outlives its
    timeout there is stopped by killing the process, whatever it is stuck in; the next case starts a new one.
    """

    STARTUP_S = 180  # importing rnnfast and building the table

    def __init__(self):
        self.proc = None
        self.log = None

    def _start(self):
        import tempfile
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        if self._reply(self.STARTUP_S) != {"ready": True}:
            raise RuntimeError(f"the isolation worker did not start: {self._log_tail()}")

    def _reply(self, seconds):
        import json
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], seconds)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"died": self.proc.wait()}

    def _log_tail(self):
        self.log.seek(0)
        return self.log.read()[-2000:]

    def run(self, case_id, timeout, _id_table="cases"):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(f"{_id_table} {case_id}\n")
        self.proc.stdin.flush()
        reply = self._reply(timeout + max(2.0, timeout / 4))  # the worker's own alarm first, then the kill
        if reply is None:
            self.close()
            raise CaseTimeout(f"the case ran longer than {timeout} s in the isolation worker (killed)")
        if "died" in reply:
            tail = self._log_tail()
            self.close()
            raise AssertionError(f"the isolation worker died (status {reply['died']}): {tail}")
        if not reply["ok"]:
            raise AssertionError(f"in the isolation worker: {reply['error']}")

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


def _worker_main():
    """The isolation worker: `TABLE CASE_ID` lines in, one JSON line out per case ({"ok", "error"})."""
    import json
    import warnings
    warnings.simplefilter("error")           # as pytest's filterwarnings = error
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                            # what the cases print goes to stderr, not into the replies
    sys.stdout = sys.stderr
    proto.write(json.dumps({"ready": True}) + "\n")
    tables = {"cases": BY_ID, "self-test": SELF_TEST}
    for line in sys.stdin:
        table, case_id = line.rstrip("\n").split(" ", 1)
        fn, expect, timeout = tables[table][case_id]
        try:
            evaluate(fn, expect, timeout)
            reply = {"ok": True}
        except BaseException as e:  # pytest.fail's Failed is a BaseException
            if isinstance(e, KeyboardInterrupt):
                raise
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        proto.write(json.dumps(reply) + "\n")


def _hang_in_c():
    """A hang the alarm cannot stop: SIGALRM blocked, as it is in effect for a thread stuck in C++."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    import time
    time.sleep(600)


SELF_TEST = {"hang": (_hang_in_c, None, 1), "ok": (lambda: None, None, 5)}


@pytest.fixture(scope="module")
def isolation():
    worker = IsolationWorker()
    yield worker
    worker.close()


def test_case_count():
    print(f"\nvalidation matrix: {len(CASES)} cases, {sum(p.values[4] for p in CASES)} of them in the isolation "
          "worker")
    assert len(CASES) >= 2000


def test_isolation_stops_a_hang_the_alarm_cannot(isolation):
    import time
    t0 = time.monotonic()
    with pytest.raises(CaseTimeout, match="killed"):
        isolation.run("hang", 1, _id_table="self-test")
    assert time.monotonic() - t0 < 60
    isolation.run("ok", 5, _id_table="self-test")  # a new worker takes the next case


@pytest.mark.parametrize("case_id,fn,expect,timeout,isolate", CASES)
def test_validation_matrix(request, case_id, fn, expect, timeout, isolate):
    if isolate:
        request.getfixturevalue("isolation").run(case_id, timeout)
    else:
        evaluate(fn, expect, timeout)


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    _worker_main()
