// How the CPU kernels are built and chosen.
//
// Function multi-versioning: on x86-64 Linux (GCC or clang, with glibc's ifuncs) a function marked
// TS_CLONES is compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and the baseline, and the loader
// binds the best one the CPU runs; elsewhere (aarch64, macOS) it is compiled once, for the build's target.
//
// Explicit vector kernels: where TS_X86_KERNELS is defined, a function marked TS_AVX512 or TS_AVX2 may use
// that instruction set's intrinsics (<immintrin.h>); callers pick one with simd::chosen() at run time and
// keep a portable version for the rest.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define TS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TS_CLONES
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TS_X86_KERNELS 1
#define TS_AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))
#define TS_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace ts {
namespace simd {

enum class Isa { generic, avx2, avx512 };

// The best explicit kernels this CPU runs (generic off x86-64).
Isa best();
// The kernels in use, once per process: best(), or the lesser one TORCH_SALIENCY_SIMD=generic|avx2 names.
Isa chosen();
const char* name(Isa isa);

}  // namespace simd
}  // namespace ts
