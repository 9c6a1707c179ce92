// The CPU reservoir engine: the whole sequence in one call, for a batch of sequences and a population of
// reservoirs sharing one W (see rnnfast/reservoir.h). The input projection of all steps is one GEMM;
// inside the loop, one W·x per step (dense: the packed kernel; CSR: a row-parallel SpMV/SpMM) fused with
// the leaky-integrator update from the shared cell math.
#include <algorithm>
#include <cstring>
#include <vector>

#include "rnnfast/cell_math.h"
#include "rnnfast/parallel.h"
#include "rnnfast/reservoir.h"
#include "rnnfast/simd.h"
#include "rnnfast/small_gemm.h"

namespace rnnfast {
namespace {

// Dense W, state layout [P*B, N] (row r = p*B + b), which is also the layout of one step of `states`.
template <typename T>
void run_dense(const ReservoirParams<T>& p, const T* up) {
  const int Ts = p.steps, B = p.batch, N = p.units, PB = p.population * p.batch;
  PackedB<T> w;
  pack_b(w, p.w_dense, N, N, N, true);  // W^T: the step computes X · W^T
  std::vector<T> wx(index_t(PB) * N), x0(index_t(PB) * N, T(0));
  if (p.x0) std::memcpy(x0.data(), p.x0, sizeof(T) * x0.size());
  const bool parallel_rows = index_t(PB) * N >= 32768;
  for (int t = 0; t < Ts; ++t) {
    const T* xprev = t == 0 ? x0.data() : p.states + index_t(t - 1) * PB * N;
    T* xt = p.states + index_t(t) * PB * N;
    small_gemm(PB, xprev, N, w, wx.data(), N, false);
    parallel_for(PB, parallel_rows, [&](int r) {
      const int m = r / B, b = r % B;
      const T s = p.sr_scale[m], c = p.in_scale[m];
      const T* __restrict a = p.leak + index_t(m) * N;
      const T* __restrict u = up + (index_t(t) * B + b) * N;
      const T* __restrict q = wx.data() + index_t(r) * N;
      const T* __restrict xp = xprev + index_t(r) * N;
      T* __restrict x = xt + index_t(r) * N;
      if (p.bias) {
        for (int i = 0; i < N; ++i) x[i] = leaky_unit(xp[i], s * q[i] + c * u[i] + p.bias[i], a[i]);
      } else {
        for (int i = 0; i < N; ++i) x[i] = leaky_unit(xp[i], s * q[i] + c * u[i], a[i]);
      }
    });
  }
}

// The sparse dot product of one row with x. Kept scalar with four accumulators: vectorised, it becomes
// AVX-512 gathers, which are slower than scalar loads on AMD Zen (measured 1.7x in float32).
template <typename T>
__attribute__((optimize("no-tree-vectorize"), noinline)) T csr_row_dot(
    index_t k, index_t end, const std::int32_t* __restrict indices, const T* __restrict values,
    const T* __restrict x) {
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (; k + 4 <= end; k += 4) {
    s0 += values[k] * x[indices[k]];
    s1 += values[k + 1] * x[indices[k + 1]];
    s2 += values[k + 2] * x[indices[k + 2]];
    s3 += values[k + 3] * x[indices[k + 3]];
  }
  for (; k < end; ++k) s0 += values[k] * x[indices[k]];
  return (s0 + s1) + (s2 + s3);
}

// acc[0:PB] = sum over the row's nonzeros of v * x[j, 0:PB], x: [N, PB]. Chunks of 4 vectors stay in
// registers across the nonzeros (a plain loop over PB reloads and stores acc for every nonzero).
template <typename T>
void csr_row_times_block(index_t k0, index_t k1, const std::int32_t* __restrict indices, const T* __restrict values,
                         const T* __restrict x, int PB, T* __restrict acc) {
  using V = typename Vec<T>::type;
  constexpr int L = lanes<T>(), CW = 4 * L;
  int c = 0;
  for (; c + CW <= PB; c += CW) {
    V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{};
    for (index_t k = k0; k < k1; ++k) {
      const T v = values[k];
      const V* xr = reinterpret_cast<const V*>(x + index_t(indices[k]) * PB + c);
      a0 += v * xr[0];
      a1 += v * xr[1];
      a2 += v * xr[2];
      a3 += v * xr[3];
    }
    V* out = reinterpret_cast<V*>(acc + c);
    out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3;
  }
  if (c < PB) {
    for (int r = c; r < PB; ++r) acc[r] = T(0);
    for (index_t k = k0; k < k1; ++k) {
      const T v = values[k];
      const T* __restrict xr = x + index_t(indices[k]) * PB;
      for (int r = c; r < PB; ++r) acc[r] += v * xr[r];
    }
  }
}

// CSR W. One sequence: x_prev is a vector and each row is a sparse dot product (gather). Several
// (population x batch): the state is kept as [N, P*B] so each nonzero W[i,j] scales one contiguous row
// x_prev[j, :], and is read once per step for all of them.
template <typename T>
void run_csr(const ReservoirParams<T>& p, const T* up) {
  const int Ts = p.steps, B = p.batch, N = p.units, P = p.population, PB = P * B;
  const std::int32_t* __restrict indptr = p.indptr;
  const std::int32_t* __restrict indices = p.indices;
  const T* __restrict values = p.values;
  const index_t nnz = indptr[N];
  std::vector<T> xa(index_t(N) * PB, T(0)), xb(index_t(N) * PB);
  if (p.x0)  // [P,B,N] -> [N,PB]
    for (int r = 0; r < PB; ++r)
      for (int i = 0; i < N; ++i) xa[index_t(i) * PB + r] = p.x0[index_t(r) * N + i];
  // One parallel region for the whole time loop: each thread owns a fixed range of rows (balanced by
  // nonzeros) and the threads meet at a spin barrier once per step.
  const bool parallel = (nnz + N) * index_t(PB) >= 20000;
  T* const buf[2] = {xa.data(), xb.data()};
  parallel_region(parallel ? 2 : 1, [&](int tid, int nt, SpinBarrier& barrier) {
    const index_t per = (nnz + N + nt - 1) / nt;
    int r0 = 0, r1 = N;  // rows [r0, r1) of this thread: the cut where indptr[i] + i crosses tid * per
    for (int k = 0, i = 0; k <= nt; ++k) {
      while (i < N && index_t(indptr[i]) + i < index_t(k) * per) ++i;
      if (k == tid) r0 = i;
      if (k == tid + 1) { r1 = i; break; }
    }
    if (tid == nt - 1) r1 = N;
    std::vector<T> acc(PB);
    for (int t = 0; t < Ts; ++t) {
      const T* __restrict xprev = buf[t & 1];
      T* __restrict xnext = buf[(t + 1) & 1];
      T* st = p.states + index_t(t) * PB * N;
      const T* ut = up + index_t(t) * B * N;
      if (PB == 1) {
        const T s = p.sr_scale[0], c = p.in_scale[0];
        for (int i = r0; i < r1; ++i) {
          const T dot = csr_row_dot(indptr[i], indptr[i + 1], indices, values, xprev);
          const T bi = p.bias ? p.bias[i] : T(0);
          const T x = leaky_unit(xprev[i], s * dot + c * ut[i] + bi, p.leak[i]);
          xnext[i] = x;
          st[i] = x;
        }
      } else {
        T* __restrict a = acc.data();
        for (int i = r0; i < r1; ++i) {
          const T bi = p.bias ? p.bias[i] : T(0);
          csr_row_times_block(indptr[i], indptr[i + 1], indices, values, xprev, PB, a);
          const T* __restrict xp = xprev + index_t(i) * PB;
          T* __restrict xn = xnext + index_t(i) * PB;
          for (int r = 0; r < PB; ++r) {
            const int m = r / B, b = r % B;
            const T pre = p.sr_scale[m] * a[r] + p.in_scale[m] * ut[index_t(b) * N + i] + bi;
            xn[r] = leaky_unit(xp[r], pre, p.leak[index_t(m) * N + i]);
          }
        }
        // this thread's rows of the step's states ([P*B, N] layout), in blocks of 64 rows
        for (int b0 = r0; b0 < r1; b0 += 64) {
          const int b1 = std::min(r1, b0 + 64);
          for (int r = 0; r < PB; ++r) {
            T* __restrict dst = st + index_t(r) * N;
            for (int i = b0; i < b1; ++i) dst[i] = xnext[index_t(i) * PB + r];
          }
        }
      }
      barrier.wait();  // every row of x_t is written before any thread reads it
    }
  });
}

}  // namespace

template <typename T>
void reservoir_run_cpu(const ReservoirParams<T>& p) {
  const EngineCall in_flight;
  const int Ts = p.steps, B = p.batch, I = p.inputs, N = p.units, PB = p.population * p.batch;
  // W_in u for every step and sequence, shared by the population: up[T*B, N] = u · W_in^T
  std::vector<T> up(index_t(Ts) * B * N);
  PackedB<T> w_in;
  pack_b(w_in, p.w_in, I, I, N, true);
  small_gemm(Ts * B, p.u, I, w_in, up.data(), N, false);
  if (p.w_dense) run_dense(p, up.data());
  else run_csr(p, up.data());
  std::memcpy(p.x_last, p.states + index_t(Ts - 1) * PB * N, sizeof(T) * index_t(PB) * N);
}

template void reservoir_run_cpu<float>(const ReservoirParams<float>&);
template void reservoir_run_cpu<double>(const ReservoirParams<double>&);

}  // namespace rnnfast
