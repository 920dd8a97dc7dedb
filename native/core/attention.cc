#include "core/attention.h"

#include <algorithm>

#include "core/errors.h"

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

AttentionProbe::AttentionProbe(Model& model, const std::optional<std::string>& pattern, const at::Tensor& sample) {
  at::NoGradGuard no_grad;
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
    model.scores(probed_->module(), sample);
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
  // No layer returns them: the softmax nodes of the whole forward graph.
  probed_.reset();
  probed_ = std::make_unique<ProbedModule>(model, c10::Symbol::fromQualString("aten::softmax"));
  model.scores(probed_->module(), sample);
  chosen.clear();
  if (!choose(std::nullopt, chosen)) {
    throw_layer_not_found(model, "(any)",
                          "gives attention probabilities: no layer's output, and no softmax in the forward graph, is N x heads x T x T with rows summing to 1. "
                          "The attention methods read each block's probabilities at a submodule that returns them (timm's attn_drop, an nn.Softmax "
                          "module; name them with options.attentionLayers, 'blocks.*.attn.attn_drop') or at a softmax of the graph; fused attention "
                          "(scaled_dot_product_attention, nn.MultiheadAttention's fast path) keeps them inside one op",
                          "options.attentionLayers");
  }
  slots_ = chosen;
  for (size_t i : chosen) names_.push_back(probed_->layers()[i]);
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

at::Tensor class_row_map(const at::Tensor& relevance, const TokenGrid& grid) {
  at::Tensor row = grid.prefix > 0 ? relevance.select(1, 0) : relevance.mean(1);
  return row.slice(1, grid.prefix).reshape({relevance.size(0), grid.height, grid.width});
}

}  // namespace ts
