#include "core/methods/extremal_perturbation/perturbation.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "core/postprocess.h"
#include "core/simd.h"

namespace ts {
namespace {

// Where the masks come from and where each perturbed row goes. The masks are the [top, top + H) x
// [left, left + W) crop of `full` (M x Hf x Wf); output row r perturbs image image[r] with mask mask[r],
// inverted (1 - m) when invert[r] ('delete' and the second half of 'dual'), mirrored when flip (jitter).
struct ApplyPlan {
  int64_t L, C, H, W, Hf, Wf, top, left;
  bool flip;
  const int64_t* mask;    // the rows of the spec tensor (3 x R, contiguous int64): masks,
  const int64_t* invert;  // inversion flags (0 or 1)
  const int64_t* image;   // and images
};

// A run of n <= 16 pixels of one mask row: w = clamp(m, 0, 1) (L - 1) blends levels floor(w) and
// floor(w) + 1 (at most L - 1). Every pixel of a run lies on levels [kmin, kmax]; a level k weighs
// max(0, 1 - |w - k|), which is 1 - f for floor(w), f for the next level and 0 for the others, so the
// kernels loop over the run's few levels with contiguous loads (a smooth mask spans two or three per
// run) instead of gathering two levels per pixel (measured: gathers made the op 2.5x slower).
template <bool Full>
struct Run {
  static constexpr int kMax = 16;
  float w[kMax];
  int32_t k0[kMax], k1[kMax];
  int kmin, kmax;
  int n;
  __attribute__((always_inline)) void load(const float* m, bool invert, float top, int count) {
    n = Full ? kMax : count;
    int lo = 1 << 30, hi = 0;
    for (int l = 0; l < (Full ? kMax : n); ++l) {
      const float v = invert ? 1.0f - m[l] : m[l];
      const float x = std::min(top, std::max(0.0f, v * top));  // NaN -> 0
      w[l] = x;
      k0[l] = static_cast<int32_t>(x);  // floor, x >= 0
      k1[l] = std::min(k0[l] + 1, static_cast<int32_t>(top));
      lo = std::min(lo, k0[l]);
      hi = std::max(hi, k0[l]);
    }
    kmin = lo;
    kmax = std::min(hi + 1, static_cast<int>(top));
  }
};

// Level weights of a run, once for all channels: coef[k - kmin][l].
template <bool Full>
__attribute__((always_inline)) inline void level_weights(const Run<Full>& run, float (*coef)[16]) {
  for (int k = run.kmin; k <= run.kmax; ++k)
    for (int l = 0; l < (Full ? Run<Full>::kMax : run.n); ++l) coef[k - run.kmin][l] = std::max(0.0f, 1.0f - std::abs(run.w[l] - static_cast<float>(k)));
}

// d (blend) / d w of a run: +1 on floor(w) + 1, -1 on floor(w) (0 at the top level, where both are L - 1).
template <bool Full>
__attribute__((always_inline)) inline void level_slopes(const Run<Full>& run, float (*coef)[16]) {
  for (int k = run.kmin; k <= run.kmax; ++k)
    for (int l = 0; l < (Full ? Run<Full>::kMax : run.n); ++l) coef[k - run.kmin][l] = (k == run.k1[l] ? 1.0f : 0.0f) - (k == run.k0[l] ? 1.0f : 0.0f);
}

// sum_k coef_k y_k over the run's levels, for one channel.
template <bool Full>
__attribute__((always_inline)) inline void blend(const Run<Full>& run, const float (*coef)[16], const float* __restrict y, int64_t level_stride,
                                                 float* __restrict dst) {
  float acc[Run<Full>::kMax] = {};
  for (int k = run.kmin; k <= run.kmax; ++k) {
    const float* __restrict yk = y + k * level_stride;
    for (int l = 0; l < (Full ? Run<Full>::kMax : run.n); ++l) acc[l] += coef[k - run.kmin][l] * yk[l];
  }
  for (int l = 0; l < (Full ? Run<Full>::kMax : run.n); ++l) dst[l] = acc[l];
}

// Both blends of a run at once (one pass over the levels): dst = sum_k coef_k y_k, slope = sum_k scoef_k y_k.
template <bool Full>
__attribute__((always_inline)) inline void blend2(const Run<Full>& run, const float (*coef)[16], const float (*scoef)[16], const float* __restrict y,
                                                  int64_t level_stride, float* __restrict dst, float* __restrict slope) {
  float acc[Run<Full>::kMax] = {}, dacc[Run<Full>::kMax] = {};
  for (int k = run.kmin; k <= run.kmax; ++k) {
    const float* __restrict yk = y + k * level_stride;
    for (int l = 0; l < (Full ? Run<Full>::kMax : run.n); ++l) {
      acc[l] += coef[k - run.kmin][l] * yk[l];
      dacc[l] += scoef[k - run.kmin][l] * yk[l];
    }
  }
  for (int l = 0; l < (Full ? Run<Full>::kMax : run.n); ++l) {
    dst[l] = acc[l];
    slope[l] = dacc[l];
  }
}

// The blend of a run of `count` mask pixels (16, or fewer at a row's end) for every channel: y and dst
// point at the run's first pixel of channel 0; channels are `plane` apart in y, `dst_channel` in dst.
// With a slope row (not null; channels `plane` apart), also y[floor(w) + 1] - y[floor(w)] per pixel and
// channel: the blend's derivative in w, which the backward then only has to scale by the gradient.
template <bool Full>
__attribute__((always_inline)) inline void forward_run(const float* m, bool invert, float top, int count, float (*coef)[16], float (*scoef)[16], const float* y,
                                                       int64_t plane, int64_t C, float* dst, int64_t dst_channel, float* slope) {
  Run<Full> run;
  run.load(m, invert, top, count);
  level_weights(run, coef);
  if (slope) {
    level_slopes(run, scoef);
    for (int64_t c = 0; c < C; ++c) blend2(run, coef, scoef, y + c * plane, C * plane, dst + c * dst_channel, slope + c * plane);
  } else {
    for (int64_t c = 0; c < C; ++c) blend(run, coef, y + c * plane, C * plane, dst + c * dst_channel);
  }
}

// Output rows [begin, end) of R x C x H x W (task = r * H + y), and their slopes (R x C x H x W, in the
// mask's own columns, never mirrored) when `slopes` is not null.
TS_CLONES void apply_rows(const ApplyPlan& p, const float* full, const float* pyramid, float* out, float* slopes, int64_t begin, int64_t end) {
  const int64_t plane = p.H * p.W, L = p.L;
  const float top = static_cast<float>(L - 1);
  std::vector<float> tmpv(p.C * p.W);
  float coef[64][16], scoef[64][16];  // levels of a run (at most L <= 64 here; more falls back to the composed path)
  for (int64_t task = begin; task < end; ++task) {
    const int64_t r = task / p.H, row = task % p.H;
    const float* m = full + p.mask[r] * p.Hf * p.Wf + (p.top + row) * p.Wf + p.left;
    const bool invert = p.invert[r] != 0;
    const float* y = pyramid + p.image[r] * L * p.C * plane + row * p.W;
    float* dst = p.flip ? tmpv.data() : out + r * p.C * plane + row * p.W;
    const int64_t dst_channel = p.flip ? p.W : plane;
    float* slope = slopes ? slopes + r * p.C * plane + row * p.W : nullptr;
    int64_t x = 0;
    for (; x + 16 <= p.W; x += 16) forward_run<true>(m + x, invert, top, 16, coef, scoef, y + x, plane, p.C, dst + x, dst_channel, slope ? slope + x : nullptr);
    if (x < p.W)
      forward_run<false>(m + x, invert, top, static_cast<int>(p.W - x), coef, scoef, y + x, plane, p.C, dst + x, dst_channel, slope ? slope + x : nullptr);
    if (p.flip)
      for (int64_t c = 0; c < p.C; ++c) {
        const float* src = tmpv.data() + c * p.W;
        float* o = out + (r * p.C + c) * plane + row * p.W;
        for (int64_t i = 0; i < p.W; ++i) o[i] = src[p.W - 1 - i];
      }
  }
}

// Gradient rows [begin, end) of the full masks (task = mask * Hf + full row): zero outside the crop;
// inside it every output row made from the mask adds scale sum_c g_c slope_c, scale = L - 1 with the sign
// of its inversion (the gradient g read mirrored where the forward mirrored its output).
TS_CLONES void apply_backward_rows(const ApplyPlan& p, const std::vector<std::vector<int64_t>>& rows_of, const float* slopes, const float* grad, float* result,
                                   int64_t begin, int64_t end) {
  const int64_t plane = p.H * p.W, W = p.W;
  const float top = static_cast<float>(p.L - 1);
  std::vector<float> accv(W);
  float* __restrict acc = accv.data();
  for (int64_t task = begin; task < end; ++task) {
    const int64_t i = task / p.Hf, row = task % p.Hf - p.top;
    float* full_row = result + task * p.Wf;
    if (row < 0 || row >= p.H) {
      std::fill(full_row, full_row + p.Wf, 0.0f);
      continue;
    }
    std::fill(full_row, full_row + p.left, 0.0f);
    std::fill(full_row + p.left + W, full_row + p.Wf, 0.0f);
    std::fill(acc, acc + W, 0.0f);
    for (int64_t r : rows_of[i]) {
      const float scale = p.invert[r] != 0 ? -top : top;
      for (int64_t c = 0; c < p.C; ++c) {
        const float* __restrict g = grad + (r * p.C + c) * plane + row * W;
        const float* __restrict d = slopes + (r * p.C + c) * plane + row * W;
        if (p.flip)
          for (int64_t x = 0; x < W; ++x) acc[x] += scale * g[W - 1 - x] * d[x];
        else
          for (int64_t x = 0; x < W; ++x) acc[x] += scale * g[x] * d[x];
      }
    }
    std::copy(acc, acc + W, full_row + p.left);
  }
}

// The perturbed rows from the full masks: forward and the gradient with respect to the full masks (zero
// outside the crop, so no separate crop/slice backward runs).
class ApplyFunction : public torch::autograd::Function<ApplyFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& full, const at::Tensor& pyramid, const at::Tensor& spec, int64_t top,
                            int64_t left, bool flip) {
    RECORD_FUNCTION("ts::ApplyFunction::forward", std::vector<c10::IValue>());
    at::Tensor f = full.contiguous();
    const int64_t R = spec.size(1);
    at::Tensor out = at::empty({R, pyramid.size(2), pyramid.size(3), pyramid.size(4)}, f.options());
    // The slopes only when a gradient will be asked for (not for the final scores).
    at::Tensor slopes = full.requires_grad() ? at::empty_like(out) : at::Tensor();
    const ApplyPlan p = plan(f, pyramid, spec, top, left, flip);
    const float* fp = f.data_ptr<float>();
    const float* yp = pyramid.data_ptr<float>();
    float* op = out.data_ptr<float>();
    float* sp = slopes.defined() ? slopes.data_ptr<float>() : nullptr;
    at::parallel_for(0, R * p.H, 16, [&](int64_t begin, int64_t end) { apply_rows(p, fp, yp, op, sp, begin, end); });
    ctx->save_for_backward({f, pyramid, spec, slopes});
    ctx->saved_data["top"] = top;
    ctx->saved_data["left"] = left;
    ctx->saved_data["flip"] = flip;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor f = saved[0], pyramid = saved[1], spec = saved[2], slopes = saved[3];
    TORCH_CHECK(slopes.defined(), "ApplyFunction: backward without the forward's slopes");
    at::Tensor g = grads[0].contiguous();
    const ApplyPlan p = plan(f, pyramid, spec, ctx->saved_data["top"].toInt(), ctx->saved_data["left"].toInt(), ctx->saved_data["flip"].toBool());
    const int64_t M = f.size(0);
    std::vector<std::vector<int64_t>> rows_of(M);
    for (int64_t r = 0; r < spec.size(1); ++r) rows_of[p.mask[r]].push_back(r);
    at::Tensor result = at::empty_like(f);  // every element written below (zeros outside the crop)
    const float* dp = slopes.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* rp = result.data_ptr<float>();
    at::parallel_for(0, M * p.Hf, 16, [&](int64_t begin, int64_t end) { apply_backward_rows(p, rows_of, dp, gp, rp, begin, end); });
    return {result, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }

 private:
  static ApplyPlan plan(const at::Tensor& f, const at::Tensor& pyramid, const at::Tensor& spec, int64_t top, int64_t left, bool flip) {
    const int64_t* rows = spec.data_ptr<int64_t>();
    const int64_t R = spec.size(1);
    return ApplyPlan{pyramid.size(1), pyramid.size(2), pyramid.size(3), pyramid.size(4), f.size(2), f.size(3), top, left, flip, rows, rows + R, rows + 2 * R};
  }
};

}  // namespace

Perturbation::Perturbation(const at::Tensor& images, const std::string& kind, int64_t levels, double max_blur) : levels_(levels) {
  at::NoGradGuard no_grad;
  at::Tensor s = at::linspace(0, 1, levels, at::kFloat);  // float32, as TorchRay's torch.linspace
  const float* sp = s.data_ptr<float>();
  // Image by image: one image's planes stay in cache through the long blur kernels (measured: building
  // 8 images' pyramids at once took 1.5x as long as 8 one-image pyramids).
  const int64_t N = images.size(0);
  pyramid_ = at::empty({N, levels, images.size(1), images.size(2), images.size(3)}, images.options());
  for (int64_t n = 0; n < N; ++n) {
    at::Tensor image = images.slice(0, n, n + 1);
    for (int64_t l = 0; l < levels; ++l) {
      at::Tensor level;
      if (kind == "fade") {
        level = image.mul(sp[l]);
      } else {
        const float sigma = (1.0f - sp[l]) * static_cast<float>(max_blur);
        level = gaussian_blur(image, sigma);
      }
      pyramid_[n][l].copy_(level[0]);
    }
  }
}

at::Tensor Perturbation::composed(const at::Tensor& masks, const at::Tensor& index) const {
  const int64_t L = levels_;
  at::Tensor y = pyramid_.index_select(0, index);                     // B x L x C x H x W
  at::Tensor w = masks.unsqueeze(1).mul(static_cast<double>(L - 1));  // B x 1 x 1 x H x W
  at::Tensor k = w.detach().floor();
  at::Tensor f = w - k;
  at::Tensor k0 = k.to(at::kLong).clamp(0, L - 1).expand({y.size(0), 1, y.size(2), y.size(3), y.size(4)});
  at::Tensor k1 = k0.add(1).clamp_max(L - 1);
  at::Tensor y0 = y.gather(1, k0), y1 = y.gather(1, k1);
  return y0.mul(f.neg().add(1)).add(y1.mul(f)).squeeze(1);
}

at::Tensor Perturbation::apply(const at::Tensor& masks, const std::vector<int64_t>& image, bool fused, bool flip) const {
  std::vector<int64_t> mask(image.size());
  for (size_t r = 0; r < mask.size(); ++r) mask[r] = static_cast<int64_t>(r);
  return apply_crop(masks, 0, 0, mask, std::vector<bool>(image.size(), false), image, fused, flip);
}

at::Tensor Perturbation::apply_crop(const at::Tensor& full, int64_t top, int64_t left, const std::vector<int64_t>& mask, const std::vector<bool>& invert,
                                    const std::vector<int64_t>& image, bool fused, bool flip) const {
  const int64_t H = pyramid_.size(3), W = pyramid_.size(4), R = static_cast<int64_t>(mask.size());
  const bool small = pyramid_.numel() / std::max<int64_t>(1, pyramid_.size(0)) < (int64_t{1} << 31) && levels_ <= 64;  // the kernels' bounds
  if (fused && small && full.device().is_cpu() && full.scalar_type() == at::kFloat && pyramid_.device().is_cpu()) {
    at::Tensor spec = at::empty({3, R}, at::kLong);  // per row: mask, inverted, image (see ApplyPlan)
    int64_t* sp = spec.data_ptr<int64_t>();
    for (int64_t r = 0; r < R; ++r) {
      sp[r] = mask[r];
      sp[R + r] = invert[r] ? 1 : 0;
      sp[2 * R + r] = image[r];
    }
    return ApplyFunction::apply(full, pyramid_, spec, top, left, flip);
  }
  at::Tensor crop = full.slice(2, top, top + H).slice(3, left, left + W);
  at::Tensor rows = crop.index_select(0, at::tensor(mask, at::kLong).to(full.device()));
  std::vector<float> sign(R);
  for (int64_t r = 0; r < R; ++r) sign[r] = invert[r] ? 1.0f : 0.0f;
  at::Tensor inv = at::tensor(sign, at::kFloat).to(full.device()).view({R, 1, 1, 1});
  rows = rows.mul(inv.mul(-2).add(1)).add(inv);  // 1 - m where inverted
  at::Tensor out = composed(rows, at::tensor(image, at::kLong).to(full.device()));
  return flip ? out.flip({3}) : out;
}

}  // namespace ts
