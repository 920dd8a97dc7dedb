#include "core/backward_rules.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/library.h>

#include <vector>

#include "core/layers.h"

namespace ts {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ReLU whose backward follows a rule: 1 deconvnet (pass positive gradients, ignore the input),
// 2 guided backprop (positive gradients where the input was positive), otherwise the true gradient.
struct RuleRelu : public torch::autograd::Function<RuleRelu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t rule) {
    ctx->saved_data["rule"] = rule;
    ctx->save_for_backward({x});
    return at::relu(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor& g = grads[0];
    at::Tensor x = ctx->get_saved_variables()[0];
    int64_t rule = ctx->saved_data["rule"].toInt();
    at::Tensor out;
    if (rule == 1)
      out = g.clamp_min(0);
    else if (rule == 2)
      out = g.clamp_min(0) * (x > 0).to(g.scalar_type());
    else
      out = g * (x > 0).to(g.scalar_type());
    return {out, at::Tensor()};
  }
};

// Excitation input: identity forward, backward multiplies by the input (x * g).
struct EbIn : public torch::autograd::Function<EbIn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return x.clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) { return {grads[0] * ctx->get_saved_variables()[0]}; }
};

// Excitation output: forward returns the true output y; backward sends g / (yp + eps) to the positive
// twin yp and nothing to y.
struct EbOut : public torch::autograd::Function<EbOut> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& yp) {
    ctx->save_for_backward({yp});
    return y.clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    at::Tensor yp = ctx->get_saved_variables()[0];
    return {at::Tensor(), grads[0] / (yp + 1e-20)};
  }
};

at::Tensor rule_relu(const at::Tensor& x, int64_t rule) { return RuleRelu::apply(x, rule); }
at::Tensor eb_in(const at::Tensor& x) { return EbIn::apply(x); }
at::Tensor eb_out(const at::Tensor& y, const at::Tensor& yp) { return EbOut::apply(y, yp); }

// A weight-like operand: a parameter or constant, possibly transposed (old exports write a Linear layer
// as addmm(bias, x, weight.t()), hand-written ones as x @ weight.t() or x.matmul(weight)).
bool is_parameter_like(torch::jit::Value* v) {
  torch::jit::Node* n = v->node();
  const auto k = n->kind();
  if (k == c10::prim::GetAttr) return true;
  if (k == c10::prim::Constant) return v->type()->kind() == c10::TypeKind::TensorType;
  if (k == c10::aten::t || k == c10::aten::transpose || k == c10::aten::permute || k == c10::aten::contiguous || k == c10::aten::numpy_T)
    return is_parameter_like(n->input(0));
  return false;
}

// The layers with weights that excitation backprop twins, and where their input and weight are:
// linear/conv (x, w, bias, ...), addmm (bias, x, w, ...), mm/matmul (x, w) with a parameter-like w.
struct Weighted {
  int x = -1, w = -1;
  bool ok() const { return x >= 0; }
};

Weighted weighted(torch::jit::Node* n) {
  auto k = n->kind();
  if (k == c10::aten::linear || k == c10::aten::conv2d || k == c10::aten::conv1d) return {0, 1};
  if (k == c10::aten::_convolution) {
    // input, weight, bias, stride, padding, dilation, transposed, ...
    auto transposed = torch::jit::toIValue(n->input(6));
    if (transposed && transposed->isBool() && !transposed->toBool()) return {0, 1};
    return {};
  }
  if (k == c10::aten::addmm && is_parameter_like(n->input(2))) return {1, 2};
  if ((k == c10::aten::mm || k == c10::aten::matmul) && is_parameter_like(n->input(1))) return {0, 1};
  return {};
}

bool is_weighted(torch::jit::Node* n) { return weighted(n).ok(); }

bool is_pool(torch::jit::Node* n) {
  auto k = n->kind();
  return k == c10::aten::adaptive_avg_pool2d || k == c10::aten::avg_pool2d;
}

void collect(torch::jit::Block* block, std::vector<torch::jit::Node*>& out) {
  for (torch::jit::Node* n : block->nodes()) {
    out.push_back(n);
    for (torch::jit::Block* b : n->blocks()) collect(b, out);
  }
}

}  // namespace

TORCH_LIBRARY(ts_rules, m) {
  m.def("relu(Tensor x, int rule) -> Tensor", &rule_relu);
  m.def("eb_in(Tensor x) -> Tensor", &eb_in);
  m.def("eb_out(Tensor y, Tensor yp) -> Tensor", &eb_out);
}

int apply_backward_rules(torch::jit::Module& module, const RuleOptions& options) {
  auto graph = forward_graph(module);
  torch::jit::Inline(*graph);
  std::vector<torch::jit::Node*> nodes;
  collect(graph->block(), nodes);
  int rewritten = 0;
  const int64_t rule_code = options.rule == BackwardRule::kDeconvnet ? 1 : options.rule == BackwardRule::kGuided ? 2 : 0;
  if (options.rule == BackwardRule::kDeconvnet || options.rule == BackwardRule::kGuided) {
    for (torch::jit::Node* n : nodes) {
      if (n->kind() != c10::aten::relu && n->kind() != c10::aten::relu_) continue;
      torch::jit::WithInsertPoint guard(n);
      torch::jit::Value* r = graph->insert(c10::Symbol::fromQualString("ts_rules::relu"), {n->input(0), rule_code});
      // relu_ overwrote its input: later readers of the input saw the rectified value.
      if (n->kind() == c10::aten::relu_) n->input(0)->replaceAllUsesAfterNodeWith(n, r);
      n->output()->replaceAllUsesWith(r);
      n->destroy();
      ++rewritten;
    }
  } else if (options.rule == BackwardRule::kExcitation) {
    torch::jit::Node* classifier = nullptr;
    for (torch::jit::Node* n : nodes) {
      if (is_weighted(n)) classifier = n;
    }
    for (torch::jit::Node* n : nodes) {
      if (!is_weighted(n) && !is_pool(n)) continue;
      torch::jit::WithInsertPoint guard(n->next());
      const Weighted wt = weighted(n);
      const int xi = wt.ok() ? wt.x : 0;
      torch::jit::Value* x = graph->insert(c10::Symbol::fromQualString("ts_rules::eb_in"), {n->input(xi)});
      std::vector<torch::jit::Value*> inputs(n->inputs().begin(), n->inputs().end());
      c10::Symbol kind = n->kind();
      if (wt.ok()) {
        torch::jit::Value* w = n->input(wt.w);
        if (options.negate_classifier && n == classifier) w = graph->insert(c10::aten::neg, {w});
        torch::jit::Value* wp = graph->insert(c10::aten::clamp_min, {w, 0.0});
        if (kind == c10::aten::addmm) {
          kind = c10::aten::mm;  // the twin has no bias: x+ W+
          inputs = {x, wp};
        } else if (kind == c10::aten::mm || kind == c10::aten::matmul) {
          inputs = {x, wp};
        } else {
          inputs[0] = x;
          inputs[1] = wp;
          inputs[2] = graph->insertNode(graph->createNone())->output();
        }
      } else {
        inputs[0] = x;
      }
      torch::jit::Node* twin = graph->insertNode(graph->create(kind, inputs, 1));
      twin->output()->setType(n->output()->type());
      torch::jit::Value* y = n->output();
      torch::jit::Value* out = graph->insert(c10::Symbol::fromQualString("ts_rules::eb_out"), {y, twin->output()});
      y->replaceAllUsesAfterNodeWith(out->node(), out);
      ++rewritten;
    }
  }
  torch::jit::EliminateDeadCode(graph);
  return rewritten;
}

}  // namespace ts
