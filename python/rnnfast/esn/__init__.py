"""Echo state networks on rnnfast's C++ reservoir engine, with reservoirpy's conventions.

    esn = rnnfast.ESN(1, 500, 1, spectral_radius=0.9, leak_rate=0.3, ridge=1e-6, seed=0)
    esn.fit(u_train, y_train, washout=100)       # ridge readout from float64 statistics
    y_pred = esn.predict(u_test)                  # continues from the state fit left
    y_gen = esn.generate(500)                     # closed loop: each prediction is the next input

Model (the same equation as ``reservoirpy.nodes.Reservoir``, so the same matrices give the same states):

    x_t = (1 - lr) * x_{t-1} + lr * tanh(W x_{t-1} + W_in u_t + W_fb y_{t-1} + bias)
    y_t = x_t @ W_out + b_out

``lr`` is the leak rate (a scalar or one value per unit). The ``W_fb y_{t-1}`` term exists only with
``feedback=True``; it is run by appending ``y_{t-1}`` to the input and ``W_fb`` to ``W_in``, with the
teacher's ``y`` fed back during ``fit`` (teacher forcing) and the ESN's own predictions afterwards.

Shapes: T steps, B sequences, I = input_size, N = reservoir_size, O = output_size. Inputs are time major
like rnnfast's layers: ``u`` is (T, I) for one sequence, (T, B, I) for a batch (each sequence keeps its
own state), or a list of (T_k, I) arrays (independent sequences of any lengths that, as in reservoirpy,
all start from the current state; the state afterwards is that of the last one). Outputs have the same
layout with I replaced by N (states) or O (predictions).

Initialisation (when the matrices are not supplied; ``seed`` makes it reproducible, each matrix has its
own random stream so supplying one does not change the others):

* ``W``: density < 1: sparse CSR with ``round(density * N * N)`` nonzeros at uniformly random
  positions; density == 1: dense. Nonzeros uniform(-1, 1) (reservoirpy offers normal or uniform; this is
  its ``uniform``), then scaled so the spectral radius is ``spectral_radius``. The radius is computed
  deterministically: ``numpy.linalg.eigvals`` for N <= 512, else ARPACK (``scipy.sparse.linalg.eigs``,
  k=1, a fixed start vector ``v0``, tol 1e-10) with a dense fallback if ARPACK does not converge.
* ``W_in``: dense uniform(-1, 1) * input_scaling (input_scaling: a scalar or one value per input).
* ``bias``: uniform(-1, 1) * bias_scaling (so zeros by default, as in reservoirpy).
* ``W_fb`` (feedback only): dense uniform(-1, 1) * feedback_scaling.

Supplied matrices (``W`` as a dense array or any scipy.sparse matrix, ``W_in``, ``bias``, ``W_fb``) are
used as they are, like reservoirpy: ``spectral_radius``, ``density``, ``input_scaling``,
``bias_scaling`` and ``feedback_scaling`` are then not applied to them (they still apply to the matrices
that are generated). A sparse ``W`` is kept as CSR with int32 indices, a dense one dense. ``W`` is stored
in the ESN's dtype; ``esn.W``, ``esn.W_in``, ``esn.bias``, ``esn.W_fb``, ``esn.leak_rate`` may be read
(and replaced by arrays of the same shape) after construction.

Readout: ridge regression with an unregularised intercept (reservoirpy's ``Ridge(fit_bias=True)``), from
float64 statistics (X^T X, X^T Y and the sums, for centring) accumulated chunk by chunk, so the states of
a long training set are never all kept. ``washout`` (reservoirpy's ``warmup``) drops the first steps of
every training sequence.
"""

from ..nn.init import spectral_radius
from .deep import DeepESN
from .hypersearch import SearchError, SearchResult, loguniform, plot_search_report, randint, search, uniform
from .model import ESN
from .nvar import NVAR
from .online import OnlineESN
from .plasticity import IPReservoir
from .population import population_sweep, run_population
from .readout import RidgeAccumulator

__all__ = ["ESN", "run_population", "population_sweep", "RidgeAccumulator", "spectral_radius",
           "search", "SearchResult", "SearchError", "uniform", "loguniform", "randint", "plot_search_report",
           "OnlineESN", "NVAR", "DeepESN", "IPReservoir"]
