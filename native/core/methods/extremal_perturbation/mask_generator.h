// The smooth-mask generator of extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019): a coarse
// grid of parameters in [0, 1] becomes a smooth full-resolution mask. Each output pixel u looks at the
// (2r+1)^2 parameters around it, weights each by a radial kernel of its distance to the parameter's
// centre, and pools the weighted values v_k with a smooth max, sum_k v_k softmax(20 v)_k.
//
// Two implementations with the same numbers:
//  - fused: a custom autograd op whose forward and backward are computed per output pixel directly
//    from its neighbours (CPU kernel, at::parallel_for); nothing of size (2r+1)^2 x H x W is ever made.
//  - composed: the same function written with ATen ops (unfold, nearest upsampling, softmax), used on
//    devices without a fused kernel (CUDA) and as the reference the fused op is checked against.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "core/methods/extremal_perturbation/smooth_max_kernels.h"

namespace ts {

struct MaskGeometry {
  int64_t height = 0, width = 0;  // the image's size (the cropped mask)
  int64_t step = 7;               // parameter spacing in pixels
  double sigma = 21;              // kernel scale in pixels
  int64_t margin = 21;            // round(sigma): offset of the image inside the full mask
  int64_t padding = 0;            // 1 + ceil((margin + sigma) / step)
  int64_t radius = 0;             // 1 + ceil(sigma / step)
  int64_t in_h = 0, in_w = 0;     // parameter grid: ceil(H / step) x ceil(W / step)
  int64_t mid_h = 0, mid_w = 0;   // in + 2 padding - 2 radius
  int64_t out_h = 0, out_w = 0;   // full mask: step * mid - step + 1

  static MaskGeometry make(int64_t height, int64_t width, int64_t step, double sigma);
  int64_t taps() const { return (2 * radius + 1) * (2 * radius + 1); }
};

class MaskGenerator {
 public:
  // fused: use the fused op on CPU tensors; composed ATen ops otherwise (and always when false). isa: the
  // fused op's inner kernels (the CPU's best by default; tests name each).
  // mirror: let the inner kernels take the terms of a support's columns at -dx from those at dx (the same
  // numbers, bit for bit); false only to measure or test against the kernels without it.
  MaskGenerator(const MaskGeometry& geometry, bool fused = true, simd::Isa isa = simd::chosen(), bool mirror = true);

  // params: M x 1 x in_h x in_w (requires grad). Returns the full masks M x 1 x out_h x out_w in [0, 1].
  at::Tensor full(const at::Tensor& params) const;
  // The image-sized part of a full mask: rows and columns [margin, margin + H / W).
  at::Tensor crop(const at::Tensor& full) const;

  const MaskGeometry& geometry() const { return g_; }

  // The fused kernels' tables. A parameter's support is L x L pixels (L = (2r+1) step) starting at offset
  // off0 = step (padding - 2r) - margin from its centre on both axes; the weight depends on (|dy|, |dx|),
  // each in [0, quad).
  struct Support {
    int64_t off0 = 0, length = 0, padded = 0, quad = 0;  // padded: length rounded up to 16
    int64_t base0 = 0;                                   // step (padding - 2r): first pixel row/column of the first parameter's support
    simd::Isa isa = simd::Isa::generic;                  // the inner kernels
    int resolution = 1;                                  // their K: exponents y are in units of 1 / K of log2
    float unit = 0;                                      // 20 K log2(e): y = unit v
    std::vector<float> wh;                               // quad x padded: weight at (|dy|, dx) = (a, off0 + u); 0 in the padding
    std::vector<float> wk;                               // quad x padded: 20 K log2(e) w (y at m = 1); 0 in the padding
    std::vector<float> valid;                            // padded: 1, 0 in the padding
    std::vector<float> e1;                               // quad x padded: exp(20 w) (a parameter at 1); 0 in the padding
    std::vector<float> ye1;                              // quad x padded: wk e1
    std::vector<float> zcount;                           // out_h x out_w: the pixel's taps outside the parameter grid
    int64_t mirrored = 0;                                // vectors of a row taken from their mirror (smooth_max::mirror_plan)
    std::vector<int32_t> mirror_idx;                     // its permute (16 entries)
    // What the inner kernels read (core/methods/extremal_perturbation/smooth_max_kernels.h).
    smooth_max::Support kernel_rows() const {
      return {wk.data(), wh.data(), quad, length, padded, unit, valid.data(), mirrored, mirrored ? mirror_idx.data() : nullptr};
    }
  };
  const Support& support() const { return s_; }

 private:
  at::Tensor composed(const at::Tensor& params) const;
  at::Tensor composed_weight(const at::Device& device) const;

  MaskGeometry g_;
  bool fused_;
  std::vector<int32_t> row_block_, col_block_;  // output row/col -> block index (nearest upsampling)
  Support s_;
  mutable at::Tensor weight_;  // 1 x taps x out_h x out_w (composed path, lazily)
};

}  // namespace ts
