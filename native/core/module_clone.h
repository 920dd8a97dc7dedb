// A deep clone of a TorchScript module's types and methods, held in a compilation unit of its own.
//
// torch::jit::Module::clone registers the clone's new class types and method copies in the original
// module's compilation unit. Layer methods clone the model on every call, so that unit was mutated by
// two calls at once (no lock guards it: "method ... already defined", double frees) and kept every
// clone's types and graphs for the model's lifetime (RSS grew call after call). clone_module does the
// same copy into a fresh CompilationUnit that the clone alone owns: it goes away with the clone, and
// concurrent clones share nothing mutable. Parameters and other attribute values are shared, not copied
// (like clone(inplace = true)): the clone is for editing graphs, never weights.
#pragma once
#include <torch/script.h>

namespace ts {

torch::jit::Module clone_module(const torch::jit::Module& module);

}  // namespace ts
