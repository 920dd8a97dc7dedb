// A copy of the user's module made for an optimisation loop that needs the model's output and the
// gradient to its INPUT only (extremal perturbation's mask loop): never the user's module itself, whose
// parameters, flags and graphs stay as they are.
//   - channels_last: the copy's 4-D floating-point parameters (convolution weights) are channels-last
//     copies, so libtorch's convolutions run in that layout (measured faster on CPU for real CNNs).
//   - frozen: torch::jit::freeze of the copy (eval mode): parameters become constants of one inlined
//     graph, BatchNorm is folded into the convolution before it, dropout and other eval-mode no-ops go.
//     Gradients to the input are those of the same function up to float rounding (the fold rescales
//     weights); gradients to parameters are gone, and so are the submodules: not for layer methods.
//   - bf16: the copy's floating-point parameters, buffers (or frozen constants) in bfloat16; the caller
//     casts the input to bfloat16 and the scores back. Needs libtorch 2.x (see bf16_supported).
#pragma once
#include <torch/script.h>

#include <string>

namespace ts {

struct LoopModule {
  torch::jit::Module module;
  bool channels_last = false;  // what was done (asked for and possible)
  bool frozen = false;
  bool bf16 = false;
  std::string frozen_error;  // why freezing was asked for but not done (the copy runs unfrozen), or empty
};

// True when `module` has a 4-D floating-point parameter (a 2-D convolution's weight).
bool has_conv_weights(const torch::jit::Module& module);

// The copy described above; with nothing asked, the module itself (the plain loop). Freezing can fail
// on some scripted modules (unsupported attribute types, modules left in training mode): the copy then
// runs unfrozen and frozen_error says why.
LoopModule make_loop_module(const torch::jit::Module& module, bool channels_last, bool freeze, bool bf16 = false);

// Empty when this libtorch runs bfloat16 backward through the ops CNNs use; otherwise why not (libtorch
// 1.13 has no bfloat16 backward of hardtanh, ReLU6's op: "hardshrink_backward_cpu not implemented").
std::string bf16_unsupported();

}  // namespace ts
