#include "core/explain.h"

#include <algorithm>

namespace ts {
namespace {
std::map<std::string, MethodFn>& registry() {
  static std::map<std::string, MethodFn> methods;
  return methods;
}
}  // namespace

bool register_method(const std::string& name, MethodFn fn) {
  registry()[name] = std::move(fn);
  return true;
}

const MethodFn* find_method(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& kv : registry()) names.push_back(kv.first);
  return names;
}

std::vector<std::pair<int64_t, int64_t>> chunks(int64_t n, int64_t size) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (size <= 0) size = std::max<int64_t>(n, 1);
  for (int64_t begin = 0; begin < n; begin += size) out.emplace_back(begin, std::min(n, begin + size));
  return out;
}

at::Tensor job_images(const ExplainRequest& request, int64_t begin, int64_t end) {
  at::Tensor index = at::tensor(std::vector<int64_t>(request.job_image.begin() + begin, request.job_image.begin() + end), at::kLong);
  return request.images.index_select(0, index);
}

void resolve_targets(Model& model, ExplainRequest& request) {
  bool need_top = std::any_of(request.job_target.begin(), request.job_target.end(), [](int64_t t) { return t == kTopTarget; });
  at::Tensor scores;
  {
    c10::InferenceMode guard;
    // One forward of the whole batch gives the number of classes and every image's top class.
    int64_t batch = std::max<int64_t>(1, request.options.integer("batchSize", 0));
    std::vector<at::Tensor> parts;
    for (auto [b, e] : chunks(request.images.size(0), need_top ? batch : 1)) {
      parts.push_back(model.forward(request.images.slice(0, b, e)).to(at::kCPU));
      if (!need_top) break;
    }
    scores = at::cat(parts);
  }
  int64_t classes = scores.size(1);
  for (size_t j = 0; j < request.job_target.size(); ++j) {
    int64_t& t = request.job_target[j];
    if (t == kTopTarget) {
      t = scores[request.job_image[j]].argmax().item<int64_t>();
    } else if (t < 0 || t >= classes) {
      throw Error("ERR_OUT_OF_RANGE", "Expected a class index in [0, " + std::to_string(classes - 1) + "] for target but received " + std::to_string(t),
                  "target");
    }
  }
}

ExplainResult run_method(Model& model, ExplainRequest request, RunContext& context) {
  const MethodFn* fn = find_method(request.options.string("method", ""));
  if (!fn) {
    std::string known;
    for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("ERR_INVALID_ARG_VALUE", "Expected one of " + known + " for method but received '" + request.options.string("method", "") + "'", "method");
  }
  resolve_targets(model, request);
  ExplainResult result = (*fn)(model, request, context);
  result.add("targets", at::tensor(request.job_target, at::kLong));
  return result;
}

}  // namespace ts
