// Attention probabilities of a transformer's blocks, read at named layers, and what the attention
// methods (attention-rollout, attention-relevance) share.
//
// TorchScript keeps no attention weights. They are reached as any layer is (core/layers.h): a submodule
// whose output is a block's attention probabilities, N x heads x T x T with rows summing to 1 (timm's
// `attn_drop`, the identity in eval; an nn.Softmax module). `attentionLayers` names them with a pattern;
// without one, every layer whose output on the first image has that form is taken, in the model's
// module order (consecutive layers with equal outputs, such as a Softmax followed by its Dropout, once).
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
  // on the model's device, run once to find or check the layers. Throws ERR_LAYER_NOT_FOUND when no layer gives
  // attention probabilities, ERR_INVALID_ARG_VALUE (options.attentionLayers) when a named one does not.
  AttentionProbe(Model& model, const std::optional<std::string>& pattern, const at::Tensor& sample);

  torch::jit::Module& module() { return probed_->module(); }
  const std::vector<std::string>& layers() const { return probed_->layers(); }
  // After a forward pass of module(): each layer's attention, N x heads x T x T, in the model's order.
  std::vector<at::Tensor> maps() const;

 private:
  std::unique_ptr<ProbedModule> probed_;
};

// The heads of one block's attention (N x heads x T x T) fused by 'mean', 'max' or 'min': N x T x T.
at::Tensor fuse_heads(const at::Tensor& attention, const std::string& fusion);

// The map of a token-by-token relevance matrix R (N x T x T): the class token's row (token 0) over the grid
// tokens, N x h x w; with no prefix tokens (no class token), the mean of all rows.
at::Tensor class_row_map(const at::Tensor& relevance, const TokenGrid& grid);

}  // namespace ts
