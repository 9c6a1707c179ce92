"""GPU benchmark: rnnfast's CUDA engine against cuDNN (torch.nn.* on cuda, same dtype) and the CPU engine.

    python benchmarks/bench_gpu.py --out results.json [--quick]

Times forward and forward+backward with CUDA events after warm-up (median of repeats), for RNN tanh,
LSTM and GRU at T=100, N in {1, 8, 64, 256}, H in {256, 1024}, and LSTM at N=16, T=1024, H=768 (where
FlashRNN reports 8.22 ms and cuDNN fp16 5.19 ms forward+backward on an H100). cuDNN runs in true float32
(TF32 off), as rnnfast does. Also measures the device's float32 GEMM rate (TF32 off) so achieved TFLOP/s
can be read against it. At N >= 8, forward+backward is also timed with the tiled step kernel (32 and 64
batch rows per block; rnnfast._core.cuda_set_tiling), which is off by default until these numbers say
where it pays. The CPU engine is timed at the small sizes only (it is minutes per call at the
large ones). Then the ESN reservoir engine on the GPU (N up to 16k, batches up to 1024, states kept on the
device) against the CPU engine, in steps/s and neuron updates/s; and a training step of `rnnfast char`'s
small preset on the GPU against the same step in torch (cuDNN). Correctness is the tests' job (tests/test_cuda.py); each config here is also checked
against cuDNN in float32 before it is timed
(a warning is printed, and the error recorded, when they differ by more than 1e-3).
"""

import argparse
import json
import time

import numpy as np


def _events_ms(cp, fn, warmup=3, repeat=15):
    for _ in range(warmup):
        fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def gemm_tflops(torch):
    n = 8192
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        a @ b
    stop.record()
    stop.synchronize()
    return 2 * n ** 3 * 10 / (start.elapsed_time(stop) * 1e-3) / 1e12


def flops(cell, T, N, C, H, backward):
    G = {"rnn_tanh": 1, "lstm": 4, "gru": 3}[cell]
    fwd = 2 * T * N * G * H * (C + H)
    return fwd * (3 if backward else 1)


def bench_esn(cp, quick):
    """The reservoir engine on the GPU (states stay on the device) against the CPU engine, steps/s."""
    import rnnfast
    from rnnfast import _cuda

    configs = [(1000, 0.1, 1, 2000), (1000, 0.1, 64, 500), (2000, 1.0, 64, 200), (4000, 0.1, 256, 100),
               (16000, 0.01, 1024, 20), (16000, 0.1, 1024, 5)]
    if quick:
        configs = configs[:2]
    rows = []
    print(f"{'ESN N':>7} {'density':>7} {'B':>5} {'T':>5} | {'GPU steps/s':>12} {'updates/s':>10} | "
          f"{'CPU steps/s':>12} {'x':>7}", flush=True)
    for N, density, B, T in configs:
        esn = rnnfast.ESN(4, N, 1, density=density, spectral_radius=0.9, leak_rate=0.3, seed=0, dtype="float32")
        u = np.random.default_rng(0).standard_normal((T, B, 4)).astype(np.float32)
        w, ip, ix, vals = esn._w_args()
        args = (u, w, ip, ix, vals, esn._w_in_engine(), esn.bias.astype(np.float32), np.ones(1, np.float32),
                np.ones(1, np.float32), esn._leak_vector()[None, :].astype(np.float32), None)
        ms = _events_ms(cp, lambda: _cuda.reservoir_run(*args), warmup=2, repeat=5)
        row = dict(N=N, density=density, B=B, T=T, gpu_steps_per_s=T / (ms * 1e-3))
        row["gpu_updates_per_s"] = row["gpu_steps_per_s"] * B * N
        row["cpu_steps_per_s"] = None
        if N * N * density * B * T <= 2e9:  # the CPU engine at ~1-10 GMAC/s: seconds at most
            times = []
            for _ in range(3):
                esn.reset()
                t0 = time.perf_counter()
                esn.run_reservoir(u if B > 1 else u[:, 0])
                times.append(time.perf_counter() - t0)
            row["cpu_steps_per_s"] = T / float(np.median(times))
        rows.append(row)
        cpu = f"{row['cpu_steps_per_s']:12.0f} {row['gpu_steps_per_s'] / row['cpu_steps_per_s']:7.1f}" \
            if row["cpu_steps_per_s"] else f"{'-':>12} {'-':>7}"
        print(f"{N:7d} {density:7.2f} {B:5d} {T:5d} | {row['gpu_steps_per_s']:12.0f} "
              f"{row['gpu_updates_per_s']:10.2e} | {cpu}", flush=True)
    return rows


def bench_char(cp, torch, quick):
    """A training step of `rnnfast char`'s small preset on the GPU (LSTM 1x256 on one-hot characters, Linear
    read-out, batch 32 x seq-len 64, Adam 2e-3, global-norm clip 5, float32, state carried) against the same
    step in torch (cuDNN LSTM, TF32 off). Wall time per step (both sides read the loss back every step),
    median of repeats after warm-up."""
    import rnnfast  # noqa: F401
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="fewer sizes (a smoke run)")
    args = ap.parse_args()

    import cupy as cp
    import torch

    import rnnfast

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    configs = []
    for cell in ("rnn_tanh", "lstm", "gru"):
        for H in (256, 1024):
            for N in (1, 8, 64, 256):
                configs.append((cell, 100, N, H, H))
    configs.append(("lstm", 1024, 16, 768, 768))
    if args.quick:
        configs = [c for c in configs if c[2] in (8, 64) and c[3] == 256]

    results = {"device": torch.cuda.get_device_name(), "gemm_fp32_tflops": gemm_tflops(torch),
               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": []}
    print(f"device {results['device']}, fp32 GEMM {results['gemm_fp32_tflops']:.1f} TFLOP/s (TF32 off)", flush=True)
    make = {"rnn_tanh": (rnnfast.RNN, torch.nn.RNN), "lstm": (rnnfast.LSTM, torch.nn.LSTM),
            "gru": (rnnfast.GRU, torch.nn.GRU)}
    header = f"{'cell':8} {'T':>5} {'N':>4} {'H':>5} | {'fwd ms':>8} {'cudnn':>8} {'x':>6} | " \
             f"{'f+b ms':>8} {'cudnn':>8} {'x':>6} {'TFLOP/s':>8} | {'tiled32':>8} {'tiled64':>8} | {'cpu f+b ms':>10}"
    print(header, flush=True)
    rng = np.random.default_rng(0)
    failed = False
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
        # the tiled step kernel (off by default until timed here): the same step, 32 or 64 rows per block
        tiling = rnnfast._core.cuda_tiling()
        for rows in (32, 64) if N >= 8 else ():
            rnnfast._core.cuda_set_tiling(rows, 1)
            try:
                y_t, _ = layer(x)
                row[f"tiled{rows}_max_abs_err_vs_cudnn"] = float(cp.abs(y_t - cp.asarray(yt.detach())).max())
                row[f"tiled{rows}_fb_ms"] = _events_ms(cp, ours_fb)
            finally:
                rnnfast._core.cuda_set_tiling(*tiling)
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
        results["rows"].append(row)
        cpu_s = f"{row['cpu_fb_ms']:10.2f}" if row["cpu_fb_ms"] else f"{'-':>10}"
        tiled_s = " ".join(f"{row[f'tiled{r}_fb_ms']:8.3f}" if f"tiled{r}_fb_ms" in row else f"{'-':>8}"
                           for r in (32, 64))
        print(f"{cell:8} {T:5d} {N:4d} {H:5d} | {row['fwd_ms']:8.3f} {row['cudnn_fwd_ms']:8.3f} "
              f"{row['cudnn_fwd_ms'] / row['fwd_ms']:6.2f} | {row['fb_ms']:8.3f} {row['cudnn_fb_ms']:8.3f} "
              f"{row['cudnn_fb_ms'] / row['fb_ms']:6.2f} {row['fb_tflops']:8.2f} | {tiled_s} | {cpu_s}   err {err:.1e}",
              flush=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    try:
        results["char"] = bench_char(cp, torch, args.quick)
    except Exception as e:  # recorded; the ESN timings still run
        import traceback
        traceback.print_exc()
        results["char"] = {"error": repr(e)}
        failed = True
    results["esn"] = bench_esn(cp, args.quick)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
