"""The classic memory models the lecture starts from, before RNNs: hidden Markov models (`HMM`: a one-of-K
discrete state, "with N hidden states it can only remember log(N) bits") and linear dynamical systems
(`LinearGaussian`: a continuous state with linear-Gaussian dynamics, observations and driving inputs).

Their recursions (scaled forward-backward, Viterbi, the Kalman filter and RTS smoother) run in the C++ CPU
engine over batches of sequences; rnnfast.reference.hmm and rnnfast.reference.lgssm are the NumPy references.
"""

from .hmm import HMM, ForwardBackward
from .lgssm import Filtered, LinearGaussian, Smoothed

__all__ = ["HMM", "LinearGaussian", "ForwardBackward", "Filtered", "Smoothed"]
