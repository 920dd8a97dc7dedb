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

// The two pyramid levels a mask value blends and the weight of the upper one: w = m (L - 1),
// levels floor(w) and floor(w) + 1, both clamped to [0, L - 1].
struct Blend {
  int64_t k0, k1;
  float f;
};
inline Blend blend_of(float m, int64_t L) {
  const float w = m * static_cast<float>(L - 1);
  const float k = std::floor(w);
  const int64_t k0 = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(k), 0), L - 1);
  return {k0, std::min<int64_t>(k0 + 1, L - 1), w - k};
}

// Blend of two pyramid levels per pixel: forward and the gradient with respect to the mask.
class ApplyFunction : public torch::autograd::Function<ApplyFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& masks, const at::Tensor& pyramid, const at::Tensor& index, bool flip) {
    RECORD_FUNCTION("ts::ApplyFunction::forward", std::vector<c10::IValue>());
    at::Tensor m = masks.contiguous();
    const int64_t B = m.size(0), L = pyramid.size(1), C = pyramid.size(2), H = pyramid.size(3), W = pyramid.size(4);
    const int64_t plane = H * W;
    at::Tensor out = at::empty({B, C, H, W}, m.options());
    const float* mp = m.data_ptr<float>();
    const float* yp = pyramid.data_ptr<float>();
    const int64_t* ip = index.data_ptr<int64_t>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / H, row = task % H;
        const float* y = yp + ip[b] * L * C * plane;
        for (int64_t x = 0; x < W; ++x) {
          const int64_t p = row * W + x;
          const auto [k0, k1, f] = blend_of(mp[b * plane + p], L);
          const int64_t q = flip ? row * W + (W - 1 - x) : p;  // output pixel (mirrored for jitter)
          for (int64_t c = 0; c < C; ++c) {
            const float y0 = y[(k0 * C + c) * plane + p], y1 = y[(k1 * C + c) * plane + p];
            op[(b * C + c) * plane + q] = (1.0f - f) * y0 + f * y1;
          }
        }
      }
    });
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
    const int64_t plane = H * W;
    at::Tensor result = at::empty_like(m);
    const float* mp = m.data_ptr<float>();
    const float* yp = pyramid.data_ptr<float>();
    const int64_t* ip = index.data_ptr<int64_t>();
    const float* gp = g.data_ptr<float>();
    float* rp = result.data_ptr<float>();
    at::parallel_for(0, B * H, 16, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / H, row = task % H;
        const float* y = yp + ip[b] * L * C * plane;
        for (int64_t x = 0; x < W; ++x) {
          const int64_t p = row * W + x;
          const auto [k0, k1, f] = blend_of(mp[b * plane + p], L);
          (void)f;  // d out / d m does not depend on the weight itself
          const int64_t q = flip ? row * W + (W - 1 - x) : p;
          float s = 0;
          for (int64_t c = 0; c < C; ++c) s += gp[(b * C + c) * plane + q] * (y[(k1 * C + c) * plane + p] - y[(k0 * C + c) * plane + p]);
          rp[b * plane + p] = s * static_cast<float>(L - 1);
        }
      }
    });
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
  if (fused && masks.device().is_cpu() && masks.scalar_type() == at::kFloat && pyramid_.device().is_cpu()) {
    return ApplyFunction::apply(masks, pyramid_, index, flip);
  }
  at::Tensor out = composed(masks, index.to(masks.device()));
  return flip ? out.flip({3}) : out;
}

}  // namespace ts
