// The perturbation pyramid of extremal perturbations and how a mask picks from it. For each image, L
// levels for s = linspace(0, 1, L): 'blur' is a Gaussian blur with sigma (1 - s) max_blur (gaussian_blur
// of postprocess.h, TorchRay's imsmooth), 'fade' is x * s. Level 0 is the most
// perturbed, level L-1 the image itself. A mask value m in [0, 1] selects w = m (L-1) and interpolates
// linearly between levels floor(w) and min(floor(w) + 1, L-1), per pixel and for every channel.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace ts {

class Perturbation {
 public:
  // images: N x C x H x W (the model's input, on its device). kind: "blur" | "fade".
  Perturbation(const at::Tensor& images, const std::string& kind, int64_t levels, double max_blur);

  // masks: B x 1 x H x W in [0, 1] (autograd flows to them); image: for each mask, its image's index.
  // Returns B x C x H x W, mirrored left-right when flip (the jitter step; fused into the op on CPU).
  // fused: a custom op on CPU (composed ATen ops otherwise or when false).
  at::Tensor apply(const at::Tensor& masks, const std::vector<int64_t>& image, bool fused = true, bool flip = false) const;

  // The same from the [top, top + H) x [left, left + W) crop of full masks (M x 1 x Hf x Wf): result row r
  // perturbs image[r] with mask[r], inverted (1 - m) where invert[r]. The fused op reads the crop in
  // place and gives the full masks' gradient directly (no crop copy, no slice backward); 'delete' and
  // 'dual' use the inversion instead of building 1 - m.
  at::Tensor apply_crop(const at::Tensor& full, int64_t top, int64_t left, const std::vector<int64_t>& mask, const std::vector<bool>& invert,
                        const std::vector<int64_t>& image, bool fused = true, bool flip = false) const;

 private:
  at::Tensor composed(const at::Tensor& masks, const at::Tensor& index) const;
  at::Tensor pyramid_;
  int64_t levels_;
};

}  // namespace ts
