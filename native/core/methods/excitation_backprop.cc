// 'excitation-backprop' and 'contrastive-excitation-backprop' (Zhang et al. 2016): the marginal winning
// probability passed back through linear nodes with positive weights only (see backward_rules.h), read
// at `layer` (default: the input) and summed over channels. The contrastive variant subtracts, at
// `contrastLayer`, the excitation of a second pass whose classifier weights are negated, keeps the
// positive part, and goes on to `layer`; its map is clamped at zero (as TorchRay).
#include "core/backprop.h"

namespace ts {
namespace {
ExplainResult contrastive(Model& model, const ExplainRequest& request, RunContext& context) {
  BackpropSpec spec;
  spec.rules.rule = BackwardRule::kExcitation;
  spec.layer = request.options.string_or_null("layer");
  spec.contrast_layer = request.options.string("contrastLayer");
  spec.tokens = TokenLayout::from(request.options);
  spec.to_map = [](const at::Tensor&, const at::Tensor& g) { return g.sum(1).clamp_min(0); };
  return run_backprop(model, request, context, spec);
}
}  // namespace
TS_REGISTER_METHOD("excitation-backprop", backprop_method(BackwardRule::kExcitation, [](const at::Tensor&, const at::Tensor& g) { return g.sum(1); }));
TS_REGISTER_METHOD("contrastive-excitation-backprop", contrastive);
}  // namespace ts
