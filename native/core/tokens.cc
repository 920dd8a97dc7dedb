#include "core/tokens.h"

#include <cmath>
#include <vector>

#include "core/errors.h"

namespace ts {

namespace {

std::string shape_text(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Prefix counts tried when none is given: a class token, a distillation token, registers (DINOv2 has a
// class token and 4 registers).
constexpr int64_t kMaxInferredPrefix = 5;

// The factorisations h x w of n whose aspect is the image's (within 25%), best first.
std::vector<std::pair<int64_t, int64_t>> grids_of(int64_t n, int64_t image_h, int64_t image_w) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (n <= 0) return out;
  const double want = std::log(static_cast<double>(image_h) / static_cast<double>(image_w));
  double best = 1e9;
  for (int64_t h = 1; h <= n; ++h) {
    if (n % h) continue;
    const int64_t w = n / h;
    const double off = std::abs(std::log(static_cast<double>(h) / static_cast<double>(w)) - want);
    if (off > std::log(1.25)) continue;
    if (off < best) {
      best = off;
      out.insert(out.begin(), {h, w});
    } else {
      out.push_back({h, w});
    }
  }
  return out;
}

}  // namespace

TokenLayout TokenLayout::from(const Options& options, bool with_layout) {
  TokenLayout t;
  if (with_layout) t.layout = options.string("layout");
  if (auto p = options.number_or_null("prefixTokens")) t.prefix = static_cast<int64_t>(*p);
  if (auto g = options.list_or_null("grid")) t.grid = std::make_pair(static_cast<int64_t>(g->at(0)), static_cast<int64_t>(g->at(1)));
  return t;
}

TokenGrid token_grid(int64_t tokens, const TokenLayout& layout, int64_t image_h, int64_t image_w, const std::string& what) {
  const std::string seen = what + " has " + std::to_string(tokens) + " tokens";
  if (layout.grid) {
    const auto [h, w] = *layout.grid;
    const int64_t prefix = layout.prefix.value_or(tokens - h * w);
    if (prefix < 0 || prefix + h * w != tokens) {
      throw Error("ERR_INVALID_ARG_VALUE",
                  "Expected a grid of prefixTokens + h * w = " + std::to_string(tokens) + " tokens for options.grid but received [" + std::to_string(h) + ", " +
                      std::to_string(w) + "]" + (layout.prefix ? " with prefixTokens " + std::to_string(*layout.prefix) : "") + " (" + seen + ")",
                  "options.grid");
    }
    return {prefix, h, w};
  }
  if (layout.prefix) {
    const int64_t prefix = *layout.prefix;
    if (prefix >= tokens) {
      throw Error("ERR_OUT_OF_RANGE",
                  "Expected fewer prefix tokens than the layer's " + std::to_string(tokens) + " for options.prefixTokens but received " +
                      std::to_string(prefix) + " (" + seen + ")",
                  "options.prefixTokens");
    }
    auto grids = grids_of(tokens - prefix, image_h, image_w);
    if (grids.empty()) {
      throw Error("ERR_INVALID_ARG_VALUE",
                  "Expected options.grid ([h, w]) for " + seen + ": the " + std::to_string(tokens - prefix) + " tokens after " + std::to_string(prefix) +
                      " prefix tokens form no grid of the image's aspect (" + std::to_string(image_h) + " x " + std::to_string(image_w) + ") but received none",
                  "options.grid");
    }
    return {prefix, grids[0].first, grids[0].second};
  }
  std::vector<TokenGrid> fits;
  for (int64_t p = 0; p <= kMaxInferredPrefix && p < tokens; ++p) {
    auto grids = grids_of(tokens - p, image_h, image_w);
    // A grid whose patch size is the same along both sides (image_h / h == image_w / w, to a pixel).
    for (auto [h, w] : grids) {
      const double ph = static_cast<double>(image_h) / static_cast<double>(h), pw = static_cast<double>(image_w) / static_cast<double>(w);
      if (std::abs(ph - pw) <= 1.0) {
        fits.push_back({p, h, w});
        break;
      }
    }
  }
  if (fits.size() == 1) return fits[0];
  std::string found;
  for (const auto& f : fits)
    found += (found.empty() ? "" : ", ") + std::to_string(f.prefix) + " + " + std::to_string(f.height) + " x " + std::to_string(f.width);
  throw Error("ERR_INVALID_ARG_VALUE",
              "Expected options.prefixTokens or options.grid for " + seen +
                  (fits.empty() ? ", which form no grid of the image's aspect after 0.." + std::to_string(kMaxInferredPrefix) + " prefix tokens"
                                : ", which split more than one way (prefix + grid: " + found + ")") +
                  " but received none",
              fits.empty() ? "options.grid" : "options.prefixTokens");
}

std::string resolve_layout(const at::Tensor& a, const TokenLayout& layout, int64_t image_h, int64_t image_w, const std::string& layer) {
  const std::string name = "layer '" + layer + "' (output " + shape_text(a) + ")";
  std::string kind = layout.layout;
  if (kind == "auto") {
    // 4 dimensions: N x C x H x W, unless only dimensions 1 and 2 have the image's aspect (a channels-last
    // output whose channel count differs from its width: N x 8 x 8 x 64 of a 64 x 64 image).
    auto fits = [&](int64_t h, int64_t w) {
      return std::abs(std::log(static_cast<double>(h) / static_cast<double>(w)) - std::log(static_cast<double>(image_h) / static_cast<double>(image_w))) <=
             std::log(1.25);
    };
    if (a.dim() == 4)
      kind = !fits(a.size(2), a.size(3)) && fits(a.size(1), a.size(2)) ? "nhwc" : "nchw";
    else if (a.dim() == 3)
      kind = "ntc";
  }
  const bool four = kind == "nchw" || kind == "nhwc";
  if (kind == "auto") {
    // Kept under the code it always had: a layer the layer methods cannot read.
    throw Error("ERR_LAYER_NOT_FOUND",
                "Layer '" + layer +
                    "' has no spatial output: expected N x C x H x W, N x H x W x C (options.layout 'nhwc') or N x T x C tokens, but it returns " +
                    shape_text(a) + "; choose another layer (model.layerShapes() lists each layer's shape)",
                "options.layer");
  }
  if ((four && a.dim() != 4) || (kind == "ntc" && a.dim() != 3)) {
    throw Error("ERR_INVALID_ARG_VALUE",
                std::string("Expected ") +
                    (a.dim() == 4   ? "'nchw' or 'nhwc'"
                     : a.dim() == 3 ? "'ntc' (or 'auto')"
                                    : "'auto'") +
                    " for options.layout with " + name + " but received '" + layout.layout + "'",
                "options.layout");
  }
  return kind;
}

at::Tensor to_spatial(const at::Tensor& a, const TokenLayout& layout, int64_t image_h, int64_t image_w, const std::string& layer) {
  const std::string kind = resolve_layout(a, layout, image_h, image_w, layer);
  const std::string name = "layer '" + layer + "' (output " + shape_text(a) + ")";
  if (kind == "nchw") return a;
  if (kind == "nhwc") return a.permute({0, 3, 1, 2});
  const TokenGrid g = token_grid(a.size(1), layout, image_h, image_w, name);
  return a.slice(1, g.prefix).reshape({a.size(0), g.height, g.width, a.size(2)}).permute({0, 3, 1, 2});
}

}  // namespace ts
