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

// maps: B x H x W (or B x 1 x H x W). Bilinear resize to (height, width) when both are > 0
// (align_corners = false), then smoothing with sigma = smooth * max(height, width).
at::Tensor resize_and_smooth(const at::Tensor& maps, int64_t height, int64_t width, double smooth);

// Reads resizeHeight / resizeWidth / smooth from the request's options.
at::Tensor postprocess(const at::Tensor& maps, const Options& options);

}  // namespace ts
