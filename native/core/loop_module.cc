#include "core/loop_module.h"

#include <torch/csrc/jit/ir/ir.h>

#include <functional>

#include "core/module_clone.h"

namespace ts {
namespace {

bool is_conv_weight(const at::Tensor& t) { return t.defined() && t.dim() == 4 && t.is_floating_point(); }

// Replaces the copy's 4-D floating-point parameters and buffers by channels-last copies. `copy` came from
// clone_module, whose objects are its own (only the tensors are shared with the user's module): setting a
// slot here leaves the user's module holding its own tensors.
void params_to_channels_last(const torch::jit::Module& copy) {
  const c10::ClassTypePtr& type = copy.type();
  for (size_t i = 0; i < type->numAttributes(); ++i) {
    c10::IValue value = copy._ivalue()->getSlot(i);
    if (type->getAttribute(i)->is_module()) {
      params_to_channels_last(torch::jit::Module(value.toObject()));
    } else if (value.isTensor() && is_conv_weight(value.toTensor())) {
      at::Tensor t = value.toTensor();
      at::Tensor cl = t.detach().contiguous(at::MemoryFormat::ChannelsLast);
      if (cl.data_ptr() == t.data_ptr()) continue;  // already channels-last (or 1 x 1 spatial: both layouts)
      copy._ivalue()->setSlot(i, cl);
    }
  }
}

// The same for a frozen module, whose parameters are constants of its forward graph.
void constants_to_channels_last(torch::jit::Block* block) {
  for (torch::jit::Node* node : block->nodes()) {
    for (torch::jit::Block* sub : node->blocks()) constants_to_channels_last(sub);
    if (node->kind() != c10::prim::Constant || !node->hasAttribute(c10::attr::value)) continue;
    if (node->kindOf(c10::attr::value) != torch::jit::AttributeKind::t) continue;
    const at::Tensor& t = node->t(c10::attr::value);
    if (is_conv_weight(t)) node->t_(c10::attr::value, t.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace

bool has_conv_weights(const torch::jit::Module& module) {
  for (const at::Tensor& p : module.parameters(/*recurse=*/true))
    if (is_conv_weight(p)) return true;
  return false;
}

LoopModule make_loop_module(const torch::jit::Module& module, bool channels_last, bool freeze) {
  at::NoGradGuard no_grad;
  LoopModule r;
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
  if (channels_last) {
    if (r.frozen)
      constants_to_channels_last(r.module.get_method("forward").graph()->block());
    else
      params_to_channels_last(r.module);
    r.channels_last = true;
  }
  return r;
}

}  // namespace ts
