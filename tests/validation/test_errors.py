"""Bad arguments raise ValueError / TypeError / RuntimeError whose message names the argument.

Covers forward and backward inputs, state dicts, constructor arguments, and the low-level
rnnfast._core entry points (which must raise ValueError, never crash).
"""

import numpy as np
import pytest

import rnnfast
from rnnfast import _core

C, H = 3, 4


def layers(dtype="float32", **kw):
    return [rnnfast.RNN(C, H, dtype=dtype, **kw), rnnfast.LSTM(C, H, dtype=dtype, **kw),
            rnnfast.GRU(C, H, dtype=dtype, **kw)]


LAYER_IDS = ["rnn", "lstm", "gru"]


def hx_for(layer, h0, c0=None):
    if isinstance(layer, rnnfast.LSTM):
        return (h0, h0.copy() if c0 is None else c0)
    return h0


@pytest.fixture(params=[0, 1, 2], ids=LAYER_IDS)
def layer(request):
    return layers(num_layers=2, bidirectional=True)[request.param]


def x_ok(T=3, N=2, dtype=np.float32):
    return np.random.default_rng(0).standard_normal((T, N, C)).astype(dtype)


def h_ok(N=2, dtype=np.float32):
    return np.zeros((4, N, H), dtype)  # num_layers=2 * bidirectional


# ---------------------------------------------------------------------------------------------
# forward inputs
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3,), (3, 2, 2, C), (), (1, 3, 2, C, 1)])
def test_x_wrong_ndim(layer, shape):
    with pytest.raises(ValueError, match=r"\bx\b"):
        layer(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(3, 2, C + 1), (3, 2, 1), (3, C - 1)])
def test_x_wrong_input_size(layer, shape):
    with pytest.raises(ValueError, match=r"\bx\b"):
        layer(np.zeros(shape, np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.int32, np.complex64, bool])
def test_x_wrong_dtype(layer, dtype):
    with pytest.raises(TypeError, match=r"\bx\b.*dtype"):
        layer(np.zeros((3, 2, C), dtype))


def test_x_float32_into_float64_layer():
    for lay in layers("float64"):
        with pytest.raises(TypeError, match=r"\bx\b.*float64"):
            lay(np.zeros((3, 2, C), np.float32))


@pytest.mark.parametrize("x", [[[[0.0] * C] * 2] * 3, ((0.0,) * C,) * 3, 1.0, None, "abc"],
                         ids=["list", "tuple", "float", "None", "str"])
def test_x_not_an_array(layer, x):
    with pytest.raises(TypeError, match=r"\bx\b.*numpy.ndarray"):
        layer(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_x_not_finite(layer, bad):
    x = x_ok()
    x[1, 0, 2] = bad
    with pytest.raises(ValueError, match=r"\bx\b.*NaN or Inf"):
        layer(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_h0_not_finite(layer, bad):
    h0 = h_ok()
    h0[3, 1, 0] = bad
    with pytest.raises(ValueError, match=r"\bh0\b.*NaN or Inf"):
        layer(x_ok(), hx_for(layer, h0, h_ok()))


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_c0_not_finite(bad):
    lstm = layers(num_layers=2, bidirectional=True)[1]
    c0 = h_ok()
    c0[0, 0, 3] = bad
    with pytest.raises(ValueError, match=r"\bc0\b.*NaN or Inf"):
        lstm(x_ok(), (h_ok(), c0))


@pytest.mark.parametrize("shape", [(4, 3, H), (2, 2, H), (4, 2, H + 1), (4, 2), (2, H),
                                   (4, 2, H, 1)])
def test_h0_wrong_shape(layer, shape):
    h0 = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=r"\bh0\b"):
        layer(x_ok(), hx_for(layer, h0, h_ok()))


@pytest.mark.parametrize("shape", [(4, 3, H), (2, 2, H), (4, 2, H + 1), (4, H)])
def test_c0_wrong_shape(shape):
    lstm = layers(num_layers=2, bidirectional=True)[1]
    with pytest.raises(ValueError, match=r"\bc0\b"):
        lstm(x_ok(), (h_ok(), np.zeros(shape, np.float32)))


def test_h0_wrong_dtype_or_type(layer):
    with pytest.raises(TypeError, match=r"\bh0\b"):
        layer(x_ok(), hx_for(layer, h_ok(dtype=np.float64), h_ok()))
    with pytest.raises(TypeError, match=r"\bh0\b"):
        layer(x_ok(), hx_for(layer, h_ok().tolist(), h_ok()))


def test_c0_wrong_dtype():
    lstm = layers(num_layers=2, bidirectional=True)[1]
    with pytest.raises(TypeError, match=r"\bc0\b"):
        lstm(x_ok(), (h_ok(), h_ok(dtype=np.float64)))


def test_unbatched_state_shape():
    """Unbatched x takes 2-D states (L*D, H); batched x takes 3-D ones."""
    for lay in layers(num_layers=2, bidirectional=True):
        with pytest.raises(ValueError, match=r"\bh0\b"):
            lay(x_ok()[:, 0], hx_for(lay, h_ok()))
        with pytest.raises(ValueError, match=r"\bh0\b"):
            lay(x_ok(), hx_for(lay, h_ok()[:, 0]))


@pytest.mark.parametrize("hx", [np.zeros((4, 2, H), np.float32), [np.zeros((4, 2, H), np.float32)],
                                (np.zeros((4, 2, H), np.float32),) * 3],
                         ids=["array", "one-list", "three-tuple"])
def test_lstm_hx_not_a_pair(hx):
    lstm = rnnfast.LSTM(C, H, num_layers=2, bidirectional=True)
    with pytest.raises(TypeError, match=r"\bhx\b"):
        lstm(x_ok(), hx)


@pytest.mark.parametrize("T,N", [(0, 2), (3, 0), (0, 0)])
def test_empty_sequences(layer, T, N):
    with pytest.raises(ValueError, match=r"\bx\b"):
        layer(np.zeros((T, N, C), np.float32))


def test_empty_sequences_batch_first_and_unbatched():
    for lay in layers(batch_first=True):
        with pytest.raises(ValueError, match=r"\bx\b"):
            lay(np.zeros((0, 3, C), np.float32))  # N = 0
        with pytest.raises(ValueError, match=r"\bx\b"):
            lay(np.zeros((2, 0, C), np.float32))  # T = 0
        with pytest.raises(ValueError, match=r"\bx\b"):
            lay(np.zeros((0, C), np.float32))  # unbatched, T = 0


# ---------------------------------------------------------------------------------------------
# backward inputs
# ---------------------------------------------------------------------------------------------

def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.zeros((3, 2, 2 * H), np.float32))


def _forwarded(layer):
    layer(x_ok())
    return layer


@pytest.mark.parametrize("shape", [(3, 2, H), (2, 3, 2 * H), (3, 1, 2 * H), (3, 2 * H),
                                   (3, 2, 2 * H, 1)])
def test_dy_wrong_shape(layer, shape):
    _forwarded(layer)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        layer.backward(np.zeros(shape, np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_dy_wrong_dtype(layer, dtype):
    _forwarded(layer)
    with pytest.raises(TypeError, match=r"\bdy\b"):
        layer.backward(np.zeros((3, 2, 2 * H), dtype))


def test_dy_not_an_array_or_not_finite(layer):
    _forwarded(layer)
    with pytest.raises(TypeError, match=r"\bdy\b"):
        layer.backward(np.zeros((3, 2, 2 * H)).tolist())
    dy = np.zeros((3, 2, 2 * H), np.float32)
    dy[0, 0, 0] = np.nan
    _forwarded(layer)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        layer.backward(dy)


def test_dy_shape_follows_batch_first():
    lay = rnnfast.GRU(C, H, batch_first=True)
    lay(np.zeros((2, 3, C), np.float32))  # N=2, T=3
    with pytest.raises(ValueError, match=r"\bdy\b"):
        lay.backward(np.zeros((3, 2, H), np.float32))


def test_dh_n_wrong_shape_dtype(layer):
    lstm = isinstance(layer, rnnfast.LSTM)

    def dhx(dh_n):
        return (dh_n, None) if lstm else dh_n

    _forwarded(layer)
    with pytest.raises(ValueError, match=r"\bdh_n\b"):
        layer.backward(None, dhx(np.zeros((4, 3, H), np.float32)))
    _forwarded(layer)
    with pytest.raises(TypeError, match=r"\bdh_n\b"):
        layer.backward(None, dhx(np.zeros((4, 2, H), np.float64)))


def test_lstm_dc_n_wrong_shape_and_dhx_not_a_pair():
    lstm = rnnfast.LSTM(C, H, num_layers=2, bidirectional=True)
    lstm(x_ok())
    with pytest.raises(ValueError, match=r"\bdc_n\b"):
        lstm.backward(None, (None, np.zeros((4, 2, H + 1), np.float32)))
    lstm(x_ok())
    with pytest.raises(TypeError, match=r"\bdhx\b"):
        lstm.backward(None, np.zeros((4, 2, H), np.float32))


def test_failed_backward_keeps_grads_untouched():
    lay = rnnfast.GRU(C, H, num_layers=2)
    lay(x_ok())
    with pytest.raises(ValueError):
        lay.backward(np.zeros((3, 2, H + 1), np.float32))
    for k, g in lay.grads.items():
        assert not np.any(g), k


# ---------------------------------------------------------------------------------------------
# state dicts
# ---------------------------------------------------------------------------------------------

def test_state_dict_missing_entry(layer):
    sd = layer.state_dict()
    del sd["weight_hh_l1_reverse"]
    with pytest.raises(ValueError, match="weight_hh_l1_reverse"):
        layer.load_state_dict(sd)
    layer.load_state_dict(sd, strict=False)  # allowed when not strict


def test_state_dict_unknown_entry(layer):
    sd = dict(layer.state_dict(), weight_hh_l2=np.zeros((H, H), np.float32))
    with pytest.raises(ValueError, match="weight_hh_l2"):
        layer.load_state_dict(sd)
    # unknown names are errors even when not strict
    with pytest.raises(ValueError, match="weight_hh_l2"):
        layer.load_state_dict(sd, strict=False)


@pytest.mark.parametrize("name", ["weight_ih_l0", "weight_hh_l1", "bias_ih_l0_reverse"])
def test_state_dict_wrong_shape(layer, name):
    sd = layer.state_dict()
    sd[name] = np.zeros(sd[name].shape[:-1] + (sd[name].shape[-1] + 1,), np.float32)
    with pytest.raises(ValueError, match=name):
        layer.load_state_dict(sd)
    sd[name] = sd[name].T
    with pytest.raises(ValueError, match=name):
        layer.load_state_dict(sd)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_state_dict_not_finite(layer, bad):
    sd = layer.state_dict()
    sd["bias_hh_l1"][0] = bad
    with pytest.raises(ValueError, match="bias_hh_l1"):
        layer.load_state_dict(sd)


def test_state_dict_not_floating(layer):
    sd = layer.state_dict()
    sd["weight_hh_l0"] = np.zeros(sd["weight_hh_l0"].shape, np.int64)
    with pytest.raises(TypeError, match="weight_hh_l0"):
        layer.load_state_dict(sd)


def test_state_dict_not_a_dict(layer):
    with pytest.raises(TypeError, match="state_dict"):
        layer.load_state_dict(list(layer.state_dict().values()))


def test_failed_load_state_dict_changes_nothing(layer):
    before = layer.state_dict()
    sd = {k: v + 1 for k, v in before.items()}
    sd["weight_hh_l1_reverse"][0, 0] = np.nan  # the last entry is bad: nothing may be written
    with pytest.raises(ValueError):
        layer.load_state_dict(sd)
    for k, v in layer.parameters().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_learned_state_entries_in_state_dict():
    lstm = rnnfast.LSTM(C, H, learn_initial_state=True)
    sd = lstm.state_dict()
    assert set(sd) >= {"h0", "c0"}
    del sd["c0"]
    with pytest.raises(ValueError, match="c0"):
        lstm.load_state_dict(sd)
    plain = rnnfast.LSTM(C, H)
    with pytest.raises(ValueError, match="h0"):
        plain.load_state_dict(lstm.state_dict())


# ---------------------------------------------------------------------------------------------
# constructor arguments
# ---------------------------------------------------------------------------------------------

CLASSES = [rnnfast.RNN, rnnfast.LSTM, rnnfast.GRU]


BAD_CONSTRUCTOR_ARGS = [
    (dict(hidden_size=0), ValueError, "hidden_size"),
    (dict(hidden_size=-1), ValueError, "hidden_size"),
    (dict(hidden_size=2.5), TypeError, "hidden_size"),
    (dict(hidden_size=4.0), TypeError, "hidden_size"),
    (dict(hidden_size=True), TypeError, "hidden_size"),
    (dict(hidden_size="4"), TypeError, "hidden_size"),
    (dict(input_size=0), ValueError, "input_size"),
    (dict(input_size=None), TypeError, "input_size"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(num_layers=1.0), TypeError, "num_layers"),
    (dict(dtype="float16"), TypeError, "dtype"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype="complex128"), TypeError, "dtype"),
    (dict(dtype="nonsense"), TypeError, "dtype"),
    (dict(engine="gpu"), ValueError, "engine"),
    (dict(engine=None), ValueError, "engine"),
    (dict(engine=["cpu"]), (ValueError, TypeError), "engine"),
    (dict(device="tpu"), ValueError, "device"),
    (dict(device=None), ValueError, "device"),
    (dict(bias="yes"), TypeError, "bias"),
    (dict(bias=1), TypeError, "bias"),
    (dict(batch_first="no"), TypeError, "batch_first"),
    (dict(bidirectional=None), TypeError, "bidirectional"),
    (dict(learn_initial_state=1), TypeError, "learn_initial_state"),
    (dict(dtype=None), TypeError, "dtype"),  # None is not 'float32' or 'float64'
]


@pytest.mark.parametrize("cls", CLASSES, ids=LAYER_IDS)
@pytest.mark.parametrize("kw,exc,name", BAD_CONSTRUCTOR_ARGS,
                         ids=[",".join(f"{k}={v!r}" for k, v in kw.items())
                              for kw, _, _ in BAD_CONSTRUCTOR_ARGS])
def test_bad_constructor_arguments(cls, kw, exc, name):
    args = dict(input_size=C, hidden_size=H)
    args.update(kw)
    with pytest.raises(exc, match=name):
        cls(**args)


def test_bad_rnn_nonlinearity():
    for bad in ("sigmoid", "TANH", None):
        with pytest.raises(ValueError, match="nonlinearity"):
            rnnfast.RNN(C, H, nonlinearity=bad)


def test_bad_gru_reset_after():
    with pytest.raises(TypeError, match="reset_after"):
        rnnfast.GRU(C, H, reset_after="yes")


def test_bad_train_mode():
    with pytest.raises(TypeError, match="mode"):
        rnnfast.GRU(C, H).train("no")


@pytest.mark.parametrize("cls", CLASSES, ids=LAYER_IDS)
def test_device_cuda_without_gpu(cls, cuda_available):
    if cuda_available:
        pytest.skip("this machine has a usable GPU")
    with pytest.raises(RuntimeError, match="cuda"):
        cls(C, H, device="cuda")


# ---------------------------------------------------------------------------------------------
# the low-level extension module: wrong arrays are ValueErrors, not crashes
# ---------------------------------------------------------------------------------------------

def core_args(cell=0, T=3, N=2, Cin=C, Hid=H, dtype=np.float64, training=True):
    G = {0: 1, 1: 1, 2: 4, 3: 3, 4: 3}[cell]
    z = lambda *s: np.zeros(s, dtype)  # noqa: E731
    return dict(
        cell=cell, x=z(T, N, Cin), h0=z(N, Hid), c0=z(N, Hid) if cell == 2 else None,
        w_ih=z(G * Hid, Cin), w_hh=z(G * Hid, Hid), b_ih=z(G * Hid), b_hh=z(G * Hid),
        y=z(T, N, Hid), h_n=z(N, Hid), c_n=z(N, Hid) if cell == 2 else None,
        h_prev=z(T, N, Hid), c_prev=z(T, N, Hid) if cell == 2 else None, gates=z(T, N, G * Hid),
        extra=z(T, N, Hid) if G == 3 else None,
        work=z(_core.recurrent_workspace_size(cell, T, N, Hid, False)),
        reverse=False, training=training)


@pytest.mark.parametrize("cell", [0, 2, 3])
def test_core_forward_accepts_good_arguments(cell):
    a = core_args(cell)
    a["x"][...] = 1
    a["w_ih"][...] = 0.1
    _core.recurrent_forward(**a)
    assert np.all(a["y"] != 0) and np.all(np.isfinite(a["y"]))


@pytest.mark.parametrize("cell", [0, 2, 3])
@pytest.mark.parametrize("name,value", [
    ("x", np.zeros((3, 2), np.float64)),
    ("x", np.zeros((3, 2, C, 1), np.float64)),
    ("x", np.zeros((3, 2, C), np.int64)),
    ("x", [[[0.0] * C] * 2] * 3),
    ("x", None),
    ("h0", np.zeros((2, H + 1), np.float64)),
    ("h0", np.zeros((2, H), np.float32)),
    ("w_ih", np.zeros((H, C + 1), np.float64)),
    ("w_ih", [[0.0]]),
    ("w_hh", np.zeros((H, H, 1), np.float64)),
    ("w_hh", None),
    ("b_ih", np.zeros(H + 1, np.float64)),
    ("y", np.zeros((3, 2, H + 1), np.float64)),
    ("y", np.zeros((3, 2, H), np.float64)[::-1]),
    ("h_n", np.zeros((2, H), np.float64).T.copy().T),
    ("h_n", None),
    ("gates", np.zeros((3, 2, 1), np.float64)),
    ("work", np.zeros(1, np.float64)),
    ("work", None),
])
def test_core_forward_rejects_bad_arrays(cell, name, value):
    a = core_args(cell)
    a[name] = value
    with pytest.raises(ValueError, match=f"'{name}'"):
        _core.recurrent_forward(**a)


def test_core_forward_rejects_mixed_dtypes():
    """x decides the dtype; float64 weights with a float32 x are rejected, naming a weight."""
    a = core_args(2)
    a["x"] = a["x"].astype(np.float32)
    with pytest.raises(ValueError, match="'w_hh'.*float32"):
        _core.recurrent_forward(**a)


def test_core_forward_rejects_read_only_output():
    a = core_args(2)
    a["h_n"].flags.writeable = False
    with pytest.raises(ValueError, match="'h_n'.*writable"):
        _core.recurrent_forward(**a)


def test_core_rejects_unknown_cell():
    a = core_args(0)
    a["cell"] = 7
    with pytest.raises(ValueError, match="cell"):
        _core.recurrent_forward(**a)


def test_core_backward_rejects_bad_arrays():
    a = core_args(0)
    _core.recurrent_forward(**a)
    z = np.zeros
    b = dict(cell=0, x=a["x"], w_ih=a["w_ih"], w_hh=a["w_hh"], h_prev=a["h_prev"], c_prev=None,
             gates=a["gates"], extra=None, dy=z((3, 2, H)), dh_n=None, dc_n=None, dx=z((3, 2, C)),
             accumulate_dx=False, dh0=z((2, H)), dc0=None, dw_ih=z((H, C)), dw_hh=z((H, H)),
             db_ih=z(H), db_hh=z(H), work=z(_core.recurrent_workspace_size(0, 3, 2, H, True)),
             reverse=False)
    _core.recurrent_backward(**b)  # the good call works
    for name, value in [("dy", z((3, 2, H + 1))), ("dx", z((3, 2, C), np.float32)),
                        ("dw_hh", z((H, H + 1))),
                        ("x", [1.0]), ("dh0", None), ("work", z(1))]:
        with pytest.raises(ValueError, match=f"'{name}'"):
            _core.recurrent_backward(**dict(b, **{name: value}))


def test_failed_forward_leaves_nothing_to_backpropagate():
    layer = rnnfast.LSTM(3, 4)
    layer(np.zeros((5, 2, 3), np.float32))
    with pytest.raises(ValueError, match="h0"):
        layer(np.zeros((6, 2, 3), np.float32), (np.zeros((1, 3, 4), np.float32), np.zeros((1, 3, 4), np.float32)))
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones((5, 2, 4), np.float32))


def test_workspace_sizes_refuse_non_positive_sizes():
    from rnnfast import _core

    calls = [(_core.recurrent_workspace_size, (1, 0, 2, 3, False)),
             (_core.recurrent_workspace_size, (1, 4, -2, 3, True)),
             (_core.mrnn_workspace_size, (4, 2, 3, 0, True, True))]
    if hasattr(_core, "cuda_workspace_size"):
        calls += [(_core.cuda_workspace_size, (1, 2, -3, False)), (_core.cuda_mrnn_workspace_size, (2, 3, 0, True))]
    for fn, args in calls:
        with pytest.raises(ValueError, match=">= 1"):
            fn(*args)
    assert _core.recurrent_workspace_size(1, 4, 2, 3, True) > 0
