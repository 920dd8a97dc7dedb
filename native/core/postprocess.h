// Shared map post-processing: resizing a batch of maps and Gaussian smoothing (TorchRay's `resize`
// and `smooth` options). Both run on the maps' device.
#pragma once
#include <ATen/ATen.h>

#include "core/explain.h"

namespace ts {

// Separable Gaussian blur of B x C x H x W with standard deviation `sigma` (pixels), half-width
// ceil(4 sigma), zero padding (the image is taken to be 0 outside), TorchRay's imsmooth kernel
// exp(-(i / (sqrt(2) sigma + eps))^2) normalised to sum 1. sigma <= 0 returns the input. Serves the
// extremal-perturbation pyramid, the `smooth` option and input-agnostic refinement alike.
at::Tensor gaussian_blur(const at::Tensor& x, double sigma);

// The common options `resize` ([height, width] or null) and `smooth` applied to maps B x H x W (or
// B x 1 x H x W): a bilinear resize (align_corners = false) unless resize is null, then Gaussian smoothing
// with sigma = smooth * max(height, width) when smooth > 0.
at::Tensor postprocess(const at::Tensor& maps, const Options& options);

}  // namespace ts
