// 'gradient': the gradient of the target score (Simonyan et al. 2014); map = max over channels of |gradient|, as TorchRay.
#include "core/attribution.h"

namespace ts {
namespace {
ExplainResult run(Model& model, const ExplainRequest& request, RunContext& context) {
  BackpropSpec spec;
  spec.rules.rule = BackwardRule::kGradient;
  spec.layer = request.options.string("layer", "");
  spec.to_map = [](const at::Tensor& a, const at::Tensor& g) { (void)a; return g.abs().amax(1); };
  return run_backprop(model, request, context, spec);
}
}  // namespace
TS_REGISTER_METHOD("gradient", run);
}  // namespace ts
