// 'gradient': the gradient of the target score (Simonyan et al. 2014); map = max over channels of |gradient|, as TorchRay.
#include "core/backprop.h"

namespace ts {
TS_REGISTER_METHOD("gradient", backprop_method(BackwardRule::kGradient, gradient_magnitude));
}  // namespace ts
