#include "core/loop_module.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/version.h>

#include <functional>

#include "core/module_clone.h"

namespace ts {
namespace {

bool is_conv_weight(const at::Tensor& t) { return t.defined() && t.dim() == 4 && t.is_floating_point(); }

// A new tensor: channels-last for 4-D floating-point tensors when asked, bfloat16 for floating-point
// tensors when asked; `t` itself when neither applies.
at::Tensor converted(const at::Tensor& t, bool channels_last, bool bf16) {
  if (!t.defined() || !t.is_floating_point()) return t;
  const bool to_bf16 = bf16 && t.scalar_type() == at::kFloat;
  const bool to_cl = channels_last && t.dim() == 4 && !t.is_contiguous(at::MemoryFormat::ChannelsLast);
  if (!to_bf16 && !to_cl) return t;
  at::Tensor r = t.detach();
  if (to_bf16) r = r.to(at::kBFloat16);
  if (to_cl) r = r.contiguous(at::MemoryFormat::ChannelsLast);
  return r;
}

// Replaces the copy's floating-point parameters and buffers by converted copies (see `converted`). `copy`
// came from clone_module, whose objects are its own (only the tensors are shared with the user's module):
// setting a slot here leaves the user's module holding its own tensors, untouched (never set_data).
void convert_slots(const torch::jit::Module& copy, bool channels_last, bool bf16) {
  const c10::ClassTypePtr& type = copy.type();
  for (size_t i = 0; i < type->numAttributes(); ++i) {
    c10::IValue value = copy._ivalue()->getSlot(i);
    if (type->getAttribute(i)->is_module()) {
      convert_slots(torch::jit::Module(value.toObject()), channels_last, bf16);
    } else if (value.isTensor()) {
      at::Tensor t = value.toTensor(), c = converted(t, channels_last, bf16);
      if (!c.is_same(t)) copy._ivalue()->setSlot(i, c);
    }
  }
}

// The same for a frozen module, whose parameters are constants of its forward graph.
void convert_constants(torch::jit::Block* block, bool channels_last, bool bf16) {
  for (torch::jit::Node* node : block->nodes()) {
    for (torch::jit::Block* sub : node->blocks()) convert_constants(sub, channels_last, bf16);
    if (node->kind() != c10::prim::Constant || !node->hasAttribute(c10::attr::value)) continue;
    if (node->kindOf(c10::attr::value) != torch::jit::AttributeKind::t) continue;
    const at::Tensor t = node->t(c10::attr::value), c = converted(t, channels_last, bf16);
    if (!c.is_same(t)) {
      node->t_(c10::attr::value, c);
      node->output()->inferTypeFrom(c);
    }
  }
}

}  // namespace

bool has_conv_weights(const torch::jit::Module& module) {
  for (const at::Tensor& p : module.parameters(/*recurse=*/true))
    if (is_conv_weight(p)) return true;
  return false;
}

std::string bf16_unsupported() {
#if TORCH_VERSION_MAJOR >= 2
  return "";
#else
  return std::string("this addon was built against libtorch ") + TORCH_VERSION +
         ", whose bfloat16 backward lacks ops CNNs use (ReLU6's hardtanh); build it against PyPI torch 2.x (scripts/install-libtorch.sh)";
#endif
}

LoopModule make_loop_module(const torch::jit::Module& module, bool channels_last, bool freeze, bool bf16) {
  at::NoGradGuard no_grad;
  LoopModule r;
  if (!channels_last && !freeze && !bf16) {
    r.module = module;  // the plain loop runs the model itself (a handle: nothing below changes it)
    return r;
  }
  // clone_module: a copy with a compilation unit of its own, so that freezing (which clones again,
  // into the copy's unit) and slot changes never reach the user's module or its unit.
  r.module = clone_module(module);
  if (freeze) {
    try {
      // optimize_numerics: BatchNorm folded into convolutions (and add/mul by constants into them);
      // results equal up to float rounding.
      r.module = torch::jit::freeze(r.module, c10::nullopt, /*optimize_numerics=*/true);
      r.frozen = true;
    } catch (const std::exception& e) {
      r.frozen_error = e.what();
      r.module = clone_module(module);
    }
  }
  if (channels_last || bf16) {
    if (r.frozen)
      convert_constants(r.module.get_method("forward").graph()->block(), channels_last, bf16);
    else
      convert_slots(r.module, channels_last, bf16);
    r.channels_last = channels_last;
    r.bf16 = bf16;
  }
  return r;
}

}  // namespace ts
