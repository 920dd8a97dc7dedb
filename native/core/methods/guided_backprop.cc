// 'guided-backprop': ReLUs pass back positive gradients where their input was positive (Springenberg et al. 2015).
#include "core/backprop.h"

namespace ts {
TS_REGISTER_METHOD("guided-backprop", backprop_method(BackwardRule::kGuided, gradient_magnitude));
}  // namespace ts
