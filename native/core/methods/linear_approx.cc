// 'linear-approx': activation times gradient at a layer, summed over channels (TorchRay's linear approximation).
#include "core/backprop.h"

namespace ts {
TS_REGISTER_METHOD("linear-approx", backprop_method(BackwardRule::kGradient, [](const at::Tensor& a, const at::Tensor& g) { return (a * g).sum(1); }));
}  // namespace ts
