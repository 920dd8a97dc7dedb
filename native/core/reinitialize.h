// Re-drawn parameters for the model-randomisation sanity check (Adebayo et al., NeurIPS 2018): a copy of the
// model whose chosen layers get fresh weights, drawn as PyTorch's reset_parameters() draws them, so the
// user's model is never changed. Plain C++ on libtorch; no Node here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"

namespace ts {

// Names of the submodules that hold parameters of their own, in the model's order (depth first, the
// order of named_modules(): input side first).
std::vector<std::string> parameter_layers(const Model& model);

// A deep copy of the model whose `layers` (names from parameter_layers) have their parameters re-drawn:
// convolutions and linear layers uniform in +-1/sqrt(fan_in) (PyTorch's kaiming_uniform with a = sqrt(5)) and
// their bias likewise; normalisation layers reset to weight 1, bias 0 and fresh running statistics; any other
// parameter of two or more dimensions as a linear weight, of one dimension as a bias. Each layer's draw starts
// from a generator seeded with `seed`, so a layer gets the same weights whichever other layers are drawn
// with it (cascading and independent randomisation agree layer by layer). Throws ts::Error with code
// ERR_LAYER_NOT_FOUND (argument "layers") for a name that is not a parameter layer.
std::shared_ptr<Model> clone_reinitialized(const Model& model, const std::vector<std::string>& layers, uint64_t seed);

}  // namespace ts
