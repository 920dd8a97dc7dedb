// The one contract every saliency method implements: a request (images, jobs, options) in, maps and
// named outputs (tensors, records of numbers) out, with progress and cancellation through a RunContext. Each method lives in
// its own file under core/methods/ and registers itself by name (TS_REGISTER_METHOD), so adding a
// method touches no shared file on this side of the boundary.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/errors.h"
#include "core/model.h"

namespace ts {

// The call's options as lib/methods normalised them (the frozen object `explain` returns as
// `result.options`, passed as is): numbers (booleans as 0/1), strings, lists of numbers, and null for "none".
// The core trusts their values. Every key a method reads must be there with its type: a missing key is a bug
// on the JavaScript side, and throws ERR_NATIVE naming it; there are no defaults on this side.
class Options {
 public:
  using Value = std::variant<std::monostate, double, std::string, std::vector<double>>;  // monostate: null

  double number(const std::string& key) const { return get<double>(key, "a number"); }
  int64_t integer(const std::string& key) const { return static_cast<int64_t>(number(key)); }
  bool flag(const std::string& key) const { return number(key) != 0.0; }
  const std::string& string(const std::string& key) const { return get<std::string>(key, "a string"); }
  const std::vector<double>& list(const std::string& key) const { return get<std::vector<double>>(key, "a list of numbers"); }
  // A string, or nullopt for null.
  std::optional<std::string> string_or_null(const std::string& key) const;
  // A list of numbers, or nullopt for null.
  std::optional<std::vector<double>> list_or_null(const std::string& key) const;
  // A number, or nullopt for null.
  std::optional<double> number_or_null(const std::string& key) const;

  void set(const std::string& key, Value value) { values_[key] = std::move(value); }

 private:
  const Value& find(const std::string& key) const;
  template <typename T>
  const T& get(const std::string& key, const char* what) const {
    const T* v = std::get_if<T>(&find(key));
    if (!v) wrong_type(key, what);
    return *v;
  }
  [[noreturn]] static void wrong_type(const std::string& key, const char* what);
  std::map<std::string, Value> values_;
};

struct ExplainRequest {
  at::Tensor images;                // N x C x H x W, float, values in [0, 1], on the CPU
  std::vector<int64_t> job_image;   // per job: index into images
  std::vector<int64_t> job_target;  // per job: class index (resolved and checked by the JavaScript side)
  Options options;
};

// A named record of numbers (timings, say): JavaScript gets an object with these keys.
using Record = std::vector<std::pair<std::string, double>>;

struct ExplainResult {
  // Maps, first dimension over jobs (or jobs x areas for methods with several areas); then H x W.
  at::Tensor maps;
  // The method's other outputs by name (scores, histories, timings, ...), as its lib/methods/<name>.ts
  // reads them: tensors become { data, shape }, records objects of numbers.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::vector<std::pair<std::string, Record>> records;
  void add(const std::string& name, const at::Tensor& t) { tensors.emplace_back(name, t.detach().to(at::kCPU).contiguous()); }
  void add(const std::string& name, Record r) { records.emplace_back(name, std::move(r)); }
};

struct Progress {
  int64_t iteration = 0;
  int64_t total = 0;
  double energy = 0;  // method-defined figure of merit (NaN if none)
};

// Shared by a running method and its caller: cancellation flag and progress sink.
class RunContext {
 public:
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  std::function<void(const Progress&)> on_progress;  // may be empty
  int64_t progress_every = 10;                       // report at most every N iterations

  void check_cancelled() const {
    if (cancelled && cancelled->load(std::memory_order_relaxed)) throw Cancelled();
  }
  bool wants_progress(int64_t iteration, int64_t total) const { return on_progress && (iteration % progress_every == 0 || iteration + 1 == total); }
  void report(const Progress& p) const {
    if (on_progress) on_progress(p);
  }
};

using MethodFn = std::function<ExplainResult(Model&, const ExplainRequest&, RunContext&)>;

// Registry of methods by name.
bool register_method(const std::string& name, MethodFn fn);
const MethodFn* find_method(const std::string& name);
std::vector<std::string> method_names();

// Runs the method options.method names (the JavaScript side checked the name and the targets).
ExplainResult run_method(Model& model, const ExplainRequest& request, RunContext& context);

// The images of jobs [begin, end), one row per job.
at::Tensor job_images(const ExplainRequest& request, int64_t begin, int64_t end);

// Splits [0, n) into chunks of at most `size` (size <= 0: one chunk).
std::vector<std::pair<int64_t, int64_t>> chunks(int64_t n, int64_t size);

}  // namespace ts

#define TS_CONCAT_INNER(a, b) a##b
#define TS_CONCAT(a, b) TS_CONCAT_INNER(a, b)
// Registers `fn` under `name` when the addon loads.
#define TS_REGISTER_METHOD(name, fn) static const bool TS_CONCAT(ts_registered_method_, __LINE__) = ::ts::register_method(name, fn)
