"""GPU benchmark: the CUDA engine step by step, its kernel variants side by side, and whole layers against
cuDNN (torch.nn.* on cuda, same dtype) and the CPU engine.

    python benchmarks/bench_gpu.py --out results.json [--quick] [--smoke]

Sections, in this order; the JSON is rewritten after each one, so a run cut short keeps what it measured:

1. rates: the device's measured float32 GEMM rate (CuPy/cuBLAS, TF32 off) and device-to-device copy
   bandwidth (bytes read + written): the ceilings the achieved numbers below are read against.
2. launch_floor: a chain of empty kernels through the engine's own launch path (checked launches from
   C++), eager and replayed as a CUDA graph: microseconds per launch.
3. steps: the engine's T-loop alone (csrc/cuda/recurrent.cu on preallocated arrays, no GEMMs) for LSTM
   (every cell without --quick), N in {1, 8, 64, 256}, H in {256, 1024}, forward (training) and backward:
   microseconds per step eager and as a CUDA graph (the difference is launch overhead); achieved GFLOP/s
   (2*N*G*H^2 per step) against the GEMM rate, W_hh's bytes per step over the time against the copy
   bandwidth (above 1x: W comes from L2) and the loads of W the kernel makes (once per block of rows); then every kernel variant side by side, timed as graphs (kernel
   time): the row kernel in its widths (16, 8: more blocks) and units per thread (2, 4: backward), and the
   tiled kernel (32, 64 rows; N >= 8). Each variant's output is checked against the default kernel's first.
4. layers: each cell forward and forward+backward against cuDNN in float32 with TF32 off, T=100, N in
   {1, 8, 64, 256}, H in {256, 1024}, plus LSTM N=16, T=1024, H=768 (FlashRNN reports 8.22 ms and cuDNN fp16
   5.19 ms forward+backward on an H100); checked against cuDNN before timing (a warning, and the error
   recorded, above 1e-3); the CPU engine at the small sizes.
5. char: a training step of `rnnfast char`'s small preset on the GPU against the same step in torch/cuDNN.
6. esn: the reservoir engine (states on the device, W uploaded once and kept there) against the CPU engine,
   steps/s and neuron updates/s; W is drawn directly with the scale that gives spectral radius ~0.9 (the
   circular law), not through ESN()'s eigenvalue solver (ARPACK at N = 16000 takes minutes on the CPU).

--quick keeps the sizes that answer the open questions within about a minute (LSTM steps at all sizes and
variants; three cells at N in {8, 64}, H = 256; the small ESN configurations and one large one). --smoke
runs tiny sizes: the plumbing, for tests/engines/cuda_emulation/emulate.py without a GPU (gpu_check.sh --dry-run);
its numbers mean nothing. Sections that need torch with CUDA are recorded as skipped without it.
Correctness is the tests' job (tests/engines/test_cuda.py); the checks here guard the timings.
"""

import argparse
import time

import numpy as np

from _harness import host_facts, write_json  # benchmarks/_harness.py (this folder is on sys.path when run as a script)

# kernel variants (csrc/cuda/step_kernel.cuh): name -> (tiled rows, width, units per thread)
VARIANTS = {"row": (0, 32, 1), "w16": (0, 16, 1), "w8": (0, 8, 1), "u2": (0, 32, 2), "u4": (0, 32, 4),
            "w8u4": (0, 8, 4), "tiled32": (32, 32, 1), "tiled64": (64, 32, 1)}


def _events_ms(cp, fn, warmup=3, repeat=15):
    """Median milliseconds of fn() between CUDA events on the current stream, after warm-up."""
    for _ in range(warmup):
        fn()
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def _capture(stream, fn):
    """fn's launches on `stream` as a CUDA graph (fn must not synchronise)."""
    stream.begin_capture()
    try:
        fn()
    finally:
        graph = stream.end_capture()
    return graph


# ---- 1. the device's ceilings -----------------------------------------------------------------------
def device_rates(cp, size):
    n = size["gemm"]
    rng = np.random.default_rng(0)
    a = cp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = cp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    ms = _events_ms(cp, lambda: a @ b, warmup=2, repeat=5)
    m = size["copy_mb"] * (1 << 20) // 4
    src = cp.asarray(rng.standard_normal(m, dtype=np.float32))
    dst = cp.empty_like(src)

    def copy():
        dst[...] = src

    copy_ms = _events_ms(cp, copy, warmup=2, repeat=10)
    out = dict(gemm_n=n, gemm_fp32_tflops=2 * n ** 3 / (ms * 1e-3) / 1e12, copy_bytes=2 * 4 * m,
               copy_gb_per_s=2 * 4 * m / (copy_ms * 1e-3) / 1e9)
    print(f"rates: fp32 GEMM {out['gemm_fp32_tflops']:.1f} TFLOP/s ({n}^3, TF32 off), device copy "
          f"{out['copy_gb_per_s']:.0f} GB/s (read + write)", flush=True)
    return out


# ---- 2. the launch floor ----------------------------------------------------------------------------
def launch_floor(cp, core, stream, count):
    def chain():
        core.cuda_launch_empty(count, stream.ptr)

    with stream:
        eager = _events_ms(cp, chain, warmup=2, repeat=5)
        graph = _capture(stream, chain)
        replay = _events_ms(cp, lambda: graph.launch(stream), warmup=2, repeat=5)
    out = dict(launches=count, eager_us_per_launch=eager * 1e3 / count, graph_us_per_launch=replay * 1e3 / count)
    print(f"launch floor: {out['eager_us_per_launch']:.2f} us per launch eager, {out['graph_us_per_launch']:.2f} "
          f"as a graph ({count} empty kernels through the engine's launch path)", flush=True)
    return out


# ---- 3. the engine's T-loop, step by step -----------------------------------------------------------
class StepLoop:
    """One layer direction's time loop on the GPU without the GEMMs around it: forward in training mode
    (writing the cache) and backward, on arrays allocated once; float32."""

    def __init__(self, cp, core, cell, T, N, H, rng, stream):
        from rnnfast.backends.cells import GATES, GRU, LSTM
        from rnnfast.backends.cuda import _ptr

        G = GATES[cell]
        self.cp, self.core, self.cell, self.T, self.N, self.H, self.G = cp, core, cell, T, N, H, G
        self.stream = stream
        f32 = np.float32

        def rnd(*shape, scale=1.0):
            return cp.asarray((scale * rng.standard_normal(shape)).astype(f32))

        def empty(*shape):
            return cp.empty(shape, f32)

        w_hh = rnd(G * H, H, scale=1 / np.sqrt(H))
        a = dict(xp=rnd(T, N, G * H, scale=0.5), w_hh=w_hh, w_hh_t=cp.ascontiguousarray(w_hh.T),
                 b_hh=rnd(G * H, scale=0.1), h0=rnd(N, H, scale=0.5), c0=rnd(N, H, scale=0.5) if cell == LSTM else None,
                 y=empty(T, N, H), h_n=empty(N, H), c_n=empty(N, H), h_prev=empty(T, N, H),
                 c_prev=empty(T, N, H) if cell == LSTM else None, gates=empty(T, N, G * H),
                 extra=empty(T, N, H) if G == 3 else None,
                 work_f=empty(core.cuda_workspace_size(cell, N, H, False)),
                 work_b=empty(core.cuda_workspace_size(cell, N, H, True)), dy=rnd(T, N, H),
                 dG=empty(T, N, G * H), dh0=empty(N, H), dc0=empty(N, H))
        a["dGh"] = empty(T, N, G * H) if cell == GRU else a["dG"]
        self.a = a
        self.p = {k: _ptr(v) for k, v in a.items()}

    def forward(self):
        p = self.p
        self.core.cuda_recurrent_forward(
            "float32", self.cell, self.T, self.N, self.H, False, True, p["xp"], p["w_hh_t"], p["b_hh"], p["h0"],
            p["c0"], p["y"], self.H, p["h_n"], p["c_n"], p["h_prev"], p["c_prev"], p["gates"], p["extra"],
            p["work_f"], self.stream.ptr)

    def backward(self):
        p = self.p
        self.core.cuda_recurrent_backward(
            "float32", self.cell, self.T, self.N, self.H, False, p["w_hh"], p["h_prev"], p["c_prev"], p["gates"],
            p["extra"], p["dy"], self.H, 0, 0, p["dG"], p["dGh"], p["dh0"], p["dc0"], p["work_b"], self.stream.ptr)


def _set_variant(core, name):
    rows, width, units = VARIANTS[name]
    core.cuda_set_tiling(rows, 1)
    core.cuda_set_row_kernel(width, units)


def bench_steps(cp, core, stream, rates, size, rng):
    """Per-step times of the engine's loop (see the module docstring, section 3)."""
    from rnnfast.backends.cells import GATES, GRU, LSTM, RNN_TANH

    names = {RNN_TANH: "rnn_tanh", LSTM: "lstm", GRU: "gru"}
    T, rows = size["T"], []
    default = core.cuda_tiling(), core.cuda_row_kernel()
    print(f"per step, microseconds (T={T}; 'graph' is the loop replayed as a CUDA graph: kernel time; the "
          f"variants as graphs; GF/s and %GEMM of the default kernel as a graph; W x: W_hh bytes per step / time "
          f"over the copy bandwidth; W GB/s: the kernel's loads of W, once per block of rows, mostly from L2)",
          flush=True)
    head = f"{'cell':8} {'pass':4} {'N':>4} {'H':>5} | {'eager':>7} {'graph':>7} {'GF/s':>7} {'%GEMM':>6} {'W x':>5} " \
           f"{'W GB/s':>7} |"
    print(head + "".join(f" {v:>7}" for v in VARIANTS if v != "row"), flush=True)
    for cell in size["step_cells"]:
        G = GATES[cell]
        for H in size["H"]:
            for N in size["N"]:
                row = dict(cell=names[cell], N=N, H=H, T=T, variants={})
                with stream:  # the uploads too: a non-blocking stream does not wait for the legacy one
                    loop = StepLoop(cp, core, cell, T, N, H, rng, stream)
                    try:
                        _set_variant(core, "row")
                        loop.forward()
                        loop.backward()
                        ref = {"forward": loop.a["y"].copy(), "backward": loop.a["dG"].copy()}
                        for pass_name, fn in (("forward", loop.forward), ("backward", loop.backward)):
                            eager = _events_ms(cp, fn, warmup=2, repeat=size["repeat"]) * 1e3 / T
                            g = _capture(stream, fn)
                            graph = _events_ms(cp, lambda: g.launch(stream), warmup=2, repeat=size["repeat"]) * 1e3 / T
                            flops, w_bytes = 2 * N * G * H * H, 4 * G * H * H
                            nb = 8 if N >= 8 else 4 if N > 1 else 1  # the default row kernel's rows per block
                            r = row[pass_name] = dict(eager_us=eager, graph_us=graph, w_bytes=w_bytes,
                                                      w_passes=-(-N // nb), gflops=flops / (graph * 1e-6) / 1e9)
                            r["pct_gemm"] = 100 * r["gflops"] / (rates["gemm_fp32_tflops"] * 1e3)
                            r["w_x_copy"] = (w_bytes / (graph * 1e-6)) / (rates["copy_gb_per_s"] * 1e9)
                            # the loads the kernel makes of W (once per block of rows), mostly from L2
                            r["w_load_gb_per_s"] = r["w_passes"] * w_bytes / (graph * 1e-6) / 1e9
                        for name in VARIANTS:
                            if name == "row":
                                continue
                            tiled, width, units = VARIANTS[name]
                            if (tiled and N < 8) or (units > 1 and N == 1):
                                continue  # the tiled kernel wastes a block's rows; one row ignores units
                            _set_variant(core, name)
                            got = {}
                            for pass_name, fn, out in (("forward", loop.forward, "y"), ("backward", loop.backward, "dG")):
                                if units > 1 and pass_name == "forward" and G > 1:
                                    continue  # several units per thread: single-gate launches only (the same kernel)
                                fn()
                                err = float(cp.abs(loop.a[out] - ref[pass_name]).max())
                                scale = max(1.0, float(cp.abs(ref[pass_name]).max()))
                                if not err <= 1e-5 * scale:
                                    print(f"WARNING {name} {names[cell]} {pass_name} N={N} H={H}: max |out - default "
                                          f"kernel's| = {err:.2e} (timed anyway)", flush=True)
                                g = _capture(stream, fn)
                                got[pass_name] = dict(max_abs_err_vs_row=err, graph_us=_events_ms(
                                    cp, lambda: g.launch(stream), warmup=2, repeat=size["repeat"]) * 1e3 / T)
                            row["variants"][name] = got
                    finally:
                        core.cuda_set_tiling(*default[0])
                        core.cuda_set_row_kernel(*default[1])
                rows.append(row)
                for pass_name in ("forward", "backward"):
                    r = row[pass_name]
                    cols = "".join(
                        f" {row['variants'][v][pass_name]['graph_us']:7.1f}" if pass_name in row["variants"].get(v, {})
                        else f" {'-':>7}" for v in VARIANTS if v != "row")
                    print(f"{names[cell]:8} {pass_name[:4]:4} {N:4d} {H:5d} | {r['eager_us']:7.1f} {r['graph_us']:7.1f} "
                          f"{r['gflops']:7.0f} {r['pct_gemm']:6.1f} {r['w_x_copy']:5.2f} {r['w_load_gb_per_s']:7.0f} |{cols}",
                          flush=True)
    return rows


# ---- 4. layers against cuDNN ------------------------------------------------------------------------
def flops(cell, T, N, C, H, backward):
    G = {"rnn_tanh": 1, "lstm": 4, "gru": 3}[cell]
    fwd = 2 * T * N * G * H * (C + H)
    return fwd * (3 if backward else 1)


def bench_layers(cp, torch, core, quick, rng):
    import rnnfast

    configs = []
    for cell in ("rnn_tanh", "lstm", "gru"):
        for H in (256, 1024):
            for N in (1, 8, 64, 256):
                configs.append((cell, 100, N, H, H))
    configs.append(("lstm", 1024, 16, 768, 768))
    if quick:
        configs = [c for c in configs if c[2] in (8, 64) and c[3] == 256]
    make = {"rnn_tanh": (rnnfast.RNN, torch.nn.RNN), "lstm": (rnnfast.LSTM, torch.nn.LSTM),
            "gru": (rnnfast.GRU, torch.nn.GRU)}
    print(f"{'cell':8} {'T':>5} {'N':>4} {'H':>5} | {'fwd ms':>8} {'cudnn':>8} {'x':>6} | {'f+b ms':>8} {'cudnn':>8} "
          f"{'x':>6} {'TFLOP/s':>8} | {'tiled32':>8} {'tiled64':>8} | {'cpu f+b ms':>10}", flush=True)
    rows = []
    for cell, T, N, C, H in configs:
        ours_cls, torch_cls = make[cell]
        tl = torch_cls(C, H).cuda()
        layer = ours_cls(C, H).to("cuda")
        layer.load_state_dict({k: cp.asarray(v.detach()) for k, v in tl.state_dict().items()})
        x_np = rng.standard_normal((T, N, C)).astype(np.float32)
        x = cp.asarray(x_np)
        dy = cp.asarray(rng.standard_normal((T, N, H)).astype(np.float32))
        xt = torch.as_tensor(x, device="cuda").requires_grad_(True)
        dyt = torch.as_tensor(dy, device="cuda")

        # check before timing
        y, _ = layer(x)
        yt, _ = tl(xt)
        err = float(cp.abs(y - cp.asarray(yt.detach())).max())
        if not err < 1e-3:
            print(f"WARNING {cell} T={T} N={N} H={H}: max |y - cuDNN y| = {err:.2e} (timed anyway)", flush=True)

        def ours_fwd():
            layer.eval()
            layer(x)
            layer.train()

        def ours_fb():
            layer(x)
            layer.backward(dy)

        def cudnn_fwd():
            with torch.no_grad():
                tl(xt)

        def cudnn_fb():
            out, _ = tl(xt)
            out.backward(dyt)

        row = dict(cell=cell, T=T, N=N, H=H, max_abs_err_vs_cudnn=err)
        row["fwd_ms"] = _events_ms(cp, ours_fwd)
        row["cudnn_fwd_ms"] = _events_ms(cp, cudnn_fwd)
        row["fb_ms"] = _events_ms(cp, ours_fb)
        row["cudnn_fb_ms"] = _events_ms(cp, cudnn_fb)
        row["fb_tflops"] = flops(cell, T, N, C, H, True) / (row["fb_ms"] * 1e-3) / 1e12
        # the tiled step kernel (off by default until timed): the same layer, 32 or 64 rows per block
        tiling = core.cuda_tiling()
        for tile in (32, 64) if N >= 8 else ():
            core.cuda_set_tiling(tile, 1)
            try:
                y_t, _ = layer(x)
                row[f"tiled{tile}_max_abs_err_vs_cudnn"] = float(cp.abs(y_t - cp.asarray(yt.detach())).max())
                row[f"tiled{tile}_fb_ms"] = _events_ms(cp, ours_fb)
            finally:
                core.cuda_set_tiling(*tiling)
        row["cpu_fb_ms"] = None
        if N <= 8 and H <= 256 and T <= 100:
            cpu = ours_cls(C, H)
            cpu.load_state_dict({k: v.detach().cpu().numpy() for k, v in tl.state_dict().items()})
            dy_np = cp.asnumpy(dy)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                cpu(x_np)
                cpu.backward(dy_np)
                times.append((time.perf_counter() - t0) * 1e3)
            row["cpu_fb_ms"] = float(np.median(times))
        rows.append(row)
        cpu_s = f"{row['cpu_fb_ms']:10.2f}" if row["cpu_fb_ms"] else f"{'-':>10}"
        tiled_s = " ".join(f"{row[f'tiled{r}_fb_ms']:8.3f}" if f"tiled{r}_fb_ms" in row else f"{'-':>8}"
                           for r in (32, 64))
        print(f"{cell:8} {T:5d} {N:4d} {H:5d} | {row['fwd_ms']:8.3f} {row['cudnn_fwd_ms']:8.3f} "
              f"{row['cudnn_fwd_ms'] / row['fwd_ms']:6.2f} | {row['fb_ms']:8.3f} {row['cudnn_fb_ms']:8.3f} "
              f"{row['cudnn_fb_ms'] / row['fb_ms']:6.2f} {row['fb_tflops']:8.2f} | {tiled_s} | {cpu_s}   err {err:.1e}",
              flush=True)
    return rows


# ---- 5. a training step of the char model ----------------------------------------------------------
def bench_char(cp, torch, quick):
    """A training step of `rnnfast char`'s small preset on the GPU (LSTM 1x256 on one-hot characters, Linear
    read-out, batch 32 x seq-len 64, Adam 2e-3, global-norm clip 5, float32, state carried) against the same
    step in torch (cuDNN LSTM, TF32 off). Wall time per step (both sides read the loss back every step),
    median of repeats after warm-up."""
    from rnnfast import optim
    from rnnfast.charmodel import CharModel

    V, H, T, N = 96, 256, 64, 32
    steps, warmup = (10, 3) if quick else (40, 5)
    rng = np.random.default_rng(0)
    data = rng.integers(0, V, (steps + warmup) * T * N + N * (T + 1)).astype(np.int64)

    def chunk(i):  # (T + 1, N) indices on the host, as char.py cuts them
        return data[np.arange(N) * ((steps + warmup) * T) + i * T + np.arange(T + 1)[:, None]]

    model = CharModel(V, "lstm", hidden=H, layers=1, seed=0, device="cuda")
    opt = optim.Adam(model.modules(), lr=2e-3)
    state = model.initial_state(N)

    tl = torch.nn.LSTM(V, H).cuda()
    tout = torch.nn.Linear(H, V).cuda()
    tl.load_state_dict({k[len("rnn."):]: torch.as_tensor(v) for k, v in model.state_dict().items()
                        if k.startswith("rnn.")})
    tout.load_state_dict({k[len("out."):]: torch.as_tensor(v) for k, v in model.state_dict().items()
                          if k.startswith("out.")})
    params = list(tl.parameters()) + list(tout.parameters())
    topt = torch.optim.Adam(params, lr=2e-3)
    tstate = None

    def ours(i):
        nonlocal state
        c = chunk(i)
        opt.zero_grad()
        loss, state = model.loss_and_backward(c[:-1], c[1:], state)
        optim.clip_grad_norm_(opt, 5.0)
        opt.step()
        return loss

    def theirs(i):
        nonlocal tstate
        c = torch.as_tensor(chunk(i), device="cuda")
        x = torch.nn.functional.one_hot(c[:-1], V).float()
        topt.zero_grad()
        y, tstate = tl(x, tstate)
        tstate = tuple(s.detach() for s in tstate)
        loss = torch.nn.functional.cross_entropy(tout(y).reshape(-1, V), c[1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        topt.step()
        return loss.item()

    out = {}
    for name, fn in (("rnnfast", ours), ("torch_cudnn", theirs)):
        losses, times = [], []
        for i in range(warmup + steps):
            cp.cuda.Device().synchronize()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            losses.append(fn(i))
            cp.cuda.Device().synchronize()
            torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        ms = float(np.median(times)) * 1e3
        out[name] = dict(ms_per_step=ms, chars_per_s=T * N / (ms * 1e-3), first_losses=losses[:5])
    out["torch_time_ratio"] = out["rnnfast"]["ms_per_step"] / out["torch_cudnn"]["ms_per_step"]
    print(f"char small preset step on the GPU: rnnfast {out['rnnfast']['ms_per_step']:.2f} ms, torch/cuDNN "
          f"{out['torch_cudnn']['ms_per_step']:.2f} ms (rnnfast / torch time {out['torch_time_ratio']:.2f}); "
          f"first losses {out['rnnfast']['first_losses'][:3]} vs {out['torch_cudnn']['first_losses'][:3]}",
          flush=True)
    return out


# ---- 6. echo state network reservoirs ---------------------------------------------------------------
def reservoir_matrix(N, density, rng, radius=0.9):
    """(w_dense, indptr, indices, values) of a reservoir with spectral radius ~radius, without an eigenvalue
    solver: iid entries of variance s^2 give a radius of about s*sqrt(N) (the circular law), so uniform
    (-1, 1) values (variance 1/3) at density d are scaled by radius / sqrt(N d / 3). Sparse: round(d N)
    columns per row, drawn with replacement (a repeat adds up, as CSR allows). The timing does not depend
    on the exact radius."""
    scale = radius / np.sqrt(N * density / 3)
    if density >= 1:
        return (rng.uniform(-1, 1, (N, N)) * scale).astype(np.float32), None, None, None
    k = max(1, round(density * N))
    indices = np.sort(rng.integers(0, N, (N, k), dtype=np.int32), axis=1).ravel()
    indptr = np.arange(0, N * k + 1, k, dtype=np.int32)
    return None, indptr, indices, (rng.uniform(-1, 1, N * k) * scale).astype(np.float32)


def bench_esn(cp, configs, rng):
    """The reservoir engine on the GPU (states stay on the device, W uploaded once) against the CPU engine."""
    from rnnfast import _core
    from rnnfast.backends import cuda as _cuda

    rows = []
    print(f"{'ESN N':>7} {'density':>7} {'B':>5} {'T':>5} | {'GPU steps/s':>12} {'updates/s':>10} | "
          f"{'CPU steps/s':>12} {'x':>7}", flush=True)
    for N, density, B, T in configs:
        host = reservoir_matrix(N, density, rng)
        w_in = (rng.uniform(-1, 1, (N, 4))).astype(np.float32)
        bias = np.zeros(N, np.float32)
        one = np.ones(1, np.float32)
        leak = np.full((1, N), 0.3, np.float32)
        u = rng.standard_normal((T, B, 4)).astype(np.float32)
        dev = [None if a is None else cp.asarray(a) for a in (u, *host, w_in, bias, one, one, leak)]
        ms = _events_ms(cp, lambda: _cuda.reservoir_run(*dev, None), warmup=2, repeat=5)
        row = dict(N=N, density=density, B=B, T=T, gpu_steps_per_s=T / (ms * 1e-3))
        row["gpu_updates_per_s"] = row["gpu_steps_per_s"] * B * N
        row["cpu_steps_per_s"] = None
        if N * N * density * B * T <= 2e9:  # the CPU engine at ~1-10 GMAC/s: seconds at most
            states, x_last = np.empty((T, 1, B, N), np.float32), np.empty((1, B, N), np.float32)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                _core.reservoir_run(u, *host, w_in, bias, one, one, leak, None, states, x_last)
                times.append(time.perf_counter() - t0)
            row["cpu_steps_per_s"] = T / float(np.median(times))
        rows.append(row)
        cpu = f"{row['cpu_steps_per_s']:12.0f} {row['gpu_steps_per_s'] / row['cpu_steps_per_s']:7.1f}" \
            if row["cpu_steps_per_s"] else f"{'-':>12} {'-':>7}"
        print(f"{N:7d} {density:7.2f} {B:5d} {T:5d} | {row['gpu_steps_per_s']:12.0f} "
              f"{row['gpu_updates_per_s']:10.2e} | {cpu}", flush=True)
    return rows


SIZES = {  # per mode: the step section's grid and repeats, the ceilings' sizes, the ESN configurations
    "full": dict(T=100, N=(1, 8, 64, 256), H=(256, 1024), cells="all", repeat=10, gemm=8192, copy_mb=1024,
                 launches=1000, esn=[(1000, 0.1, 1, 2000), (1000, 0.1, 64, 500), (2000, 1.0, 64, 200),
                                     (4000, 0.1, 256, 100), (16000, 0.01, 1024, 20), (16000, 0.1, 1024, 5)]),
    "quick": dict(T=50, N=(1, 8, 64, 256), H=(256, 1024), cells="lstm", repeat=5, gemm=4096, copy_mb=512,
                  launches=500, esn=[(1000, 0.1, 1, 1000), (1000, 0.1, 64, 200), (16000, 0.01, 1024, 10)]),
    "smoke": dict(T=3, N=(1, 9), H=(20, 40), cells="lstm", repeat=1, gemm=64, copy_mb=1, launches=5,
                  esn=[(60, 0.2, 2, 4), (40, 1.0, 1, 3)]),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="the sizes that answer the open questions (about a minute)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the plumbing, without a GPU (emulated)")
    args = ap.parse_args()

    import cupy as cp

    import rnnfast
    from rnnfast.backends import cuda as _cuda
    from rnnfast.backends.cells import GRU, LSTM, RNN_TANH

    _cuda.cupy()  # a clear error without a usable GPU
    core = _cuda._core  # the engine's switches (the emulated module's, when emulated)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    size = dict(SIZES[mode])
    size["step_cells"] = [LSTM] if size["cells"] == "lstm" else [RNN_TANH, LSTM, GRU]
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    results = {"device": name, "multiprocessors": props.get("multiProcessorCount"), "mode": mode,
               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rnnfast": rnnfast.__version__, **host_facts(np)}
    print(f"device {name}, {results['multiprocessors']} multiprocessors; mode {mode}", flush=True)
    rng = np.random.default_rng(0)
    stream = cp.cuda.Stream(non_blocking=True)
    failed = False

    def section(key, fn):
        nonlocal failed
        t0 = time.perf_counter()
        try:
            results[key] = fn()
        except Exception as e:  # recorded; the later sections still run
            import traceback

            traceback.print_exc()
            results[key] = {"error": repr(e)}
            failed = True
        print(f"[{key}: {time.perf_counter() - t0:.1f} s]", flush=True)
        write_json(args.out, results)

    section("rates", lambda: device_rates(cp, size))
    rates = results["rates"] if "error" not in results["rates"] else {"gemm_fp32_tflops": np.nan, "copy_gb_per_s": np.nan}
    section("launch_floor", lambda: launch_floor(cp, core, stream, size["launches"]))
    section("steps", lambda: bench_steps(cp, core, stream, rates, size, rng))
    torch = None
    try:
        import torch

        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        pass
    if torch is None:
        results["layers"] = results["char"] = {"skipped": "needs torch with CUDA"}
        print("layers, char: skipped (needs torch with CUDA)", flush=True)
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        section("layers", lambda: bench_layers(cp, torch, core, mode != "full", rng))
        section("char", lambda: bench_char(cp, torch, mode != "full"))
    section("esn", lambda: bench_esn(cp, size["esn"], rng))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
