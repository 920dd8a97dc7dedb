#include "core/perturbation.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "core/postprocess.h"

namespace ts {
namespace {

// The two pyramid levels a mask value m in [0, 1] blends and the weight of the upper one: w = m (L - 1),
// levels floor(w) and floor(w) + 1 (at most L - 1). The kernels first turn a row of the mask into element
// offsets into its image's pyramid (level k, channel 0, this pixel), then read every channel at offset +
// c * plane with indexed loads: each loop vectorises (gathers), where a per-pixel loop over levels does not.
// A mask value outside [0, 1] (never made by the generator) reads the nearest level, NaN level 0.

// out rows [begin, end) of B x C x H x W (task = b * H + row): (1 - f) y[k0] + f y[k1], the row mirrored
// when flip (jitter).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void apply_rows(const float* mp, const float* yp, const int64_t* ip,
                                                                    float* op, int64_t L, int64_t C, int64_t H, int64_t W, bool flip,
                                                                    int64_t begin, int64_t end) {
  const int64_t plane = H * W;
  std::vector<int32_t> o0v(W), o1v(W);
  std::vector<float> fv(W), rowv(W);
  int32_t* __restrict o0 = o0v.data();
  int32_t* __restrict o1 = o1v.data();
  float* __restrict f = fv.data();
  float* __restrict tmp = rowv.data();
  const float top = static_cast<float>(L - 1);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / H, row = task % H;
    const float* __restrict y = yp + ip[b] * L * C * plane;
    {
      const float* __restrict m = mp + b * plane + row * W;
      const int32_t stride = static_cast<int32_t>(C * plane), start = static_cast<int32_t>(row * W);
      for (int64_t x = 0; x < W; ++x) {
        const float w = m[x] * top;
        const float k = static_cast<float>(static_cast<int32_t>(std::min(top, std::max(0.0f, w))));  // floor; NaN -> 0
        const int32_t k0 = static_cast<int32_t>(k), k1 = static_cast<int32_t>(std::min(top, k + 1.0f));
        f[x] = w - k;
        o0[x] = k0 * stride + start + static_cast<int32_t>(x);
        o1[x] = k1 * stride + start + static_cast<int32_t>(x);
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      const float* __restrict yc = y + c * plane;
      float* __restrict out = op + (b * C + c) * plane + row * W;
      float* __restrict dst = flip ? tmp : out;
      for (int64_t x = 0; x < W; ++x) dst[x] = yc[o0[x]] + f[x] * (yc[o1[x]] - yc[o0[x]]);
      if (flip)
        for (int64_t x = 0; x < W; ++x) out[x] = tmp[W - 1 - x];
    }
  }
}

// d out / d m per pixel: (L - 1) sum_c g_c (y[k1] - y[k0]); g is read mirrored when flip.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void apply_backward_rows(const float* mp, const float* yp, const int64_t* ip,
                                                                             const float* gp, float* rp, int64_t L, int64_t C, int64_t H,
                                                                             int64_t W, bool flip, int64_t begin, int64_t end) {
  const int64_t plane = H * W;
  std::vector<int32_t> o0v(W), o1v(W);
  std::vector<float> fv(W), accv(W), gv(W);
  int32_t* __restrict o0 = o0v.data();
  int32_t* __restrict o1 = o1v.data();
  float* __restrict f = fv.data();
  float* __restrict acc = accv.data();
  float* __restrict gr = gv.data();
  const float top = static_cast<float>(L - 1);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / H, row = task % H;
    const float* __restrict y = yp + ip[b] * L * C * plane;
    {
      const float* __restrict m = mp + b * plane + row * W;
      const int32_t stride = static_cast<int32_t>(C * plane), start = static_cast<int32_t>(row * W);
      for (int64_t x = 0; x < W; ++x) {
        const float w = m[x] * top;
        const float k = static_cast<float>(static_cast<int32_t>(std::min(top, std::max(0.0f, w))));  // floor; NaN -> 0
        const int32_t k0 = static_cast<int32_t>(k), k1 = static_cast<int32_t>(std::min(top, k + 1.0f));
        f[x] = w - k;
        o0[x] = k0 * stride + start + static_cast<int32_t>(x);
        o1[x] = k1 * stride + start + static_cast<int32_t>(x);
      }
    }
    std::fill(acc, acc + W, 0.0f);
    for (int64_t c = 0; c < C; ++c) {
      const float* __restrict yc = y + c * plane;
      const float* __restrict g = gp + (b * C + c) * plane + row * W;
      if (flip) {
        for (int64_t x = 0; x < W; ++x) gr[x] = g[W - 1 - x];
        g = gr;
      }
      for (int64_t x = 0; x < W; ++x) acc[x] += g[x] * (yc[o1[x]] - yc[o0[x]]);
    }
    float* __restrict r = rp + b * plane + row * W;
    for (int64_t x = 0; x < W; ++x) r[x] = acc[x] * top;
  }
}

// Blend of two pyramid levels per pixel: forward and the gradient with respect to the mask.
class ApplyFunction : public torch::autograd::Function<ApplyFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& masks, const at::Tensor& pyramid, const at::Tensor& index, bool flip) {
    RECORD_FUNCTION("ts::ApplyFunction::forward", std::vector<c10::IValue>());
    at::Tensor m = masks.contiguous();
    const int64_t B = m.size(0), L = pyramid.size(1), C = pyramid.size(2), H = pyramid.size(3), W = pyramid.size(4);
    at::Tensor out = at::empty({B, C, H, W}, m.options());
    const float* mp = m.data_ptr<float>();
    const float* yp = pyramid.data_ptr<float>();
    const int64_t* ip = index.data_ptr<int64_t>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) { apply_rows(mp, yp, ip, op, L, C, H, W, flip, begin, end); });
    ctx->save_for_backward({m, pyramid, index});
    ctx->saved_data["flip"] = flip;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor m = saved[0], pyramid = saved[1], index = saved[2];
    at::Tensor g = grads[0].contiguous();
    const bool flip = ctx->saved_data["flip"].toBool();
    const int64_t B = m.size(0), L = pyramid.size(1), C = pyramid.size(2), H = pyramid.size(3), W = pyramid.size(4);
    at::Tensor result = at::empty_like(m);
    const float* mp = m.data_ptr<float>();
    const float* yp = pyramid.data_ptr<float>();
    const int64_t* ip = index.data_ptr<int64_t>();
    const float* gp = g.data_ptr<float>();
    float* rp = result.data_ptr<float>();
    at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) { apply_backward_rows(mp, yp, ip, gp, rp, L, C, H, W, flip, begin, end); });
    return {result, at::Tensor(), at::Tensor(), at::Tensor()};
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
  at::Tensor y = pyramid_.index_select(0, index);  // B x L x C x H x W
  at::Tensor w = masks.unsqueeze(1).mul(static_cast<double>(L - 1));  // B x 1 x 1 x H x W
  at::Tensor k = w.detach().floor();
  at::Tensor f = w - k;
  at::Tensor k0 = k.to(at::kLong).clamp(0, L - 1).expand({y.size(0), 1, y.size(2), y.size(3), y.size(4)});
  at::Tensor k1 = k0.add(1).clamp_max(L - 1);
  at::Tensor y0 = y.gather(1, k0), y1 = y.gather(1, k1);
  return y0.mul(f.neg().add(1)).add(y1.mul(f)).squeeze(1);
}

at::Tensor Perturbation::apply(const at::Tensor& masks, const std::vector<int64_t>& image, bool fused, bool flip) const {
  at::Tensor index = at::tensor(image, at::kLong);
  const bool small = pyramid_.numel() / std::max<int64_t>(1, pyramid_.size(0)) < (int64_t{1} << 31);  // the fused kernels use 32-bit offsets
  if (fused && small && masks.device().is_cpu() && masks.scalar_type() == at::kFloat && pyramid_.device().is_cpu()) {
    return ApplyFunction::apply(masks, pyramid_, index, flip);
  }
  at::Tensor out = composed(masks, index.to(masks.device()));
  return flip ? out.flip({3}) : out;
}

}  // namespace ts
