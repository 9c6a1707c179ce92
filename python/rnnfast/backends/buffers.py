"""Reused internal arrays: caches and workspaces of the engines, one set per call in flight."""

import threading

import numpy as np


def buffer(scratch, key, shape, dtype, xp=np):
    """An array of this shape and dtype, reused from `scratch` (a dict the layer keeps) when it fits.

    Caches and workspaces are several MB per call; fresh ones cost a page fault per 4 KiB on first touch
    (about twice the time of an LSTM training forward of moderate size, RESULTS.md). Only the
    internal arrays are reused: what a call returns to the user is always new. xp: numpy, or cupy for the
    CUDA engine. A scratch dict belongs to one call at a time (a forward, and in training mode its
    backward): the layers take it from a BufferPool and give it back when the call is done.
    """
    if scratch is None:
        return xp.empty(shape, dtype)
    a = scratch.get(key)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = scratch[key] = xp.empty(shape, dtype)
    return a


class BufferPool:
    """The scratch dicts of one layer: one per call in flight, reused by the calls that follow.

    A call takes a dict (the last one given back: a lone thread always gets the same buffers, so its calls
    cost what they cost with one dict) and gives it back when it is done: an eval-mode forward at its end,
    a training forward when its backward is done (or when the same thread's next forward replaces it).
    Calls made at the same time from several threads each get their own dict; measured, this keeps one
    thread's speed and lets 4 threads that share a layer run their calls side by side (RESULTS.md).

    `key` separates the dicts by where their last use is ordered: None on the CPU, the CUDA stream on the
    GPU (a dict whose kernels may still be running on one stream is never handed to a call on another).
    At most `keep` dicts per key are kept; a call beyond that allocates its own and drops it afterwards.

    No lock: dict.setdefault, list.pop and list.append are atomic (under the GIL, and each list's own lock
    in free-threaded CPython), which is all take and give need; the cap is approximate under contention.
    """

    def __init__(self, keep=8):
        self._free = {}
        self._keep = keep
        # the CPU's first dict, claimed by a non-blocking lock: the lone thread's fast path (a lock round trip
        # is cheaper than the list's, which shows in the smallest calls)
        self._home = {}
        self._home_taken = threading.Lock()

    def take(self, key=None):
        if key is None and self._home_taken.acquire(False):
            return self._home
        try:
            return self._free[key].pop()
        except (KeyError, IndexError):
            return {}

    def give(self, scratch, key=None):
        if scratch is self._home:
            self._home_taken.release()
            return
        free = self._free.get(key)
        if free is None:
            free = self._free.setdefault(key, [])
        if len(free) < self._keep:
            free.append(scratch)

    def __len__(self):
        """Dicts kept now and free to take (over all keys)."""
        return sum(len(v) for v in list(self._free.values())) + (not self._home_taken.locked())
