#include "core/module_clone.h"

#include <torch/csrc/jit/api/function_impl.h>

#include <memory>
#include <unordered_map>

namespace ts {
namespace {

using TypeRemap = std::unordered_map<c10::TypePtr, c10::TypePtr>;

// Copies `fn` (a method of the original type) into `cu` as a method of `target`, the graph's and the
// schema's class types mapped to their clones so that `self` and submodule calls resolve in the clone.
void clone_method(torch::jit::Function& fn, const c10::ClassTypePtr& target, torch::jit::CompilationUnit& cu, const TypeRemap& remap) {
  auto map = [&](c10::TypePtr t) -> c10::TypePtr {
    auto it = remap.find(t);
    return it == remap.end() ? t : it->second;
  };
  auto graph = torch::jit::toGraphFunction(fn).graph()->copy();
  graph->remapTypes(map);
  auto schema = fn.getSchema().cloneWithRemappedTypes(map);
  c10::QualifiedName name(*target->name(), fn.name());
  torch::jit::Function* copied = cu.create_function(name, graph);
  target->addMethod(copied);
  copied->setSchema(std::move(schema));
}

torch::jit::Module clone_into(const torch::jit::Module& orig, const std::shared_ptr<torch::jit::CompilationUnit>& cu, TypeRemap& remap) {
  const c10::ClassTypePtr& type = orig.type();
  // Scripted instances of one class share a type: clone the type once and reuse it, as the original does.
  auto seen = remap.find(type);
  const bool type_cloned = seen != remap.end();
  torch::jit::Module r =
      type_cloned ? torch::jit::Module(cu, seen->second->expect<c10::ClassType>()) : torch::jit::Module(*type->name(), cu, /*shouldMangle=*/true);
  if (!type_cloned) remap[type] = r.type();

  for (size_t i = 0; i < type->numAttributes(); ++i) {
    const std::string& name = type->getAttributeName(i);
    const c10::TypePtr& attr_type = type->getAttribute(i);
    c10::IValue value = orig._ivalue()->getSlot(i);
    if (attr_type->is_module()) {
      torch::jit::Module sub = clone_into(torch::jit::Module(value.toObject()), cu, remap);
      // An attribute typed by a module interface keeps the interface type and holds the cloned module.
      r.type()->addOrCheckAttribute(name, attr_type->cast<c10::ClassType>() ? sub.type() : attr_type);
      r._ivalue()->setAttr(name, sub._ivalue());
    } else {
      r.register_attribute(name, attr_type, value, type->is_parameter(i), type->is_buffer(i));
    }
  }

  if (!type_cloned) {
    for (size_t i = 0; i < type->numConstants(); ++i) r.type()->addConstant(type->getConstantName(i), type->getConstant(i));
    for (torch::jit::Function* fn : type->methods()) clone_method(*fn, r.type(), *cu, remap);
    // Custom state (e.g. packed parameters) is rebuilt the way torch's own clone does.
    if (auto setstate = r.find_method("__setstate__")) {
      auto getstate = r.find_method("__getstate__");
      TORCH_CHECK(getstate, "module defines __setstate__ without __getstate__");
      auto state = (*getstate)(std::vector<c10::IValue>{});
      (*setstate)(std::vector<c10::IValue>{state});
    }
  }
  return r;
}

}  // namespace

torch::jit::Module clone_module(const torch::jit::Module& module) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  TypeRemap remap;
  return clone_into(module, cu, remap);
}

}  // namespace ts
