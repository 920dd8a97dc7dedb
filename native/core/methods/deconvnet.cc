// 'deconvnet': ReLUs pass back only positive gradients, ignoring the forward input (Zeiler & Fergus 2014).
#include "core/attribution.h"

namespace ts {
namespace {
ExplainResult run(Model& model, const ExplainRequest& request, RunContext& context) {
  BackpropSpec spec;
  spec.rules.rule = BackwardRule::kDeconvnet;
  spec.layer = request.options.string("layer", "");
  spec.to_map = [](const at::Tensor& a, const at::Tensor& g) { (void)a; return g.abs().amax(1); };
  return run_backprop(model, request, context, spec);
}
}  // namespace
TS_REGISTER_METHOD("deconvnet", run);
}  // namespace ts
