// 'grad-cam': activation weighted by the spatially averaged gradient at a layer, summed over channels, ReLU (Selvaraju et al. 2017).
#include "core/backprop.h"

namespace ts {
TS_REGISTER_METHOD("grad-cam", backprop_method(BackwardRule::kGradient, [](const at::Tensor& a, const at::Tensor& g) {
                     return (a * g.mean({2, 3}, true)).sum(1).clamp_min(0);
                   }));
}  // namespace ts
