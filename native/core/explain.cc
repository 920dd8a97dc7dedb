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

const Options::Value& Options::find(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) {
    throw Error("ERR_NATIVE", "Internal error: the native method reads option '" + key + "', which the call did not carry (a bug in lib/methods)");
  }
  return it->second;
}

void Options::wrong_type(const std::string& key, const char* what) {
  throw Error("ERR_NATIVE",
              "Internal error: the native method reads option '" + key + "' as " + what + ", which the call did not carry (a bug in lib/methods)");
}

std::optional<std::string> Options::string_or_null(const std::string& key) const {
  if (std::holds_alternative<std::monostate>(find(key))) return std::nullopt;
  return string(key);
}

std::optional<std::vector<double>> Options::list_or_null(const std::string& key) const {
  if (std::holds_alternative<std::monostate>(find(key))) return std::nullopt;
  return list(key);
}

std::optional<double> Options::number_or_null(const std::string& key) const {
  if (std::holds_alternative<std::monostate>(find(key))) return std::nullopt;
  return number(key);
}

ExplainResult run_method(Model& model, const ExplainRequest& request, RunContext& context) {
  const std::string& method = request.options.string("method");
  const MethodFn* fn = find_method(method);
  if (!fn) {
    std::string known;
    for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("ERR_INVALID_ARG_VALUE", "Expected one of " + known + " for options.method but received '" + method + "'", "options.method");
  }
  check_finite_input(request.images);
  ExplainResult result = (*fn)(model, request, context);
  // One check of the whole run at its end (none per iteration: that would sync the device every step).
  check_finite_result(result.maps, "maps");
  return result;
}

}  // namespace ts
