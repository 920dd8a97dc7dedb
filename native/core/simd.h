// Function multi-versioning for the CPU kernels: on x86-64 Linux (GCC or clang, with glibc's ifuncs) a
// function marked TS_CLONES is compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and the baseline,
// and the loader binds the best one the CPU runs; elsewhere (aarch64, macOS) it is compiled once, for the
// build's target.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define TS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TS_CLONES
#endif
