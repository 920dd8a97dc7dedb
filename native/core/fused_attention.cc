#include "core/fused_attention.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "core/errors.h"

namespace ts {
namespace {

// B x L x E -> B x heads x L x d.
at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  if (x.dim() != 3 || x.size(2) % heads != 0) {
    throw Error("ERR_MODEL_RUN", "Expected batch-first B x L x E inputs to fused attention with E divisible by " + std::to_string(heads) + " heads, got " +
                                     std::to_string(x.dim()) + " dimensions");
  }
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

// B x heads x L x d -> B x L x E.
at::Tensor merge_heads(const at::Tensor& x) { return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)}); }

// Softmax over the last dimension where `masked` (bool, broadcast to the scores) is false; rows masked
// entirely give zeros, as the fused kernels' masked softmax does (a plain softmax would give NaN).
at::Tensor masked_softmax(const at::Tensor& scores, const at::Tensor& masked) {
  at::Tensor p = at::softmax(scores.masked_fill(masked, -std::numeric_limits<double>::infinity()), -1);
  return p.masked_fill(masked.all(-1, /*keepdim=*/true), 0);
}

// softmax(q k^T / sqrt(d)) of nn.MultiheadAttention's fast path: q and k projected by the first two thirds
// of the packed in-projection. A mask is true (or non-zero) where a key is left out; mask_type 0 is an
// L x S attention mask, 1 a B x S key padding mask, 2 a mask that broadcasts to B x heads x L x S.
at::Tensor mha_probabilities(const at::Tensor& query, const at::Tensor& key, const at::Tensor& qkv_weight, const at::Tensor& qkv_bias, int64_t num_head,
                             const c10::optional<at::Tensor>& mask, c10::optional<int64_t> mask_type) {
  const int64_t e = qkv_weight.size(1);
  at::Tensor q = split_heads(at::linear(query, qkv_weight.narrow(0, 0, e), qkv_bias.narrow(0, 0, e)), num_head);
  at::Tensor k = split_heads(at::linear(key, qkv_weight.narrow(0, e, e), qkv_bias.narrow(0, e, e)), num_head);
  q = q / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1));
  if (!mask || !mask->defined()) return at::softmax(scores, -1);
  at::Tensor m = mask->to(at::kBool);
  if (mask_type && *mask_type == 1) m = m.view({m.size(0), 1, 1, m.size(-1)});
  return masked_softmax(scores, m.expand_as(scores));
}

// The rest of the fast path from the probabilities: p v, the heads merged, the out-projection; and the
// weights it returns when asked (averaged over heads or not).
std::tuple<at::Tensor, at::Tensor> mha_output(const at::Tensor& p, const at::Tensor& value, const at::Tensor& qkv_weight, const at::Tensor& qkv_bias,
                                              const at::Tensor& proj_weight, const at::Tensor& proj_bias, bool need_weights, bool average_attn_weights) {
  const int64_t e = qkv_weight.size(1);
  at::Tensor v = split_heads(at::linear(value, qkv_weight.narrow(0, 2 * e, e), qkv_bias.narrow(0, 2 * e, e)), p.size(1));
  at::Tensor out = at::linear(merge_heads(at::matmul(p, v)), proj_weight, proj_bias);
  at::Tensor weights = need_weights ? (average_attn_weights ? p.mean(1) : p) : at::empty({0}, p.options());
  return {out, weights};
}

// nn.TransformerEncoderLayer's fast path around its attention: the input of the attention (src, or
// LayerNorm 1 of it when norm_first), and the block's output from src and the attention's output.
at::Tensor encoder_attention_input(const at::Tensor& src, bool norm_first, double eps, const at::Tensor& norm_weight_1, const at::Tensor& norm_bias_1) {
  return norm_first ? at::layer_norm(src, {src.size(-1)}, norm_weight_1, norm_bias_1, eps) : src;
}

at::Tensor encoder_output(const at::Tensor& src, const at::Tensor& attention, bool use_gelu, bool norm_first, double eps, const at::Tensor& norm_weight_1,
                          const at::Tensor& norm_bias_1, const at::Tensor& norm_weight_2, const at::Tensor& norm_bias_2, const at::Tensor& ffn_weight_1,
                          const at::Tensor& ffn_bias_1, const at::Tensor& ffn_weight_2, const at::Tensor& ffn_bias_2) {
  const std::vector<int64_t> shape{src.size(-1)};
  at::Tensor x = attention + src;
  if (!norm_first) x = at::layer_norm(x, shape, norm_weight_1, norm_bias_1, eps);
  at::Tensor residual = x;
  if (norm_first) x = at::layer_norm(x, shape, norm_weight_2, norm_bias_2, eps);
  x = at::linear(x, ffn_weight_1, ffn_bias_1);
  x = use_gelu ? at::gelu(x) : at::relu(x);
  x = at::linear(x, ffn_weight_2, ffn_bias_2) + residual;
  if (!norm_first) x = at::layer_norm(x, shape, norm_weight_2, norm_bias_2, eps);
  return x;
}

// scaled_dot_product_attention's probabilities, by its documented reference: scale 1/sqrt(d) unless
// given; is_causal keeps keys j <= i; a bool mask is true where a key takes part, a float mask is added;
// enable_gqa repeats the key heads to the query's count.
at::Tensor sdpa_probabilities(const at::Tensor& query, const at::Tensor& key, const c10::optional<at::Tensor>& attn_mask, bool is_causal,
                              c10::optional<double> scale, bool enable_gqa) {
  at::Tensor k = enable_gqa ? key.repeat_interleave(query.size(-3) / key.size(-3), -3) : key;
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(query.size(-1)));
  at::Tensor scores = at::matmul(query * s, k.transpose(-2, -1));
  at::Tensor left_out;  // true where a key is left out
  if (is_causal) left_out = at::ones({query.size(-2), key.size(-2)}, query.options().dtype(at::kBool)).tril().logical_not();
  if (attn_mask && attn_mask->defined()) {
    if (attn_mask->scalar_type() == at::kBool) {
      at::Tensor m = attn_mask->logical_not();
      left_out = left_out.defined() ? at::logical_or(left_out, m) : m;
    } else {
      scores = scores + *attn_mask;
    }
  }
  if (!left_out.defined()) return at::softmax(scores, -1);
  return at::softmax(scores.masked_fill(left_out, -std::numeric_limits<double>::infinity()), -1);
}

at::Tensor sdpa_output(const at::Tensor& p, const at::Tensor& value, bool enable_gqa) {
  return at::matmul(p, enable_gqa ? value.repeat_interleave(p.size(-3) / value.size(-3), -3) : value);
}

const c10::Symbol kMhaProbabilities = c10::Symbol::fromQualString("ts_attention::mha_probabilities");
const c10::Symbol kSdpaProbabilities = c10::Symbol::fromQualString("ts_attention::sdpa_probabilities");

void collect(torch::jit::Block* block, std::vector<torch::jit::Node*>& out) {
  for (torch::jit::Node* n : block->nodes()) {
    out.push_back(n);
    for (torch::jit::Block* b : n->blocks()) collect(b, out);
  }
}

bool is_fused(const torch::jit::Node* n) {
  static const c10::Symbol kinds[] = {c10::Symbol::fromQualString("aten::_native_multi_head_attention"),
                                      c10::Symbol::fromQualString("aten::_transformer_encoder_layer_fwd"),
                                      c10::Symbol::fromQualString("aten::scaled_dot_product_attention")};
  return std::find(std::begin(kinds), std::end(kinds), n->kind()) != std::end(kinds);
}

// Calls f on the graph of every method of `module`'s type and its submodules' types (each type once).
template <typename F>
void for_each_method_graph(const torch::jit::Module& module, F f) {
  std::unordered_set<const c10::ClassType*> seen;
  for (const torch::jit::Module& m : module.modules()) {
    if (!seen.insert(m.type().get()).second) continue;
    for (torch::jit::Function* fn : m.type()->methods()) f(*torch::jit::toGraphFunction(*fn).graph());
  }
}

torch::jit::Value* insert(torch::jit::Graph& graph, const char* op, const std::vector<torch::jit::NamedValue>& inputs) {
  return graph.insert(c10::Symbol::fromQualString(op), inputs);
}

}  // namespace

TORCH_LIBRARY(ts_attention, m) {
  m.def(
      "mha_probabilities(Tensor query, Tensor key, Tensor qkv_weight, Tensor qkv_bias, int num_head, Tensor? mask, int? mask_type) "
      "-> Tensor",
      &mha_probabilities);
  m.def(
      "mha_output(Tensor p, Tensor value, Tensor qkv_weight, Tensor qkv_bias, Tensor proj_weight, Tensor proj_bias, bool need_weights, "
      "bool average_attn_weights) -> (Tensor, Tensor)",
      &mha_output);
  m.def("encoder_attention_input(Tensor src, bool norm_first, float eps, Tensor norm_weight_1, Tensor norm_bias_1) -> Tensor", &encoder_attention_input);
  m.def(
      "encoder_output(Tensor src, Tensor attention, bool use_gelu, bool norm_first, float eps, Tensor norm_weight_1, Tensor norm_bias_1, "
      "Tensor norm_weight_2, Tensor norm_bias_2, Tensor ffn_weight_1, Tensor ffn_bias_1, Tensor ffn_weight_2, Tensor ffn_bias_2) -> Tensor",
      &encoder_output);
  m.def("sdpa_probabilities(Tensor query, Tensor key, Tensor? attn_mask, bool is_causal, float? scale, bool enable_gqa) -> Tensor", &sdpa_probabilities);
  m.def("sdpa_output(Tensor p, Tensor value, bool enable_gqa) -> Tensor", &sdpa_output);
}

bool has_fused_attention(const torch::jit::Module& module) {
  bool found = false;
  for_each_method_graph(module, [&](torch::jit::Graph& graph) {
    std::vector<torch::jit::Node*> nodes;
    collect(graph.block(), nodes);
    found = found || std::any_of(nodes.begin(), nodes.end(), is_fused);
  });
  return found;
}

int64_t decompose_fused_attention(torch::jit::Module& module) {
  int64_t rewritten = 0;
  for_each_method_graph(module, [&](torch::jit::Graph& graph) { rewritten += static_cast<int64_t>(decompose_fused_attention(graph).size()); });
  return rewritten;
}

bool is_attention_probabilities(const torch::jit::Node* node) { return node->kind() == kMhaProbabilities || node->kind() == kSdpaProbabilities; }

std::vector<FusedAttention> decompose_fused_attention(torch::jit::Graph& graph) {
  static const c10::Symbol kMha = c10::Symbol::fromQualString("aten::_native_multi_head_attention");
  static const c10::Symbol kEncoder = c10::Symbol::fromQualString("aten::_transformer_encoder_layer_fwd");
  static const c10::Symbol kSdpa = c10::Symbol::fromQualString("aten::scaled_dot_product_attention");
  std::vector<torch::jit::Node*> nodes;
  collect(graph.block(), nodes);
  std::vector<FusedAttention> done;
  for (torch::jit::Node* n : nodes) {
    const c10::Symbol kind = n->kind();
    if (kind != kMha && kind != kEncoder && kind != kSdpa) continue;
    torch::jit::WithInsertPoint guard(n);
    auto in = [&](size_t i) { return n->input(i); };
    torch::jit::Value* p = nullptr;
    if (kind == kMha && n->inputs().size() == 13 && n->outputs().size() == 2) {
      // (query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, need_weights,
      //  average_attn_weights, mask_type) -> (out, weights)
      p = insert(graph, "ts_attention::mha_probabilities", {in(0), in(1), in(5), in(6), in(4), in(9), in(12)});
      torch::jit::Value* both = insert(graph, "ts_attention::mha_output", {p, in(2), in(5), in(6), in(7), in(8), in(10), in(11)});
      torch::jit::Node* unpack = graph.insertNode(graph.createTupleUnpack(both));
      n->output(0)->replaceAllUsesWith(unpack->output(0));
      n->output(1)->replaceAllUsesWith(unpack->output(1));
    } else if (kind == kEncoder && n->inputs().size() == 20) {
      // (src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps, norm_weight_1,
      //  norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask, mask_type)
      torch::jit::Value* h = insert(graph, "ts_attention::encoder_attention_input", {in(0), in(8), in(9), in(10), in(11)});
      p = insert(graph, "ts_attention::mha_probabilities", {h, h, in(3), in(4), in(2), in(18), in(19)});
      const bool no = false;
      torch::jit::Value* both = insert(graph, "ts_attention::mha_output", {p, h, in(3), in(4), in(5), in(6), no, no});
      torch::jit::Node* unpack = graph.insertNode(graph.createTupleUnpack(both));
      torch::jit::Value* out = insert(graph, "ts_attention::encoder_output",
                                      {in(0), unpack->output(0), in(7), in(8), in(9), in(10), in(11), in(12), in(13), in(14), in(15), in(16), in(17)});
      n->output()->replaceAllUsesWith(out);
    } else if (kind == kSdpa && n->inputs().size() >= 6 && n->inputs().size() <= 8) {
      // (query, key, value, attn_mask, dropout_p, is_causal[, scale[, enable_gqa]]): dropout is for training, left out.
      torch::jit::NamedValue scale = n->inputs().size() > 6 ? torch::jit::NamedValue(in(6)) : torch::jit::NamedValue(c10::IValue());
      torch::jit::NamedValue gqa = n->inputs().size() > 7 ? torch::jit::NamedValue(in(7)) : torch::jit::NamedValue(false);
      p = insert(graph, "ts_attention::sdpa_probabilities", {in(0), in(1), in(3), in(5), scale, gqa});
      n->output()->replaceAllUsesWith(insert(graph, "ts_attention::sdpa_output", {p, in(2), gqa}));
    } else {
      continue;  // a schema this code does not know: left as it is
    }
    done.push_back({kind.toQualString(), p});
    n->destroy();
  }
  return done;
}

}  // namespace ts
