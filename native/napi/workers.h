// Promise-returning AsyncWorkers. Work happens in Run() on a libuv thread from plain C++ state made on
// the main thread (V8 is never touched off it); errors become rejections with `code` and `argument`.
#pragma once
#include <napi.h>

#include <functional>
#include <string>

#include "core/errors.h"
#include "core/model.h"
#include "napi/convert.h"

namespace tsn {

// Runs `work`, turning any exception into (code, message, argument). Returns true on success.
bool run_guarded(const std::function<void()>& work, std::string& code, std::string& message, std::string& argument);

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

  void Execute() override {
    std::string message;
    if (!run_guarded(
            [this] {
              ts::sync_threads();
              Run();
            },
            code_, message, argument_))
      SetError(message);
  }
  void OnOK() override;
  void OnError(const Napi::Error& e) override { deferred_.Reject(make_error(Env(), code_, e.Message(), argument_).Value()); }

  Napi::Promise::Deferred deferred_;
  std::string code_, argument_;
};

}  // namespace tsn
