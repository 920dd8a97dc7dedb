#include "core/methods/extremal_perturbation/smooth_max_kernels.h"
#include "core/simd.h"

#include <cmath>
#include <cstring>

#ifdef TS_X86_KERNELS
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers build some intrinsics on a self-initialised "undefined" vector and warn about
// it where they are inlined (GCC bug 105593); nothing in this file reads an uninitialised value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace ts {
namespace smooth_max {
namespace {

constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: y + kRound rounds y to an integer kept in the low bits

// Portable 2^y for y in [-126, 126]: n = round(y) from the rounding constant (no float/int conversion),
// 2^f for f = y - n in [-1/2, 1/2] by a degree-5 polynomial fitted for relative error (1.1e-7 on the
// interval, float coefficients), 2^n by shifting n + 127 into the exponent field. Branch-free, so the
// loops using it vectorise.
__attribute__((always_inline)) inline float exp2_poly(float y) {
  const float t = y + kRound;
  const float f = y - (t - kRound);
  int32_t tbits;
  std::memcpy(&tbits, &t, sizeof tbits);
  float p = 1.326460507698357e-3f;
  p = p * f + 9.671514853835106e-3f;
  p = p * f + 5.5507343262434006e-2f;
  p = p * f + 2.4022242426872253e-1f;
  p = p * f + 6.931470036506653e-1f;
  p = p * f + 1.0f;
  const int32_t bits = static_cast<int32_t>((static_cast<uint32_t>(tbits) + 127u) << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

TS_CLONES void forward_generic(float m, const Support& s, float* S, float* T, int64_t stride) {
  // Over whole padded rows (a loop to `length` leaves a scalar tail, measured 1.5x slower), the padding
  // lanes zeroed by the valid row.
  const int64_t rows = s.rows, padded = s.padded;
  const float* __restrict valid = s.valid;
  for (int64_t a = 0; a < rows; ++a) {
    const float* __restrict wk = s.wk + a * padded;
    float* __restrict Sr = S + a * stride;
    float* __restrict Tr = T + a * stride;
    for (int64_t u = 0; u < padded; ++u) {
      const float y = m * wk[u];
      const float e = valid[u] * exp2_poly(y);
      Sr[u] += e;
      Tr[u] += y * e;
    }
  }
}

TS_CLONES float backward_generic(float m, const Support& s, const float* B, const float* SC, int64_t stride) {
  float lanes[16] = {};
  const float mu = m * s.unit;  // y = m wk = m unit w
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* __restrict w = s.w + a * s.padded;
    const float* __restrict br = B + a * stride;
    const float* __restrict sr = SC + a * stride;
    for (int64_t u = 0; u < s.padded; u += 16)  // w = 0 in the padding
      for (int l = 0; l < 16; ++l) {
        const float y = mu * w[u + l];
        lanes[l] += w[u + l] * exp2_poly(y) * (br[u + l] + sr[u + l] * y);
      }
  }
  return sum_lanes(lanes);
}

#ifdef TS_X86_KERNELS
// Table-based 2^(y / K): y + kRound leaves v = round(y) = K n + j in the low bits of its pattern; a
// permute picks 2^(j / K) from a K-entry table by v's low bits, and adding v << (23 - log2 K) to that
// entry's bits (the table entries are stored less j << (23 - log2 K), so only K n << (23 - log2 K) = n << 23
// remains) multiplies it by 2^n; a degree-3 polynomial gives 2^(f / K) for f = y - v in [-1/2, 1/2]
// (relative error 1.6e-9 for K = 16, 2.7e-8 for K = 8, fitted with float coefficients). Valid while n stays
// in the normal range, |y| / K <= 126. Against the portable 2^y: 6 floating-point multiplies and FMAs
// per vector of terms instead of 11, the forward's and backward's bound on cores with two FMA pipes.
struct Table {
  alignas(64) uint32_t k16[16];
  alignas(32) uint32_t k8[8];
  Table() {
    for (uint32_t j = 0; j < 16; ++j) k16[j] = bits(static_cast<float>(std::exp2(j / 16.0))) - (j << 19);
    for (uint32_t j = 0; j < 8; ++j) k8[j] = bits(static_cast<float>(std::exp2(j / 8.0))) - (j << 20);
  }
  static uint32_t bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
  }
};
const Table& table() {
  static const Table t;
  return t;
}

TS_AVX512 inline __m512 exp2_k16(__m512 y, __m512 tab) {
  const __m512 R = _mm512_set1_ps(kRound);
  const __m512 t = _mm512_add_ps(y, R);
  const __m512 f = _mm512_sub_ps(y, _mm512_sub_ps(t, R));
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.3550325093092397e-05f), f, _mm512_set1_ps(9.384151780977845e-4f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(4.3321698904037476e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  const __m512i v = _mm512_castps_si512(t);
  const __m512i entry = _mm512_castps_si512(_mm512_permutexvar_ps(v, tab));
  return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_add_epi32(entry, _mm512_slli_epi32(v, 19))));
}

TS_AVX512 void forward_avx512(float m, const Support& s, float* S, float* T, int64_t stride) {
  const __m512 tab = _mm512_load_ps(reinterpret_cast<const float*>(table().k16));
  const __m512 vm = _mm512_set1_ps(m);
  const int64_t full = s.length / 16, rest = s.length % 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << rest) - 1);
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* wk = s.wk + a * s.padded;
    float* Sr = S + a * stride;
    float* Tr = T + a * stride;
    for (int64_t v = 0; v < full; ++v) {
      const __m512 y = _mm512_mul_ps(vm, _mm512_loadu_ps(wk + 16 * v));
      const __m512 e = exp2_k16(y, tab);
      _mm512_storeu_ps(Sr + 16 * v, _mm512_add_ps(_mm512_loadu_ps(Sr + 16 * v), e));
      _mm512_storeu_ps(Tr + 16 * v, _mm512_fmadd_ps(y, e, _mm512_loadu_ps(Tr + 16 * v)));
    }
    if (rest) {
      const __m512 y = _mm512_mul_ps(vm, _mm512_loadu_ps(wk + 16 * full));
      const __m512 e = exp2_k16(y, tab);
      const __m512 sv = _mm512_loadu_ps(Sr + 16 * full), tv = _mm512_loadu_ps(Tr + 16 * full);
      _mm512_storeu_ps(Sr + 16 * full, _mm512_mask_add_ps(sv, tail, sv, e));
      _mm512_storeu_ps(Tr + 16 * full, _mm512_mask3_fmadd_ps(y, e, tv, tail));
    }
  }
}

TS_AVX512 float backward_avx512(float m, const Support& s, const float* B, const float* SC, int64_t stride) {
  const __m512 tab = _mm512_load_ps(reinterpret_cast<const float*>(table().k16));
  const __m512 vmu = _mm512_set1_ps(m * s.unit);  // y = m wk = m unit w: one table to load
  const int64_t vectors = (s.length + 15) / 16;   // w = 0 in the padding
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* w = s.w + a * s.padded;
    const float* br = B + a * stride;
    const float* sr = SC + a * stride;
    for (int64_t v = 0; v < vectors; ++v) {
      const __m512 wv = _mm512_loadu_ps(w + 16 * v);
      const __m512 y = _mm512_mul_ps(vmu, wv);
      const __m512 we = _mm512_mul_ps(wv, exp2_k16(y, tab));
      const __m512 q = _mm512_fmadd_ps(_mm512_loadu_ps(sr + 16 * v), y, _mm512_loadu_ps(br + 16 * v));
      if (v & 1)
        acc1 = _mm512_fmadd_ps(we, q, acc1);
      else
        acc0 = _mm512_fmadd_ps(we, q, acc0);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// The kernels above for rows of four vectors whose first takes its terms from the last two (mirror_plan:
// kAvx512Rows, kAvx512Mirrored): three vectors of exponentials per row instead of four, each lane's terms the
// same numbers as those kernels', added or dotted in the same order.
constexpr int64_t kAvx512Rows = 4, kAvx512Mirrored = 1;

TS_AVX512 void forward_avx512_mirrored(float m, const Support& s, float* S, float* T, int64_t stride) {
  const __m512 tab = _mm512_load_ps(reinterpret_cast<const float*>(table().k16));
  const __m512 vm = _mm512_set1_ps(m);
  const __m512i idx = _mm512_loadu_si512(s.mirror_idx);
  const int64_t rest = s.length % 16;
  const __mmask16 tail = rest ? static_cast<__mmask16>((1u << rest) - 1) : static_cast<__mmask16>(0xFFFF);
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* wk = s.wk + a * s.padded;
    float* Sr = S + a * stride;
    float* Tr = T + a * stride;
    __m512 y[kAvx512Rows], e[kAvx512Rows];
#pragma GCC unroll 4
    for (int64_t v = 0; v < kAvx512Rows; ++v) y[v] = _mm512_mul_ps(vm, _mm512_loadu_ps(wk + 16 * v));
#pragma GCC unroll 4
    for (int64_t v = kAvx512Mirrored; v < kAvx512Rows; ++v) e[v] = exp2_k16(y[v], tab);
    e[0] = _mm512_permutex2var_ps(e[2], idx, e[3]);
#pragma GCC unroll 4
    for (int64_t v = 0; v < kAvx512Rows - 1; ++v) {
      _mm512_storeu_ps(Sr + 16 * v, _mm512_add_ps(_mm512_loadu_ps(Sr + 16 * v), e[v]));
      _mm512_storeu_ps(Tr + 16 * v, _mm512_fmadd_ps(y[v], e[v], _mm512_loadu_ps(Tr + 16 * v)));
    }
    constexpr int64_t last = kAvx512Rows - 1;
    const __m512 sv = _mm512_loadu_ps(Sr + 16 * last), tv = _mm512_loadu_ps(Tr + 16 * last);
    _mm512_storeu_ps(Sr + 16 * last, _mm512_mask_add_ps(sv, tail, sv, e[last]));
    _mm512_storeu_ps(Tr + 16 * last, _mm512_mask3_fmadd_ps(y[last], e[last], tv, tail));
  }
}

TS_AVX512 float backward_avx512_mirrored(float m, const Support& s, const float* B, const float* SC, int64_t stride) {
  const __m512 tab = _mm512_load_ps(reinterpret_cast<const float*>(table().k16));
  const __m512 vmu = _mm512_set1_ps(m * s.unit);
  const __m512i idx = _mm512_loadu_si512(s.mirror_idx);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* w = s.w + a * s.padded;
    const float* br = B + a * stride;
    const float* sr = SC + a * stride;
    __m512 y[kAvx512Rows], we[kAvx512Rows];
#pragma GCC unroll 4
    for (int64_t v = 0; v < kAvx512Rows; ++v) {
      const __m512 wv = _mm512_loadu_ps(w + 16 * v);
      y[v] = _mm512_mul_ps(vmu, wv);
      if (v >= kAvx512Mirrored) we[v] = _mm512_mul_ps(wv, exp2_k16(y[v], tab));
    }
    we[0] = _mm512_permutex2var_ps(we[2], idx, we[3]);
#pragma GCC unroll 4
    for (int64_t v = 0; v < kAvx512Rows; ++v) {
      const __m512 q = _mm512_fmadd_ps(_mm512_loadu_ps(sr + 16 * v), y[v], _mm512_loadu_ps(br + 16 * v));
      if (v & 1)
        acc1 = _mm512_fmadd_ps(we[v], q, acc1);
      else
        acc0 = _mm512_fmadd_ps(we[v], q, acc0);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// The sum of a vector's eight lanes (halves, then pairs, then the last two), one order for every AVX2 kernel.
TS_AVX2 inline float sum_avx2(__m256 acc) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}

TS_AVX2 inline __m256 exp2_k8(__m256 y, __m256 tab) {
  const __m256 R = _mm256_set1_ps(kRound);
  const __m256 t = _mm256_add_ps(y, R);
  const __m256 f = _mm256_sub_ps(y, _mm256_sub_ps(t, R));
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.0839102469617501e-4f), f, _mm256_set1_ps(3.7540255580097437e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(8.664340525865555e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i v = _mm256_castps_si256(t);
  const __m256i entry = _mm256_castps_si256(_mm256_permutevar8x32_ps(tab, v));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_add_epi32(entry, _mm256_slli_epi32(v, 20))));
}

TS_AVX2 void forward_avx2(float m, const Support& s, float* S, float* T, int64_t stride) {
  const __m256 tab = _mm256_load_ps(reinterpret_cast<const float*>(table().k8));
  const __m256 vm = _mm256_set1_ps(m);
  const int64_t full = s.length / 8, rest = s.length % 8;
  const __m256 tail = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rest)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* wk = s.wk + a * s.padded;
    float* Sr = S + a * stride;
    float* Tr = T + a * stride;
    for (int64_t v = 0; v < full; ++v) {
      const __m256 y = _mm256_mul_ps(vm, _mm256_loadu_ps(wk + 8 * v));
      const __m256 e = exp2_k8(y, tab);
      _mm256_storeu_ps(Sr + 8 * v, _mm256_add_ps(_mm256_loadu_ps(Sr + 8 * v), e));
      _mm256_storeu_ps(Tr + 8 * v, _mm256_fmadd_ps(y, e, _mm256_loadu_ps(Tr + 8 * v)));
    }
    if (rest) {
      const __m256 y = _mm256_mul_ps(vm, _mm256_loadu_ps(wk + 8 * full));
      const __m256 e = _mm256_and_ps(exp2_k8(y, tab), tail);
      _mm256_storeu_ps(Sr + 8 * full, _mm256_add_ps(_mm256_loadu_ps(Sr + 8 * full), e));
      _mm256_storeu_ps(Tr + 8 * full, _mm256_fmadd_ps(y, e, _mm256_loadu_ps(Tr + 8 * full)));
    }
  }
}

TS_AVX2 float backward_avx2(float m, const Support& s, const float* B, const float* SC, int64_t stride) {
  const __m256 tab = _mm256_load_ps(reinterpret_cast<const float*>(table().k8));
  const __m256 vmu = _mm256_set1_ps(m * s.unit);
  const int64_t vectors = (s.length + 7) / 8;  // w = 0 in the padding
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* w = s.w + a * s.padded;
    const float* br = B + a * stride;
    const float* sr = SC + a * stride;
    for (int64_t v = 0; v < vectors; ++v) {
      const __m256 wv = _mm256_loadu_ps(w + 8 * v);
      const __m256 y = _mm256_mul_ps(vmu, wv);
      const __m256 we = _mm256_mul_ps(wv, exp2_k8(y, tab));
      const __m256 q = _mm256_fmadd_ps(_mm256_loadu_ps(sr + 8 * v), y, _mm256_loadu_ps(br + 8 * v));
      if (v & 1)
        acc1 = _mm256_fmadd_ps(we, q, acc1);
      else
        acc0 = _mm256_fmadd_ps(we, q, acc0);
    }
  }
  return sum_avx2(_mm256_add_ps(acc0, acc1));
}

// The same for the AVX2 kernels: rows of eight vectors whose first three take their terms from vectors 4-7
// (vector k from vectors 6 - k and 7 - k): five vectors of exponentials per row instead of eight.
constexpr int64_t kAvx2Rows = 8, kAvx2Mirrored = 3;

// Lane l of the pair (a, b) at idx[l] (0-7 in a, 8-15 in b); hi: idx[l] >= 8.
TS_AVX2 inline __m256 pick2(__m256 a, __m256 b, __m256i idx, __m256 hi) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, idx), _mm256_permutevar8x32_ps(b, idx), hi);
}

TS_AVX2 void forward_avx2_mirrored(float m, const Support& s, float* S, float* T, int64_t stride) {
  const __m256 tab = _mm256_load_ps(reinterpret_cast<const float*>(table().k8));
  const __m256 vm = _mm256_set1_ps(m);
  const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.mirror_idx));
  const __m256 hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
  const int64_t rest = s.length % 8;
  const __m256 tail = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rest ? rest : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* wk = s.wk + a * s.padded;
    float* Sr = S + a * stride;
    float* Tr = T + a * stride;
    __m256 y[kAvx2Rows], e[kAvx2Rows];
#pragma GCC unroll 8
    for (int64_t v = 0; v < kAvx2Rows; ++v) y[v] = _mm256_mul_ps(vm, _mm256_loadu_ps(wk + 8 * v));
#pragma GCC unroll 8
    for (int64_t v = kAvx2Mirrored; v < kAvx2Rows; ++v) e[v] = exp2_k8(y[v], tab);
    if (rest) e[kAvx2Rows - 1] = _mm256_and_ps(e[kAvx2Rows - 1], tail);  // as forward_avx2's tail (a full last vector: unchanged)
#pragma GCC unroll 8
    for (int64_t k = 0; k < kAvx2Mirrored; ++k) e[k] = pick2(e[kAvx2Rows - 2 - k], e[kAvx2Rows - 1 - k], idx, hi);
#pragma GCC unroll 8
    for (int64_t v = 0; v < kAvx2Rows; ++v) {
      _mm256_storeu_ps(Sr + 8 * v, _mm256_add_ps(_mm256_loadu_ps(Sr + 8 * v), e[v]));
      _mm256_storeu_ps(Tr + 8 * v, _mm256_fmadd_ps(y[v], e[v], _mm256_loadu_ps(Tr + 8 * v)));
    }
  }
}

TS_AVX2 float backward_avx2_mirrored(float m, const Support& s, const float* B, const float* SC, int64_t stride) {
  const __m256 tab = _mm256_load_ps(reinterpret_cast<const float*>(table().k8));
  const __m256 vmu = _mm256_set1_ps(m * s.unit);
  const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.mirror_idx));
  const __m256 hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t a = 0; a < s.rows; ++a) {
    const float* w = s.w + a * s.padded;
    const float* br = B + a * stride;
    const float* sr = SC + a * stride;
    __m256 y[kAvx2Rows], we[kAvx2Rows];
#pragma GCC unroll 8
    for (int64_t v = 0; v < kAvx2Rows; ++v) {
      const __m256 wv = _mm256_loadu_ps(w + 8 * v);
      y[v] = _mm256_mul_ps(vmu, wv);
      if (v >= kAvx2Mirrored) we[v] = _mm256_mul_ps(wv, exp2_k8(y[v], tab));
    }
#pragma GCC unroll 8
    for (int64_t k = 0; k < kAvx2Mirrored; ++k) we[k] = pick2(we[kAvx2Rows - 2 - k], we[kAvx2Rows - 1 - k], idx, hi);
#pragma GCC unroll 8
    for (int64_t v = 0; v < kAvx2Rows; ++v) {
      const __m256 q = _mm256_fmadd_ps(_mm256_loadu_ps(sr + 8 * v), y[v], _mm256_loadu_ps(br + 8 * v));
      if (v & 1)
        acc1 = _mm256_fmadd_ps(we[v], q, acc1);
      else
        acc0 = _mm256_fmadd_ps(we[v], q, acc0);
    }
  }
  return sum_avx2(_mm256_add_ps(acc0, acc1));
}
#endif

}  // namespace

int resolution(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return 16;
    case Isa::avx2:
      return 8;
    default:
      return 1;
  }
}

#ifdef TS_X86_KERNELS
// Whether every row's wk and w are equal, bit for bit, at the columns u and c2 - u for u in [begin, end).
bool symmetric(const float* wk, const float* w, int64_t rows, int64_t padded, int64_t c2, int64_t begin, int64_t end) {
  for (int64_t a = 0; a < rows; ++a)
    for (int64_t u = begin; u < end; ++u)
      if (std::memcmp(wk + a * padded + u, wk + a * padded + c2 - u, sizeof(float)) != 0 ||
          std::memcmp(w + a * padded + u, w + a * padded + c2 - u, sizeof(float)) != 0)
        return false;
  return true;
}
#endif

int64_t mirror_plan(Isa isa, const float* wk, const float* w, int64_t rows, int64_t length, int64_t padded, int64_t off0, int32_t* idx) {
#ifdef TS_X86_KERNELS
  // Column u is at dx = u + off0, so the column at -dx is c2 - u.
  const int64_t c2 = -2 * off0;
  int64_t lanes = 0, vectors = 0, mirrored = 0;
  if (isa == Isa::avx512) {
    lanes = 16, vectors = kAvx512Rows, mirrored = kAvx512Mirrored;
  } else if (isa == Isa::avx2) {
    lanes = 8, vectors = kAvx2Rows, mirrored = kAvx2Mirrored;
  } else {
    return 0;
  }
  if ((length + lanes - 1) / lanes != vectors || padded < vectors * lanes) return 0;
  // Vector k's lane l (u = k lanes + l) maps to lane c2 - u - (vectors - 2 - k) lanes = c2 - (vectors - 2)
  // lanes - l of the pair (vectors - 2 - k, vectors - 1 - k): the same permute for every mirrored vector.
  for (int64_t l = 0; l < lanes; ++l) {
    const int64_t i = c2 - (vectors - 2) * lanes - l;
    if (i < 0 || i >= 2 * lanes) return 0;
    idx[l] = static_cast<int32_t>(i);
  }
  for (int64_t u = 0; u < mirrored * lanes; ++u)
    if (u >= length || c2 - u < 0 || c2 - u >= length) return 0;
  return symmetric(wk, w, rows, padded, c2, 0, mirrored * lanes) ? mirrored : 0;
#else
  (void)isa, (void)wk, (void)w, (void)rows, (void)length, (void)padded, (void)off0, (void)idx;
  return 0;
#endif
}

void forward(Isa isa, float m, const Support& s, float* S, float* T, int64_t stride) {
#ifdef TS_X86_KERNELS
  if (isa == Isa::avx512) return s.mirrored ? forward_avx512_mirrored(m, s, S, T, stride) : forward_avx512(m, s, S, T, stride);
  if (isa == Isa::avx2) return s.mirrored ? forward_avx2_mirrored(m, s, S, T, stride) : forward_avx2(m, s, S, T, stride);
#endif
  forward_generic(m, s, S, T, stride);
}

float backward(Isa isa, float m, const Support& s, const float* B, const float* SC, int64_t stride) {
#ifdef TS_X86_KERNELS
  if (isa == Isa::avx512) return s.mirrored ? backward_avx512_mirrored(m, s, B, SC, stride) : backward_avx512(m, s, B, SC, stride);
  if (isa == Isa::avx2) return s.mirrored ? backward_avx2_mirrored(m, s, B, SC, stride) : backward_avx2(m, s, B, SC, stride);
#endif
  return backward_generic(m, s, B, SC, stride);
}

}  // namespace smooth_max
}  // namespace ts
