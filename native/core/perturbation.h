// The perturbation pyramid of extremal perturbations and how a mask picks from it. For each image, L
// levels for s = linspace(0, 1, L): 'blur' is a Gaussian blur with sigma (1 - s) max_blur (TorchRay's
// imsmooth: separable, half-width ceil(4 sigma), zero padding), 'fade' is x * s. Level 0 is the most
// perturbed, level L-1 the image itself. A mask value m in [0, 1] selects w = m (L-1) and interpolates
// linearly between levels floor(w) and min(floor(w) + 1, L-1), per pixel and for every channel.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace ts {

// TorchRay's imsmooth (its kernel, exp(-(i / (sqrt(2) sigma + eps))^2) normalised to sum 1).
at::Tensor imsmooth(const at::Tensor& x, double sigma);

class Perturbation {
 public:
  // images: N x C x H x W (the model's input, on its device). kind: "blur" | "fade".
  Perturbation(const at::Tensor& images, const std::string& kind, int64_t levels, double max_blur);

  // masks: B x 1 x H x W in [0, 1] (autograd flows to them); image: for each mask, its image's index.
  // Returns B x C x H x W. fused: a custom op on CPU (composed ATen ops otherwise or when false).
  at::Tensor apply(const at::Tensor& masks, const std::vector<int64_t>& image, bool fused = true) const;

  const at::Tensor& pyramid() const { return pyramid_; }  // N x L x C x H x W
  int64_t levels() const { return levels_; }

 private:
  at::Tensor composed(const at::Tensor& masks, const at::Tensor& index) const;
  at::Tensor pyramid_;
  int64_t levels_;
};

}  // namespace ts
