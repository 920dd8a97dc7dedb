// Token layers: the outputs of transformer blocks, turned into the N x C x h x w activations that the
// layer methods (Grad-CAM, linear approximation, ...) work on.
//
// A vision transformer's block returns N x T x C: `prefix` tokens first (class, distillation, register
// tokens), then an h x w grid of patch tokens in row-major order (ViT, DeiT). A Swin-style stage returns
// N x H x W x C (channels last). Both become N x C x h x w, the way pytorch-grad-cam's reshape_transform
// does: the prefix tokens dropped, the grid tokens laid out as an image. The grid and the prefix are
// inferred where that is unambiguous, else given by the options prefixTokens and grid.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <utility>

#include "core/explain.h"

namespace ts {

struct TokenLayout {
  std::string layout = "auto";                      // 'auto' | 'nchw' | 'ntc' | 'nhwc'
  std::optional<int64_t> prefix;                    // prefixTokens; none: inferred
  std::optional<std::pair<int64_t, int64_t>> grid;  // grid [h, w]; none: inferred

  // Reads the options layout (when `with_layout`), prefixTokens and grid.
  static TokenLayout from(const Options& options, bool with_layout = true);
};

// How the T tokens of a layer split: `prefix` tokens, then a grid of h x w.
struct TokenGrid {
  int64_t prefix = 0, height = 0, width = 0;
};

// The split of `tokens` tokens for an input image of image_h x image_w: the options' prefix and grid
// where given, else inferred (the grid's aspect must be the image's, and exactly one prefix count in
// 0..5 may fit). Throws ERR_INVALID_ARG_VALUE naming options.grid or options.prefixTokens when none
// or several fit; `what` names the layer(s) in the message.
TokenGrid token_grid(int64_t tokens, const TokenLayout& layout, int64_t image_h, int64_t image_w, const std::string& what);

// What `layout` means for this activation: 'nchw', 'nhwc' or 'ntc' ('auto' decided as to_spatial decides it;
// the same errors). Its channels are dimension 1, 3 or 2.
std::string resolve_layout(const at::Tensor& activation, const TokenLayout& layout, int64_t image_h, int64_t image_w, const std::string& layer);

// A layer's output (batch first) as N x C x h x w, by `layout` (auto: 4 dimensions are N x C x H x W,
// 3 are N x T x C). Shapes that fit no rule throw a typed error that names the option that would fix it.
at::Tensor to_spatial(const at::Tensor& activation, const TokenLayout& layout, int64_t image_h, int64_t image_w, const std::string& layer);

}  // namespace ts
