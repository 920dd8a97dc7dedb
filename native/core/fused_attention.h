// Attention fused into one op, taken apart on a clone so that its probabilities are a tensor of the graph.
//
// PyTorch 2.x exports keep a transformer's attention inside one op where its fast paths are taken:
// nn.MultiheadAttention in eval with no gradient needed (aten::_native_multi_head_attention),
// nn.TransformerEncoderLayer likewise (aten::_transformer_encoder_layer_fwd, the whole block), and
// F.scaled_dot_product_attention (timm's fused attention; nn.MultiheadAttention's other path). None of
// them hands out the probabilities. decompose_fused_attention replaces each such node of an inlined
// graph by the same computation in two steps, ts_attention ops made of plain ATen ops (so autograd runs
// through them): one returns the probabilities, B x heads x L x S, the other the rest of the op from
// them. The attention methods probe the first one's output as they probe a softmax node's. The math is
// the fused kernels' (q scaled by 1/sqrt(d) before q k^T, masks with their semantics); the attention
// methods check on their first image that the rewritten clone's scores equal the model's.
#pragma once
#include <torch/script.h>

#include <string>
#include <vector>

namespace ts {

struct FusedAttention {
  std::string op;                    // the fused op's kind, "aten::_native_multi_head_attention"
  torch::jit::Value* probabilities;  // B x heads x L x S in the rewritten graph
};

// Rewrites every fused attention node of `graph` (whose calls are inlined), in graph order, nested blocks
// included (a scripted nn.MultiheadAttention holds both of PyTorch's paths). Returns what it rewrote.
std::vector<FusedAttention> decompose_fused_attention(torch::jit::Graph& graph);

// Whether any method graph of `module` or its submodules holds a fused attention op.
bool has_fused_attention(const torch::jit::Module& module);

// Rewrites, in place, every method graph of `module` and its submodules (a clone's: never the user's
// module, whose types and graphs it would change) as above, for methods that take gradients: the fused
// ops have no derivative. Returns the number of ops rewritten.
int64_t decompose_fused_attention(torch::jit::Module& module);

// Whether `node` is one of decompose_fused_attention's probability ops.
bool is_attention_probabilities(const torch::jit::Node* node);

}  // namespace ts
