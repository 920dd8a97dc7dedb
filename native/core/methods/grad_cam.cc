// 'grad-cam': activation weighted by the spatially averaged gradient at a layer, summed over channels, ReLU (Selvaraju et al. 2017).
#include "core/attribution.h"

namespace ts {
namespace {
ExplainResult run(Model& model, const ExplainRequest& request, RunContext& context) {
  BackpropSpec spec;
  spec.rules.rule = BackwardRule::kGradient;
  spec.layer = request.options.string("layer", "");
  spec.to_map = [](const at::Tensor& a, const at::Tensor& g) { (void)a; return (a * g.mean({2, 3}, true)).sum(1).clamp_min(0); };
  return run_backprop(model, request, context, spec);
}
}  // namespace
TS_REGISTER_METHOD("grad-cam", run);
}  // namespace ts
