// 'guided-backprop': ReLUs pass back positive gradients where their input was positive (Springenberg et al. 2015).
#include "core/attribution.h"

namespace ts {
namespace {
ExplainResult run(Model& model, const ExplainRequest& request, RunContext& context) {
  BackpropSpec spec;
  spec.rules.rule = BackwardRule::kGuided;
  spec.layer = request.options.string("layer", "");
  spec.to_map = [](const at::Tensor& a, const at::Tensor& g) { (void)a; return g.abs().amax(1); };
  return run_backprop(model, request, context, spec);
}
}  // namespace
TS_REGISTER_METHOD("guided-backprop", run);
}  // namespace ts
