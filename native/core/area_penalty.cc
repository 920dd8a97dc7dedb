#include "core/area_penalty.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>

namespace ts {
namespace {

// Per row: the threshold t (the k-th smallest value) and how many values equal to t are paired with 0.
struct Split {
  float threshold;
  int64_t tied_zeros;
};

// The reference value paired with v (0 or 1), walking the row in index order; `tied` counts the values
// equal to the threshold seen so far.
inline float reference_of(float v, const Split& s, int64_t& tied) {
  if (v < s.threshold) return 0.0f;
  if (v > s.threshold) return 1.0f;
  return tied++ < s.tied_zeros ? 0.0f : 1.0f;
}

class AreaPenaltyFunction : public torch::autograd::Function<AreaPenaltyFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& masks, const at::Tensor& zeros) {
    RECORD_FUNCTION("ts::AreaPenaltyFunction::forward", std::vector<c10::IValue>());
    at::Tensor m = masks.contiguous();
    const int64_t rows = m.size(0), n = m.numel() / std::max<int64_t>(1, rows);
    at::Tensor out = at::empty({rows}, m.options());
    at::Tensor split = at::empty({rows, 2}, m.options().dtype(at::kDouble));  // threshold, tied zeros
    const float* mp = m.data_ptr<float>();
    const int64_t* kp = zeros.data_ptr<int64_t>();
    float* op = out.data_ptr<float>();
    double* sp = split.data_ptr<double>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      thread_local std::vector<float> scratch;
      for (int64_t b = begin; b < end; ++b) {
        const float* v = mp + b * n;
        const int64_t k = std::min<int64_t>(std::max<int64_t>(kp[b], 0), n);
        Split s{-std::numeric_limits<float>::infinity(), 0};  // k = 0: every value is paired with 1
        if (k > 0) {
          scratch.assign(v, v + n);
          std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end());
          s.threshold = scratch[k - 1];
          // scratch[0, k-1) holds values <= t: those below t are paired with 0, the rest of the k zeros go to ties.
          int64_t below = 0;
          for (int64_t i = 0; i < k - 1; ++i) below += scratch[i] < s.threshold;
          s.tied_zeros = k - below;
        }
        double sum = 0;
        int64_t tied = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float d = v[i] - reference_of(v[i], s, tied);
          sum += static_cast<double>(d) * d;
        }
        op[b] = static_cast<float>(sum / static_cast<double>(n));
        sp[2 * b] = s.threshold;
        sp[2 * b + 1] = static_cast<double>(s.tied_zeros);
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
        const Split s{static_cast<float>(sp[2 * b]), static_cast<int64_t>(sp[2 * b + 1])};
        const float scale = 2.0f * gp[b] / static_cast<float>(n);
        const float* v = mp + b * n;
        float* r = rp + b * n;
        int64_t tied = 0;
        for (int64_t i = 0; i < n; ++i) r[i] = scale * (v[i] - reference_of(v[i], s, tied));
      }
    });
    return {result, at::Tensor()};
  }
};

}  // namespace

at::Tensor area_penalty(const at::Tensor& masks, const std::vector<int64_t>& zeros, bool fused) {
  const int64_t rows = masks.size(0), n = masks.numel() / std::max<int64_t>(1, rows);
  if (fused && masks.device().is_cpu() && masks.scalar_type() == at::kFloat) {
    return AreaPenaltyFunction::apply(masks, at::tensor(zeros, at::kLong));
  }
  // Composed: TorchRay's formulation, mean((sort(m) - r)^2), with a stable sort (defined tie order).
  at::Tensor reference = at::ones({rows, n}, masks.options());
  for (int64_t i = 0; i < rows; ++i) reference[i].slice(0, 0, zeros[i]).zero_();
  at::Tensor sorted = std::get<0>(masks.reshape({rows, n}).sort(/*stable=*/true, 1, /*descending=*/false));
  return (sorted - reference).pow(2).mean(1);
}

}  // namespace ts
