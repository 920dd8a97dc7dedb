// Attention probabilities of a transformer's blocks, read at named layers, and what the attention
// methods (attention-rollout, attention-relevance) share.
//
// TorchScript keeps no attention weights. They are reached as any layer is (core/layers.h): a submodule
// whose output is a block's attention probabilities, N x heads x T x T with rows summing to 1 (timm's
// `attn_drop`, the identity in eval; an nn.Softmax module). `attentionLayers` names them with a pattern;
// without one, every layer whose output on the first image has that form is taken, in the model's
// module order (consecutive layers with equal outputs, such as a Softmax followed by its Dropout, once).
// When no layer has them (attention written as a bare softmax call, nn.MultiheadAttention's weights path),
// the outputs of the forward graph's aten::softmax nodes are read instead, with the same test, after the
// attention ops that PyTorch fuses (nn.MultiheadAttention's and nn.TransformerEncoderLayer's fast paths,
// scaled_dot_product_attention) are taken apart on the clone (core/fused_attention.h).
// nn.MultiheadAttention's (N * heads) x T x T weights count as N x heads x T x T.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/explain.h"
#include "core/layers.h"
#include "core/tokens.h"

namespace ts {

// `*` matches any run of characters other than '.', everything else itself ("blocks.*.attn.attn_drop").
bool glob_match(const std::string& pattern, const std::string& name);

class AttentionProbe {
 public:
  // `pattern`: options.attentionLayers (none: found by their outputs); `sample`: one prepared image (1 x C x H x W)
  // on the model's device, run once to find or check the layers, with the gradient mode the method runs in
  // (`with_grad`: grad enabled and an input that requires it, which steers scripted nn.MultiheadAttention
  // off its fast path, so the sample takes the branches the method's passes will). Throws
  // ERR_LAYER_NOT_FOUND when no layer gives attention probabilities, ERR_INVALID_ARG_VALUE
  // (options.attentionLayers) when a named one does not, ERR_MODEL_RUN when taking fused attention apart
  // changed the model's scores on the sample (beyond 1e-4 of their largest magnitude, at least 1e-4).
  AttentionProbe(Model& model, const std::optional<std::string>& pattern, const at::Tensor& sample, bool with_grad = false);

  torch::jit::Module& module() { return probed_->module(); }
  // The layers read ("aten::softmax #i" for softmax nodes).
  const std::vector<std::string>& layers() const { return names_; }
  // After a forward pass of module() on a batch of `batch`: each layer's attention, batch x heads x T x T, in order.
  std::vector<at::Tensor> maps(int64_t batch) const;
  // The same, as recorded (before the reshape of (N * heads) x T x T): what a gradient is taken with respect to.
  std::vector<at::Tensor> outputs() const;
  // Fused attention ops taken apart in the clone (0 when the attention was read at layers or softmax nodes).
  int64_t fused() const { return fused_; }
  // With fused() > 0: the largest |score difference| between the clone and the model on the sample.
  double output_difference() const { return output_difference_; }
  // Adds the "layers" record every attention method reports: the layers read, the fused ops taken apart and
  // output_difference().
  void add_details(ExplainResult& result) const;

 private:
  // Picks the attention outputs of probed_ after a forward of the sample; false when none.
  bool choose(const std::optional<std::string>& pattern, std::vector<size_t>& chosen);
  std::unique_ptr<ProbedModule> probed_;
  std::vector<size_t> slots_;
  std::vector<std::string> names_;
  int64_t fused_ = 0;
  double output_difference_ = 0;
};

// A layer's attention as batch x heads x T x T ((N * heads) x T x T reshaped).
at::Tensor attention_heads(const at::Tensor& attention, int64_t batch);

// The heads of one block's attention (N x heads x T x T) fused by 'mean', 'max' or 'min': N x T x T.
at::Tensor fuse_heads(const at::Tensor& attention, const std::string& fusion);

// The map of a token-by-token relevance matrix R (N x T x T): the class token's row (token 0) over the grid
// tokens, N x h x w; with no prefix tokens (no class token), the mean of all rows.
at::Tensor class_row_map(const at::Tensor& relevance, const TokenGrid& grid);

}  // namespace ts
