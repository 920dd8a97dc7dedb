// Named layers of a TorchScript model, reached by graph surgery on a clone of the module.
//
// TorchScript has no forward/backward hooks. Instead, ProbedModule clones the user's module (new class
// types, shared parameter tensors, copied method graphs) and, in the clone's root `forward` graph,
// inlines the calls along the path to each named submodule until the submodule's own
// `prim::CallMethod[name="forward"]` is visible there; after that call it inserts the custom operator
// `ts_probe::probe(Tensor x, int id)`. The probe records its input (the layer's output activation) and
// returns either a copy of it (so that gradients with respect to the recorded activation are exact,
// even if a later in-place op overwrites the value it returned) or a transformed version of it (used
// to perturb a layer's channels). Editing only the root graph of a clone means that scripted instances
// sharing a class type, traced submodules with their own types, and the user's module itself are all
// untouched. No debug information (scopes, source ranges) is used.
#pragma once
#include <ATen/ATen.h>
#include <torch/script.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"

namespace ts {

struct ProbeSlot;

class ProbedModule {
 public:
  using Transform = std::function<at::Tensor(const at::Tensor&)>;

  // Clones `model`'s module and probes each of `layers`. An unknown layer, or one whose output cannot
  // be probed (not called through its forward, or not returning a tensor), throws ERR_LAYER_NOT_FOUND
  // naming the valid layers; with `skip_unusable` such layers are left out silently instead.
  ProbedModule(Model& model, const std::vector<std::string>& layers, bool skip_unusable = false);
  ~ProbedModule();
  ProbedModule(const ProbedModule&) = delete;
  ProbedModule& operator=(const ProbedModule&) = delete;

  torch::jit::Module& module() { return clone_; }
  // Layers actually probed, in the order given.
  const std::vector<std::string>& layers() const { return probed_; }
  // The activation the layer produced in the last forward pass (undefined before one).
  at::Tensor activation(size_t i = 0) const;
  // Replace the layer's output by transform(activation) in later forward passes (empty: no change).
  void set_transform(size_t i, Transform transform);
  void clear();

 private:
  torch::jit::Module clone_;
  std::vector<std::string> probed_;
  std::vector<std::shared_ptr<ProbeSlot>> slots_;
  std::vector<int64_t> ids_;
};

// Submodule names of the model that may be probed, depth first.
std::vector<std::string> layer_names(Model& model);

// Throws ERR_LAYER_NOT_FOUND for `layer` (argument `argument`), listing the model's layers.
[[noreturn]] void throw_layer_not_found(Model& model, const std::string& layer, const std::string& why, const std::string& argument = "layer");

// A clone of the model's module whose root forward graph has every submodule call inlined (one flat
// graph of aten ops), for passes that rewrite nodes (backward rules). Parameters are shared.
torch::jit::Module inlined_clone(Model& model);
std::shared_ptr<torch::jit::Graph> forward_graph(torch::jit::Module& module);

}  // namespace ts
