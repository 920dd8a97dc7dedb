#include "core/attention.h"

#include <algorithm>
#include <map>

#include "core/errors.h"
#include "core/fused_attention.h"

namespace ts {

bool glob_match(const std::string& pattern, const std::string& name) {
  // Backtracking over the last '*': patterns and names are short.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string::npos && name[mark] != '.') {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

std::string shape_text(const at::Tensor& t) {
  if (!t.defined()) return "no tensor";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// N x heads x T x T, or (N * heads) x T x T (nn.MultiheadAttention's weights) for a batch of n.
bool attention_shaped(const at::Tensor& a, int64_t n) {
  if (!a.defined() || a.size(-1) != a.size(-2) || a.size(-1) < 2) return false;
  return (a.dim() == 4 && a.size(0) == n) || (a.dim() == 3 && a.size(0) % n == 0);
}

// Attention probabilities: non-negative rows that sum to 1.
bool is_attention(const at::Tensor& a, int64_t n) {
  if (!attention_shaped(a, n) || !a.is_floating_point()) return false;
  at::Tensor f = a.detach().to(at::kFloat);
  if (f.min().item<float>() < -1e-6f) return false;
  return (f.sum(-1) - 1).abs().max().item<float>() < 1e-3f;
}

}  // namespace

bool AttentionProbe::choose(const std::optional<std::string>& pattern, std::vector<size_t>& chosen) {
  at::Tensor last;
  for (size_t i = 0; i < probed_->layers().size(); ++i) {
    at::Tensor a = probed_->activation(i);
    const std::string& name = probed_->layers()[i];
    if (pattern) {
      if (!is_attention(a, 1)) {
        throw Error(
            "ERR_INVALID_ARG_VALUE",
            "Expected layers whose outputs are attention probabilities (N x heads x T x T, rows summing to 1) for options.attentionLayers but received '" +
                *pattern + "', which matches '" + name + "' (output " + shape_text(a) + (attention_shaped(a, 1) ? ", not probabilities" : "") + ")",
            "options.attentionLayers");
      }
    } else if (!is_attention(a, 1) || (last.defined() && last.sizes() == a.sizes() && at::allclose(last, a, 1e-6, 1e-7))) {
      continue;
    }
    if (!chosen.empty() && last.size(-1) != a.size(-1)) {
      throw Error("ERR_INVALID_ARG_VALUE",
                  "Expected attention layers with one token count for options.attentionLayers but received layers of " + std::to_string(last.size(-1)) + " ('" +
                      probed_->layers()[chosen.back()] + "') and " + std::to_string(a.size(-1)) + " tokens ('" + name + "')",
                  "options.attentionLayers");
    }
    chosen.push_back(i);
    last = a;
  }
  return !chosen.empty();
}

namespace {

void collect_nodes(torch::jit::Block* block, std::vector<torch::jit::Node*>& out) {
  for (torch::jit::Node* n : block->nodes()) {
    out.push_back(n);
    for (torch::jit::Block* b : n->blocks()) collect_nodes(b, out);
  }
}

// The forward graph's softmax outputs and fused attention's probabilities (the ops taken apart first), in
// graph order: "aten::softmax #0", "aten::_native_multi_head_attention #1", ...
ProbedModule::GraphValues attention_values(torch::jit::Graph& graph, int64_t& fused) {
  std::map<torch::jit::Node*, std::string> ops;
  for (const FusedAttention& f : decompose_fused_attention(graph)) ops[f.probabilities->node()] = f.op;
  fused = static_cast<int64_t>(ops.size());
  std::vector<torch::jit::Node*> nodes;
  collect_nodes(graph.block(), nodes);
  ProbedModule::GraphValues values;
  for (torch::jit::Node* n : nodes) {
    auto op = ops.find(n);
    if (op != ops.end() || n->kind() == c10::aten::softmax) {
      values.emplace_back((op != ops.end() ? op->second : std::string("aten::softmax")) + " #" + std::to_string(values.size()), n->output());
    }
  }
  return values;
}

}  // namespace

AttentionProbe::AttentionProbe(Model& model, const std::optional<std::string>& pattern, const at::Tensor& sample, bool with_grad) {
  torch::AutoGradMode grad_mode(with_grad);
  const at::Tensor x = with_grad ? sample.detach().requires_grad_(true) : sample;
  std::vector<LayerRef> candidates;
  for (const auto& name : layer_names(model)) {
    if (!pattern || glob_match(*pattern, name)) candidates.push_back({name, "options.attentionLayers"});
  }
  if (candidates.empty() && pattern) {
    throw_layer_not_found(model, *pattern, "matches no layer of this model (options.attentionLayers is a pattern: '*' stands for one name part)",
                          "options.attentionLayers");
  }
  std::vector<size_t> chosen;
  if (!candidates.empty()) {
    probed_ = std::make_unique<ProbedModule>(model, candidates, /*skip_unusable=*/!pattern.has_value());
    model.scores(probed_->module(), x);
    if (choose(pattern, chosen)) {
      std::vector<LayerRef> layers;
      for (size_t i : chosen) layers.push_back({probed_->layers()[i], "options.attentionLayers"});
      if (layers.size() != probed_->layers().size()) {
        probed_.reset();
        probed_ = std::make_unique<ProbedModule>(model, layers);
      }
      for (size_t i = 0; i < layers.size(); ++i) slots_.push_back(i);
      names_ = probed_->layers();
      return;
    }
  }
  // No layer returns them: the softmax nodes of the whole forward graph, fused attention taken apart.
  probed_.reset();
  probed_ = std::make_unique<ProbedModule>(model, [this](torch::jit::Graph& graph) { return attention_values(graph, fused_); });
  at::Tensor scores = model.scores(probed_->module(), x);
  chosen.clear();
  if (!choose(std::nullopt, chosen)) {
    throw_layer_not_found(model, "(any)",
                          "gives attention probabilities: no layer's output, and no softmax in the forward graph, is N x heads x T x T with rows summing to 1. "
                          "The attention methods read each block's probabilities at a submodule that returns them (timm's attn_drop, an nn.Softmax "
                          "module; name them with options.attentionLayers, 'blocks.*.attn.attn_drop'), at a softmax of the graph, or inside "
                          "nn.MultiheadAttention's, nn.TransformerEncoderLayer's and scaled_dot_product_attention's fused ops",
                          "options.attentionLayers");
  }
  slots_ = chosen;
  for (size_t i : chosen) names_.push_back(probed_->layers()[i]);
  if (fused_ > 0) {
    // The rewrite must not change what the model computes: checked on the sample, every call.
    at::NoGradGuard no_grad;
    at::Tensor theirs = model.scores(model.module(), x).detach().to(at::kDouble);
    output_difference_ = (scores.detach().to(at::kDouble) - theirs).abs().max().item<double>();
    const double bound = 1e-4 * std::max(1.0, theirs.abs().max().item<double>());
    if (!(output_difference_ <= bound)) {
      throw Error("ERR_MODEL_RUN", "Taking the model's fused attention apart (to read its probabilities) changed its scores by " +
                                       std::to_string(output_difference_) +
                                       " on the first image; the attention methods cannot read this model's attention faithfully");
    }
  }
}

at::Tensor attention_heads(const at::Tensor& a, int64_t batch) { return a.dim() == 4 ? a : a.reshape({batch, -1, a.size(1), a.size(2)}); }

std::vector<at::Tensor> AttentionProbe::outputs() const {
  std::vector<at::Tensor> out;
  for (size_t i : slots_) out.push_back(probed_->activation(i));
  return out;
}

std::vector<at::Tensor> AttentionProbe::maps(int64_t batch) const {
  std::vector<at::Tensor> out;
  for (const at::Tensor& a : outputs()) out.push_back(attention_heads(a, batch));
  return out;
}

at::Tensor fuse_heads(const at::Tensor& attention, const std::string& fusion) {
  if (fusion == "max") return attention.amax(1);
  if (fusion == "min") return attention.amin(1);
  return attention.mean(1);
}

void AttentionProbe::add_details(ExplainResult& result) const {
  result.add("layers", Record{{"count", static_cast<double>(names_.size())}, {"fused", static_cast<double>(fused_)}, {"outputDifference", output_difference_}});
}

at::Tensor class_row_map(const at::Tensor& relevance, const TokenGrid& grid) {
  at::Tensor row = grid.prefix > 0 ? relevance.select(1, 0) : relevance.mean(1);
  return row.slice(1, grid.prefix).reshape({relevance.size(0), grid.height, grid.width});
}

}  // namespace ts
