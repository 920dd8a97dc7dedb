// Backward rules for the backpropagation family (deconvnet, guided backprop, excitation backprop), put
// into a TorchScript graph by node rewriting on a clone: the clone's forward graph is inlined, then
// aten::relu nodes become ts_rules::relu (a custom autograd function whose backward is the rule), and,
// for excitation backprop, every linear node (convolution, linear, average pooling) is given a
// "positive twin" that carries the excitation on the way back:
//   x' = ts_rules::eb_in(x)            forward: x       backward: x * g
//   yp = op(x', clamp(W, 0), no bias)  (the same node with the weight clamped; pools unchanged)
//   y' = ts_rules::eb_out(y, yp)       forward: y       backward to yp: g / (yp + eps), nothing to y
// so the pseudo-gradient reaching x is x * J_{op+}^T (g / op+(x)), the excitation-backprop rule of
// Zhang et al. 2016, for any linear node without writing its backward by hand.
#pragma once
#include <torch/script.h>

#include <string>

namespace ts {

enum class BackwardRule { kGradient, kDeconvnet, kGuided, kExcitation };

struct RuleOptions {
  BackwardRule rule = BackwardRule::kGradient;
  // Excitation backprop: use the negated weights for the last linear/convolution node (the classifier),
  // the contrast signal of contrastive excitation backprop.
  bool negate_classifier = false;
};

// Inlines `module`'s forward graph (a clone's: it is edited) and rewrites it for `options.rule`.
// Returns the number of nodes rewritten.
int apply_backward_rules(torch::jit::Module& module, const RuleOptions& options);

}  // namespace ts
