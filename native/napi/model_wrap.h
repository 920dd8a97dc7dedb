// The Model handle JavaScript holds. Owns a shared_ptr to the core model; running workers hold their own
// reference, so dispose() during a run is safe and memory goes when the last user is done.
#pragma once
#include <napi.h>

#include <memory>

#include "core/model.h"

namespace tsn {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object NewInstance(Napi::Env env, std::shared_ptr<ts::Model> model);
  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<ts::Model> checked(Napi::Env env);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value Explain(const Napi::CallbackInfo& info);
  Napi::Value LayerShapes(const Napi::CallbackInfo& info);
  Napi::Value Layers(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value ParameterLayers(const Napi::CallbackInfo& info);
  Napi::Value CloneReinitialized(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  std::shared_ptr<ts::Model> model_;
};

// Cancels a running explain(): JavaScript calls cancel() when its AbortSignal fires.
class CancelToken : public Napi::ObjectWrap<CancelToken> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CancelToken(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag = std::make_shared<std::atomic<bool>>(false);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
};

}  // namespace tsn
