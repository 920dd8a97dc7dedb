#include "core/methods/extremal_perturbation/area_penalty.h"
#include "core/simd.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#ifdef TS_X86_KERNELS
#include <immintrin.h>
#endif

namespace ts {
namespace {

// Per row: the threshold t (the k-th smallest value), how many values equal to t are paired with 0, and
// how many values equal t.
struct Split {
  float threshold;
  int64_t tied_zeros, tied;
};

// The k-th smallest (0-based `kth`) of n floats. Values >= 0 (masks are) order like their bit patterns
// as unsigned integers, so a radix select finds it with histograms of 11-bit digits (bits 31..21, 20..10,
// 9..0), O(n) whatever the data (nth_element degrades on the mask's many repeated values: measured 0.58
// vs 0.12 ms for 67,600 values). Only the first pass reads all n values; the values that share the chosen
// first digit are copied out, and the later passes read those alone. A negative value (or NaN) sends
// the row to std::nth_element.
TS_CLONES float kth_smallest(const float* v, int64_t n, int64_t kth, std::vector<uint32_t>& hist, std::vector<uint32_t>& picked, std::vector<float>& scratch) {
  constexpr int kBits = 11;
  constexpr uint32_t kBins = 1u << kBits, kDigit = kBins - 1;
  hist.assign(4 * kBins, 0u);  // four interleaved histograms: runs of equal values do not serialise on one counter
  uint32_t* __restrict h = hist.data();
  const uint32_t* __restrict bits = reinterpret_cast<const uint32_t*>(v);
  uint32_t negative = 0;
  for (int64_t i = 0; i < n; ++i) negative |= (bits[i] & 0x7fffffffu) > 0x7f800000u || (bits[i] >> 31 && bits[i] != 0x80000000u);
  if (negative) {
    scratch.assign(v, v + n);
    std::nth_element(scratch.begin(), scratch.begin() + kth, scratch.end());
    return scratch[kth];
  }
  auto key = [](uint32_t b) { return b == 0x80000000u ? 0u : b; };  // -0 is 0
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; ++l) ++h[l * kBins + (key(bits[i + l]) >> 21)];
  for (; i < n; ++i) ++h[key(bits[i]) >> 21];
  int64_t rank = kth;  // the target's rank among the values that share the digits chosen so far
  uint32_t d = 0;
  for (;; ++d) {
    const int64_t count = int64_t{h[d]} + h[kBins + d] + h[2 * kBins + d] + h[3 * kBins + d];
    if (rank < count) break;
    rank -= count;
  }
  uint32_t prefix = d << 21;
  picked.resize(static_cast<size_t>(n));
  int64_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t b = key(bits[j]);
    picked[m] = b;
    m += (b >> 21) == d;
  }
  const int shifts[2] = {10, 0};
  for (int pass = 0; pass < 2; ++pass) {
    const int shift = shifts[pass];
    std::fill(h, h + kBins, 0u);
    for (int64_t j = 0; j < m; ++j) ++h[(picked[j] >> shift) & kDigit];
    uint32_t e = 0;
    while (rank >= static_cast<int64_t>(h[e])) rank -= h[e++];
    prefix |= e << shift;
    int64_t kept = 0;  // keep only the values with this digit too
    for (int64_t j = 0; j < m; ++j) {
      const uint32_t b = picked[j];
      picked[kept] = b;
      kept += ((b >> shift) & kDigit) == e;
    }
    m = kept;
  }
  float out;
  std::memcpy(&out, &prefix, sizeof out);
  return out;
}

// Copies the values of v in [lo, hi] to dst (room for n + 16), in order; returns how many. On AVX-512 CPUs
// by compressing 16 lanes at a time in a register (measured: the portable branch-free loop, every value
// written and the kept ones advanced, took 3 cycles a value, the penalty's largest cost inside the loop).
int64_t compact_portable(const float* __restrict v, int64_t n, float lo, float hi, float* __restrict dst) {
  int64_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float x = v[j];
    dst[m] = x;
    m += x >= lo && x <= hi;
  }
  return m;
}

#ifdef TS_X86_KERNELS
TS_AVX512 int64_t compact_avx512(const float* v, int64_t n, float lo, float hi, float* dst) {
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  int64_t m = 0, j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 x = _mm512_loadu_ps(v + j);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, vlo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, vhi, _CMP_LE_OQ);
    _mm512_storeu_ps(dst + m, _mm512_maskz_compress_ps(keep, x));
    m += __builtin_popcount(keep);
  }
  return m + compact_portable(v + j, n - j, lo, hi, dst + m);
}
#endif

// The process-wide kernel choice, as the mask generator's (TORCH_SALIENCY_SIMD included).
int64_t compact(const float* v, int64_t n, float lo, float hi, float* dst) {
#ifdef TS_X86_KERNELS
  if (simd::chosen() == simd::Isa::avx512) return compact_avx512(v, n, lo, hi, dst);
#endif
  return compact_portable(v, n, lo, hi, dst);
}

// The k-th smallest (0-based `kth`) of n floats when it lies in [lo, hi]: one vectorised pass counts the
// values below lo and up to hi (and NaNs), a second copies out those in [lo, hi] for std::nth_element.
// False (nothing found) when the window misses the rank or a NaN is present. With a window around the
// previous step's threshold (masks move little from one step to the next) this costs two streaming passes
// and a small selection, against the radix select's histogram passes (measured 0.13 ms for 70,756 values).
TS_CLONES bool kth_in_window(const float* __restrict v, int64_t n, int64_t kth, float lo, float hi, std::vector<float>& scratch, float& out) {
  int32_t lb[16] = {}, lu[16] = {}, ln[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) {
      const float x = v[i + l];
      lb[l] += x < lo;
      lu[l] += x <= hi;
      ln[l] += x != x;
    }
  int64_t below = 0, upto = 0, nans = 0;
  for (int l = 0; l < 16; ++l) {
    below += lb[l];
    upto += lu[l];
    nans += ln[l];
  }
  for (; i < n; ++i) {
    below += v[i] < lo;
    upto += v[i] <= hi;
    nans += v[i] != v[i];
  }
  if (nans > 0 || kth < below || kth >= upto) return false;
  scratch.resize(static_cast<size_t>(n) + 16);
  const int64_t m = compact(v, n, lo, hi, scratch.data());
  std::nth_element(scratch.begin(), scratch.begin() + (kth - below), scratch.begin() + m);
  out = scratch[kth - below];
  return true;
}

// mean over the row of (v - r)^2, with r = 0 for v < t, 1 for v > t, and for the values equal to t the
// first `tied_zeros` paired with 0 and the rest with 1; returns the counts below t and equal to t too.
TS_CLONES double row_penalty(const float* v, int64_t n, float t, int64_t& below, int64_t& tied) {
  double lanes[16] = {};
  int32_t lb[16] = {}, lt[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) {
      const float x = v[i + l];
      const float d = x - (x > t ? 1.0f : 0.0f);
      lanes[l] += static_cast<double>(d * d);
      lb[l] += x < t;
      lt[l] += x == t;
    }
  double sum = 0;
  below = 0;
  tied = 0;
  for (int l = 0; l < 16; ++l) {
    sum += lanes[l];
    below += lb[l];
    tied += lt[l];
  }
  for (; i < n; ++i) {
    const float d = v[i] - (v[i] > t ? 1.0f : 0.0f);
    sum += static_cast<double>(d * d);
    below += v[i] < t;
    tied += v[i] == t;
  }
  return sum;
}

// d penalty / d v = scale (v - r) with r as above.
TS_CLONES void row_penalty_grad(const float* __restrict v, float* __restrict r, int64_t n, float t, int64_t tied_zeros, bool ties_to_one, float scale) {
  for (int64_t i = 0; i < n; ++i) r[i] = scale * (v[i] - (v[i] > t ? 1.0f : 0.0f));
  if (!ties_to_one) return;
  // The ties after the first tied_zeros (index order) are paired with 1: find where they start, then
  // one pass over the rest.
  int64_t i = 0, seen = 0;
  for (; i < n && seen < tied_zeros; ++i) seen += v[i] == t;
  for (; i < n; ++i) r[i] = v[i] == t ? scale * (t - 1.0f) : r[i];
}

class AreaPenaltyFunction : public torch::autograd::Function<AreaPenaltyFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& masks, const at::Tensor& zeros, PenaltyHints* hints) {
    RECORD_FUNCTION("ts::AreaPenaltyFunction::forward", std::vector<c10::IValue>());
    at::Tensor m = masks.contiguous();
    const int64_t rows = m.size(0), n = m.numel() / std::max<int64_t>(1, rows);
    at::Tensor out = at::empty({rows}, m.options());
    at::Tensor split = at::empty({rows, 3}, m.options().dtype(at::kDouble));  // threshold, tied zeros, tied
    const float* mp = m.data_ptr<float>();
    const int64_t* kp = zeros.data_ptr<int64_t>();
    float* op = out.data_ptr<float>();
    double* sp = split.data_ptr<double>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      thread_local std::vector<uint32_t> hist, picked;
      thread_local std::vector<float> scratch;
      for (int64_t b = begin; b < end; ++b) {
        const float* v = mp + b * n;
        const int64_t k = std::min<int64_t>(std::max<int64_t>(kp[b], 0), n);
        // k = 0: every value is paired with 1 (no threshold). With a hint, first the window around the
        // previous threshold, as wide as a few of its last moves.
        float t = -std::numeric_limits<float>::infinity();
        if (k > 0) {
          const bool hinted = hints && std::isfinite(hints->threshold[b]);  // area_penalty sized the hints to the rows
          const float h = hinted ? hints->threshold[b] : 0.0f, d = hinted ? hints->width[b] : 0.0f;
          if (!(hinted && kth_in_window(v, n, k - 1, h - d, h + d, scratch, t))) t = kth_smallest(v, n, k - 1, hist, picked, scratch);
          if (hints) {
            hints->width[b] = std::min(std::max(hinted ? 4.0f * std::abs(t - h) : 0.01f, 1e-4f), 0.25f);
            hints->threshold[b] = t;
          }
        }
        // One pass pairing v <= t with 0 and v > t with 1; then the ties beyond the k zeros move to 1.
        int64_t below = 0, tied = 0;
        const double paired = row_penalty(v, n, t, below, tied);
        const Split s{t, k - below, tied};
        // Ties paired with 1 instead of 0 add (t - 1)^2 - t^2 each (none when k = 0, where t = -inf).
        const double sum = s.tied > s.tied_zeros ? paired + static_cast<double>(s.tied - s.tied_zeros) * (1.0 - 2.0 * static_cast<double>(t)) : paired;
        op[b] = static_cast<float>(sum / static_cast<double>(n));
        sp[3 * b] = s.threshold;
        sp[3 * b + 1] = static_cast<double>(s.tied_zeros);
        sp[3 * b + 2] = static_cast<double>(s.tied);
      }
    });
    ctx->save_for_backward({m, split});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor m = saved[0], split = saved[1];
    at::Tensor g = grads[0].contiguous();
    const int64_t rows = m.size(0), n = m.numel() / std::max<int64_t>(1, rows);
    at::Tensor result = at::empty_like(m);
    const float* mp = m.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    const double* sp = split.data_ptr<double>();
    float* rp = result.data_ptr<float>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const Split s{static_cast<float>(sp[3 * b]), static_cast<int64_t>(sp[3 * b + 1]), static_cast<int64_t>(sp[3 * b + 2])};
        const float scale = 2.0f * gp[b] / static_cast<float>(n);
        row_penalty_grad(mp + b * n, rp + b * n, n, s.threshold, s.tied_zeros, s.tied > s.tied_zeros, scale);
      }
    });
    return {result, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor area_penalty(const at::Tensor& masks, const std::vector<int64_t>& zeros, bool fused, PenaltyHints* hints) {
  const int64_t rows = masks.size(0), n = masks.numel() / std::max<int64_t>(1, rows);
  if (fused && masks.device().is_cpu() && masks.scalar_type() == at::kFloat) {
    if (hints && static_cast<int64_t>(hints->threshold.size()) != rows) {
      hints->threshold.assign(rows, std::numeric_limits<float>::quiet_NaN());
      hints->width.assign(rows, 0.01f);
    }
    return AreaPenaltyFunction::apply(masks, at::tensor(zeros, at::kLong), hints);
  }
  // Composed: TorchRay's formulation, mean((sort(m) - r)^2), with a stable sort (defined tie order).
  at::Tensor reference = at::ones({rows, n}, masks.options());
  for (int64_t i = 0; i < rows; ++i) reference[i].slice(0, 0, zeros[i]).zero_();
  at::Tensor sorted = std::get<0>(masks.reshape({rows, n}).sort(/*stable=*/true, 1, /*descending=*/false));
  return (sorted - reference).pow(2).mean(1);
}

}  // namespace ts
