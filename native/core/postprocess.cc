#include "core/postprocess.h"

#include <cmath>

namespace ts {

at::Tensor gaussian_blur(const at::Tensor& x, double sigma_in) {
  const float sigma = static_cast<float>(sigma_in);
  if (!(sigma > 0)) return x;
  const int64_t half = static_cast<int64_t>(std::ceil(4.0f * sigma));
  const float denom = static_cast<float>(std::sqrt(2.0)) * sigma + 1.19209290e-07f;
  at::Tensor t = at::arange(-half, half + 1, x.options().dtype(at::kFloat)).div(denom);
  at::Tensor k = at::exp(t.mul(t).neg());
  k = k.div(k.sum());
  // Every channel as its own single-channel image: a plain (non-grouped) convolution is much faster on
  // CPU than a depthwise one with kernels this long.
  const auto sizes = x.sizes().vec();
  at::Tensor planes = x.reshape({-1, 1, sizes[2], sizes[3]});
  at::Tensor ky = k.view({1, 1, -1, 1});
  at::Tensor kx = k.view({1, 1, 1, -1});
  const at::Tensor none;
  at::Tensor y = at::conv2d(planes, ky, none, at::IntArrayRef{1, 1}, at::IntArrayRef{half, 0});
  y = at::conv2d(y, kx, none, at::IntArrayRef{1, 1}, at::IntArrayRef{0, half});
  return y.reshape(sizes);
}

at::Tensor postprocess(const at::Tensor& maps, const Options& options) {
  const std::optional<std::vector<double>> resize = options.list_or_null("resize");
  const double smooth = options.number("smooth");
  const bool three = maps.dim() == 3;
  at::Tensor m = three ? maps.unsqueeze(1) : maps;
  if (resize) {
    const int64_t height = static_cast<int64_t>(resize->at(0)), width = static_cast<int64_t>(resize->at(1));
    if (m.size(2) != height || m.size(3) != width) m = at::upsample_bilinear2d(m, {height, width}, /*align_corners=*/false);
  }
  if (smooth > 0) m = gaussian_blur(m, smooth * static_cast<double>(std::max(m.size(2), m.size(3))));
  return three ? m.squeeze(1) : m;
}

}  // namespace ts
