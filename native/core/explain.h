// The one contract every saliency method implements: a request (images, jobs, options) in, maps and
// named extra tensors out, with progress and cancellation through a RunContext. Each method lives in
// its own file under core/methods/ and registers itself by name (TS_REGISTER_METHOD), so adding a
// method touches no shared file on this side of the boundary.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/errors.h"
#include "core/model.h"

namespace ts {

// Options as the JavaScript side normalised and validated them: numbers (booleans as 0/1), strings
// and lists of numbers. The core trusts their types; a missing key falls back to the given default.
class Options {
 public:
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
  std::map<std::string, std::vector<double>> lists;

  double number(const std::string& key, double fallback) const {
    auto it = numbers.find(key);
    return it == numbers.end() ? fallback : it->second;
  }
  int64_t integer(const std::string& key, int64_t fallback) const { return static_cast<int64_t>(number(key, static_cast<double>(fallback))); }
  bool flag(const std::string& key, bool fallback) const { return number(key, fallback ? 1.0 : 0.0) != 0.0; }
  std::string string(const std::string& key, const std::string& fallback) const {
    auto it = strings.find(key);
    return it == strings.end() ? fallback : it->second;
  }
  std::vector<double> list(const std::string& key, std::vector<double> fallback = {}) const {
    auto it = lists.find(key);
    return it == lists.end() ? std::move(fallback) : it->second;
  }
  bool has(const std::string& key) const { return numbers.count(key) || strings.count(key) || lists.count(key); }
};

// A target of -1 means "the model's top class for that image"; resolve_targets fills it in.
constexpr int64_t kTopTarget = -1;

struct ExplainRequest {
  at::Tensor images;                // N x C x H x W, float, values in [0, 1], on the CPU
  std::vector<int64_t> job_image;   // per job: index into images
  std::vector<int64_t> job_target;  // per job: class index (or kTopTarget before resolution)
  Options options;
};

struct ExplainResult {
  // Maps, first dimension over jobs (or jobs x areas for methods with several areas); then H x W.
  at::Tensor maps;
  // Method-specific tensors (scores, histories, ...), each converted to a typed array with its shape.
  std::vector<std::pair<std::string, at::Tensor>> extras;
  void add(const std::string& name, const at::Tensor& t) { extras.emplace_back(name, t.detach().to(at::kCPU).contiguous()); }
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

// Runs a registered method: resolves top-1 targets, checks target ranges, dispatches.
ExplainResult run_method(Model& model, ExplainRequest request, RunContext& context);

// Fills kTopTarget entries with the model's top class for the job's image; throws ERR_OUT_OF_RANGE
// for a class index outside the model's output.
void resolve_targets(Model& model, ExplainRequest& request);

// The images of jobs [begin, end), one row per job.
at::Tensor job_images(const ExplainRequest& request, int64_t begin, int64_t end);

// Splits [0, n) into chunks of at most `size` (size <= 0: one chunk).
std::vector<std::pair<int64_t, int64_t>> chunks(int64_t n, int64_t size);

}  // namespace ts

#define TS_CONCAT_INNER(a, b) a##b
#define TS_CONCAT(a, b) TS_CONCAT_INNER(a, b)
// Registers `fn` under `name` when the addon loads.
#define TS_REGISTER_METHOD(name, fn) static const bool TS_CONCAT(ts_registered_method_, __LINE__) = ::ts::register_method(name, fn)
