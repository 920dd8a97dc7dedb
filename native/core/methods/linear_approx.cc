// 'linear-approx': activation times gradient at a layer, summed over channels (TorchRay's linear approximation).
#include "core/attribution.h"

namespace ts {
namespace {
ExplainResult run(Model& model, const ExplainRequest& request, RunContext& context) {
  BackpropSpec spec;
  spec.rules.rule = BackwardRule::kGradient;
  spec.layer = request.options.string("layer", "");
  spec.to_map = [](const at::Tensor& a, const at::Tensor& g) { (void)a; return (a * g).sum(1); };
  return run_backprop(model, request, context, spec);
}
}  // namespace
TS_REGISTER_METHOD("linear-approx", run);
}  // namespace ts
