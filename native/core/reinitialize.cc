#include "core/reinitialize.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>

#include "core/errors.h"

namespace ts {
namespace {

// PyTorch's fan_in: the weight's second dimension times its receptive field.
int64_t fan_in(const at::Tensor& weight) {
  int64_t fan = weight.dim() >= 2 ? weight.size(1) : weight.numel();
  for (int64_t d = 2; d < weight.dim(); ++d) fan *= weight.size(d);
  return fan;
}

// Uniform in [-bound, bound], drawn on the CPU from `gen` (the same numbers on every device), then copied in.
void draw_uniform(at::Tensor& t, double bound, at::Generator& gen) {
  at::Tensor fresh = at::empty(t.sizes(), at::TensorOptions().dtype(at::kFloat));
  fresh.uniform_(-bound, bound, gen);
  t.copy_(fresh);
}

bool is_norm(const std::string& type) {
  return type.find("BatchNorm") != std::string::npos || type.find("InstanceNorm") != std::string::npos || type == "LayerNorm" || type == "GroupNorm";
}

void reinitialize(torch::jit::Module& module, uint64_t seed) {
  const std::string type = module.type()->name() ? module.type()->name()->name() : "";
  std::map<std::string, at::Tensor> params;
  for (const auto& p : module.named_parameters(/*recurse=*/false)) params[p.name] = p.value;
  if (is_norm(type)) {
    // reset_parameters() of the norms: running statistics back to their start, weight 1, bias 0.
    for (const auto& b : module.named_buffers(/*recurse=*/false)) {
      at::Tensor t = b.value;
      if (b.name == "running_var")
        t.fill_(1);
      else
        t.zero_();
    }
    if (params.count("weight")) params["weight"].fill_(1);
    if (params.count("bias")) params["bias"].zero_();
    return;
  }
  // As Conv*d and Linear reset_parameters(): the weight, then the bias, from one generator.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  int64_t fan = 0;
  if (params.count("weight")) {
    fan = fan_in(params["weight"]);
    draw_uniform(params["weight"], fan > 0 ? 1.0 / std::sqrt(static_cast<double>(fan)) : 0.0, gen);
  }
  if (params.count("bias")) draw_uniform(params["bias"], fan > 0 ? 1.0 / std::sqrt(static_cast<double>(fan)) : 0.0, gen);
  for (auto& [name, t] : params) {
    if (name == "weight" || name == "bias") continue;
    int64_t f = fan_in(t);
    draw_uniform(t, f > 0 ? 1.0 / std::sqrt(static_cast<double>(f)) : 0.0, gen);
  }
}

}  // namespace

std::vector<std::string> parameter_layers(const Model& model) {
  std::vector<std::string> names;
  for (const auto& m : model.module().named_modules()) {
    if (m.name.empty()) continue;
    auto own = m.value.named_parameters(/*recurse=*/false);
    if (own.begin() != own.end()) names.push_back(m.name);
  }
  return names;
}

std::shared_ptr<Model> clone_reinitialized(const Model& model, const std::vector<std::string>& layers, uint64_t seed) {
  const auto known = parameter_layers(model);
  for (const auto& name : layers) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (size_t i = 0; i < known.size() && i < 12; ++i) list += (i ? ", " : "") + known[i];
      if (known.size() > 12) list += ", ...";
      throw Error("ERR_LAYER_NOT_FOUND", "Expected a layer that holds parameters (" + list + ") for layers but received '" + name + "'", "layers");
    }
  }
  torch::jit::Module copy = model.module().deepcopy();
  c10::NoGradGuard no_grad;
  for (const auto& m : copy.named_modules()) {
    if (std::find(layers.begin(), layers.end(), m.name) == layers.end()) continue;
    torch::jit::Module sub = m.value;
    reinitialize(sub, seed);
  }
  return model.with_module(std::move(copy));
}

}  // namespace ts
