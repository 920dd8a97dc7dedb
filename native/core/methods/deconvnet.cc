// 'deconvnet': ReLUs pass back only positive gradients, ignoring the forward input (Zeiler & Fergus 2014).
#include "core/backprop.h"

namespace ts {
TS_REGISTER_METHOD("deconvnet", backprop_method(BackwardRule::kDeconvnet, gradient_magnitude));
}  // namespace ts
