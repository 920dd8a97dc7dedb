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
#include <utility>
#include <vector>

#include "core/model.h"

namespace ts {

struct ProbeSlot;

// A layer a method asks for, and the option that named it ("options.layer"), for the error if it is not one.
struct LayerRef {
  std::string name;
  std::string option;
};

class ProbedModule {
 public:
  using Transform = std::function<at::Tensor(const at::Tensor&)>;

  // Clones `model`'s module and probes each of `layers`. An unknown layer, or one whose output cannot
  // be probed (not called through its forward, or not returning a tensor), throws ERR_LAYER_NOT_FOUND
  // naming the valid layers and the option; with `skip_unusable` such layers are left out silently instead.
  ProbedModule(Model& model, const std::vector<LayerRef>& layers, bool skip_unusable = false);
  // Values of the inlined forward graph to probe, each with its name, in order.
  using GraphValues = std::vector<std::pair<std::string, torch::jit::Value*>>;
  // Clones `model`'s module, inlines its whole forward graph and probes the values `select` returns from it
  // (the outputs of softmax nodes: attention written without a submodule of its own); `select` may first
  // rewrite that graph (core/fused_attention.h).
  ProbedModule(Model& model, const std::function<GraphValues(torch::jit::Graph&)>& select);
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

 private:
  void add_slot(const std::string& name, int64_t id);
  torch::jit::Module clone_;
  std::vector<std::string> probed_;
  std::vector<std::shared_ptr<ProbeSlot>> slots_;
  std::vector<int64_t> ids_;
};

// Submodule names of the model that may be probed, depth first.
std::vector<std::string> layer_names(Model& model);

// Throws ERR_LAYER_NOT_FOUND for `layer`, named by the option `argument` ("options.layer"), listing the model's layers.
[[noreturn]] void throw_layer_not_found(Model& model, const std::string& layer, const std::string& why, const std::string& argument);

// The output shape (batch included) of every layer that can be probed, in layer_names order, for one
// forward pass of `image` (1 x C x H x W, values in [0, 1]) through a probed clone.
struct LayerShape {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<LayerShape> layer_shapes(Model& model, const at::Tensor& image);

// The root `forward` graph of a module (a clone's, to edit it).
std::shared_ptr<torch::jit::Graph> forward_graph(torch::jit::Module& module);

}  // namespace ts
