#include "core/layers.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>

#include "core/errors.h"
#include "core/module_clone.h"

namespace ts {

struct ProbeSlot {
  std::mutex mutex;
  at::Tensor activation;
  ProbedModule::Transform transform;
};

namespace {

std::mutex g_slots_mutex;
std::map<int64_t, std::shared_ptr<ProbeSlot>>& slots() {
  static std::map<int64_t, std::shared_ptr<ProbeSlot>> s;
  return s;
}
std::atomic<int64_t> g_next_id{1};

// The probe: records x; returns a copy of it (so the recorded tensor stays the layer's output even when
// the graph later overwrites its input in place) or transform(x). Registered as a composite kernel, so
// autograd sees the ops it runs and gradients reach the recorded tensor.
at::Tensor probe(const at::Tensor& x, int64_t id) {
  std::shared_ptr<ProbeSlot> slot;
  {
    std::lock_guard<std::mutex> lock(g_slots_mutex);
    auto it = slots().find(id);
    if (it != slots().end()) slot = it->second;
  }
  if (!slot) return x.clone();
  std::lock_guard<std::mutex> lock(slot->mutex);
  slot->activation = x;
  if (slot->transform) return slot->transform(x);
  return x.clone();
}

// The attribute path from the root module's `self` to `v` ("features", "0"), or nothing if `v` is not
// reached from self by prim::GetAttr alone.
std::optional<std::vector<std::string>> path_of(torch::jit::Value* v, torch::jit::Value* self) {
  if (v == self) return std::vector<std::string>{};
  torch::jit::Node* n = v->node();
  if (n->kind() != c10::prim::GetAttr) return std::nullopt;
  auto parent = path_of(n->input(0), self);
  if (!parent) return std::nullopt;
  parent->push_back(n->s(c10::attr::name));
  return parent;
}

std::vector<std::string> split(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

void collect_calls(torch::jit::Block* block, std::vector<torch::jit::Node*>& out) {
  for (torch::jit::Node* n : block->nodes()) {
    if (n->kind() == c10::prim::CallMethod) out.push_back(n);
    for (torch::jit::Block* b : n->blocks()) collect_calls(b, out);
  }
}

void inline_call(torch::jit::Node* call) {
  auto cls = call->input(0)->type()->expect<c10::ClassType>();
  torch::jit::Function& fn = cls->getMethod(call->s(c10::attr::name));
  torch::jit::GraphFunction& gf = torch::jit::toGraphFunction(fn);
  // The callee's own graph (not its optimised graph, which has its calls inlined already).
  torch::jit::inlineCallTo(call, &gf, gf.graph().get());
}

// Inlines calls in `graph` until the named submodule's forward calls are visible in it; returns them.
std::vector<torch::jit::Node*> find_sites(torch::jit::Graph& graph, const std::vector<std::string>& target) {
  torch::jit::Value* self = graph.inputs().at(0);
  while (true) {
    std::vector<torch::jit::Node*> calls;
    collect_calls(graph.block(), calls);
    std::vector<torch::jit::Node*> sites;
    torch::jit::Node* to_inline = nullptr;
    for (torch::jit::Node* call : calls) {
      auto p = path_of(call->input(0), self);
      if (!p) continue;
      bool prefix = p->size() <= target.size() && std::equal(p->begin(), p->end(), target.begin());
      if (!prefix) continue;
      if (p->size() == target.size()) {
        if (call->s(c10::attr::name) == "forward") sites.push_back(call);
      } else {
        to_inline = call;
        break;
      }
    }
    if (!to_inline) return sites;
    inline_call(to_inline);
  }
}

}  // namespace

TORCH_LIBRARY(ts_probe, m) { m.def("probe(Tensor x, int id) -> Tensor", &probe); }

std::shared_ptr<torch::jit::Graph> forward_graph(torch::jit::Module& module) {
  return torch::jit::toGraphFunction(module.get_method("forward").function()).graph();
}

std::vector<std::string> layer_names(Model& model) { return model.submodule_names(); }

void throw_layer_not_found(Model& model, const std::string& layer, const std::string& why, const std::string& argument) {
  std::string names;
  for (const auto& n : layer_names(model)) names += (names.empty() ? "" : ", ") + n;
  throw Error("ERR_LAYER_NOT_FOUND", "Layer '" + layer + "' " + why + ". Valid layers: " + (names.empty() ? "(none)" : names), argument);
}

ProbedModule::ProbedModule(Model& model, const std::vector<LayerRef>& layers, bool skip_unusable) {
  // New types and copied methods in a compilation unit of the clone's own, the same parameter tensors
  // (nothing is copied, nothing of the user's is edited: only this clone's root forward graph changes).
  // Cloned from the module gradients run through (fused attention taken apart: core/fused_attention.h).
  clone_ = clone_module(model.differentiable());
  auto known = layer_names(model);
  std::vector<size_t> order(layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Parents before children: probing a child inlines its parent's call, after which the parent's own
  // call site is gone (its probe, inserted first, stays on the inlined result).
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return split(layers[a].name).size() < split(layers[b].name).size(); });
  auto graph = forward_graph(clone_);
  std::vector<bool> ok(layers.size(), false);
  std::vector<int64_t> ids(layers.size(), 0);
  for (size_t i : order) {
    const std::string& name = layers[i].name;
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      if (skip_unusable) continue;
      throw_layer_not_found(model, name, "is not a submodule of this model", layers[i].option);
    }
    auto sites = find_sites(*graph, split(name));
    bool tensors = !sites.empty() && std::all_of(sites.begin(), sites.end(), [](torch::jit::Node* n) {
      return n->outputs().size() == 1 && n->output()->type()->cast<c10::TensorType>() != nullptr;
    });
    if (!tensors) {
      if (skip_unusable) continue;
      throw_layer_not_found(model, name, sites.empty() ? "is never called through its forward() by the model" : "does not return a single tensor",
                            layers[i].option);
    }
    int64_t id = g_next_id.fetch_add(1);
    for (torch::jit::Node* site : sites) {
      torch::jit::WithInsertPoint guard(site->next());
      torch::jit::Value* out = site->output();
      torch::jit::Value* probed = graph->insert(c10::Symbol::fromQualString("ts_probe::probe"), {out, id});
      out->replaceAllUsesAfterNodeWith(probed->node(), probed);
    }
    ok[i] = true;
    ids[i] = id;
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (ok[i]) add_slot(layers[i].name, ids[i]);
  }
}

ProbedModule::ProbedModule(Model& model, const std::function<GraphValues(torch::jit::Graph&)>& select) {
  clone_ = clone_module(model.module());
  auto graph = forward_graph(clone_);
  torch::jit::Inline(*graph);
  for (const auto& [name, value] : select(*graph)) {
    int64_t id = g_next_id.fetch_add(1);
    torch::jit::WithInsertPoint guard(value->node()->next());
    torch::jit::Value* probed = graph->insert(c10::Symbol::fromQualString("ts_probe::probe"), {value, id});
    value->replaceAllUsesAfterNodeWith(probed->node(), probed);
    add_slot(name, id);
  }
}

void ProbedModule::add_slot(const std::string& name, int64_t id) {
  auto slot = std::make_shared<ProbeSlot>();
  {
    std::lock_guard<std::mutex> lock(g_slots_mutex);
    slots()[id] = slot;
  }
  probed_.push_back(name);
  slots_.push_back(slot);
  ids_.push_back(id);
}

ProbedModule::~ProbedModule() {
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  for (int64_t id : ids_) slots().erase(id);
}

at::Tensor ProbedModule::activation(size_t i) const {
  std::lock_guard<std::mutex> lock(slots_.at(i)->mutex);
  return slots_[i]->activation;
}

void ProbedModule::set_transform(size_t i, Transform transform) {
  std::lock_guard<std::mutex> lock(slots_.at(i)->mutex);
  slots_[i]->transform = std::move(transform);
}

std::vector<LayerShape> layer_shapes(Model& model, const at::Tensor& image) {
  c10::InferenceMode guard;
  std::vector<LayerRef> all;
  for (const auto& name : layer_names(model)) all.push_back({name, ""});
  ProbedModule probed(model, all, /*skip_unusable=*/true);
  model.scores(probed.module(), model.prepare(image));
  std::vector<LayerShape> shapes;
  for (size_t i = 0; i < probed.layers().size(); ++i) {
    at::Tensor a = probed.activation(i);
    if (a.defined()) shapes.push_back({probed.layers()[i], a.sizes().vec()});
  }
  return shapes;
}

}  // namespace ts
