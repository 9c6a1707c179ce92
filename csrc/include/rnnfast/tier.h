// The CPU engine is compiled once per instruction-set tier (baseline SSE4.2, AVX2+FMA, AVX-512 on x86-64;
// NEON on aarch64), each build of the same sources in a namespace of its own, rnnfast::<tier>, chosen by
// the build (-DRNNFAST_TIER=avx2 ...; see CMakeLists.txt). One tier is picked at import (csrc/cpu/dispatch.cpp).
//
// The rule that keeps one build safe on every CPU: every inline function and template that tier code
// compiles lives in the tier's namespace, so the linker can never merge an AVX-512 copy of it with the
// copy another tier (or the ISA-free code) calls. Headers shared with ISA-free code or the CUDA kernels
// wrap their inline code in RNNFAST_TIER_BEGIN / RNNFAST_TIER_END, which open rnnfast::<tier> in a tier's
// sources and nothing elsewhere. tests/test_cpu_tiers.py disassembles the module and checks the rule.
#pragma once

#if defined(RNNFAST_TIER)
#define RNNFAST_TIER_BEGIN namespace RNNFAST_TIER {
#define RNNFAST_TIER_END }
#else
#define RNNFAST_TIER_BEGIN
#define RNNFAST_TIER_END
#endif
