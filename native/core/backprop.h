// Shared machinery of the backpropagation methods (gradient, deconvnet, guided backprop, Grad-CAM,
// linear approximation, excitation backprop): one batch row per job (image, target), one forward and
// one backward pass per chunk of rows with the sum of each row's target score as the objective, the
// pseudo-gradient read at the input or at a probed layer, then turned into a map.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>

#include "core/backward_rules.h"
#include "core/explain.h"
#include "core/tokens.h"

namespace ts {

// (activation, gradient) -> maps (rows x h x w).
using MapFn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>;

struct BackpropSpec {
  RuleOptions rules;
  // Layer to read (activation, gradient) at (options.layer); none: the model's input.
  std::optional<std::string> layer;
  // Contrastive excitation backprop: the contrast layer (options.contrastLayer; the contrast pass uses
  // negated classifier weights, and its gradient at this layer is subtracted, clamped at zero, before going
  // on to `layer`).
  std::optional<std::string> contrast_layer;
  // How the layer's output becomes N x C x h x w (token layers; options layout, prefixTokens, grid).
  TokenLayout tokens;
  MapFn to_map;
};

ExplainResult run_backprop(Model& model, const ExplainRequest& request, RunContext& context, const BackpropSpec& spec);

// A method that reads the request's `layer` option (null: the input) and the token options, and runs run_backprop with `rule`
// and `to_map`: what each single-pass backpropagation method registers.
MethodFn backprop_method(BackwardRule rule, MapFn to_map);

// Max over channels of |gradient| (TorchRay's gradient-to-saliency), for gradient, deconvnet and guided backprop.
at::Tensor gradient_magnitude(const at::Tensor& activation, const at::Tensor& gradient);

// Sum over rows of scores[row, targets[row]].
at::Tensor target_score_sum(const at::Tensor& scores, const at::Tensor& targets);

}  // namespace ts
