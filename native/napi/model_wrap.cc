#include "napi/model_wrap.h"

#include "core/explain.h"
#include "core/layers.h"
#include "core/reinitialize.h"
#include "napi/convert.h"
#include "napi/workers.h"

namespace tsn {
namespace {

Napi::FunctionReference* model_constructor = nullptr;
Napi::FunctionReference* token_constructor = nullptr;

class PredictWorker : public PromiseWorker {
 public:
  PredictWorker(Napi::Env env, std::shared_ptr<ts::Model> model, at::Tensor input) : PromiseWorker(env), model_(std::move(model)), input_(std::move(input)) {}

 protected:
  void Run() override {
    c10::InferenceMode guard;
    output_ = model_->forward(input_).to(at::kCPU).contiguous();
  }
  Napi::Value Result(Napi::Env env) override { return tensor_to_js(env, output_); }

 private:
  std::shared_ptr<ts::Model> model_;
  at::Tensor input_, output_;
};

class LayerShapesWorker : public PromiseWorker {
 public:
  LayerShapesWorker(Napi::Env env, std::shared_ptr<ts::Model> model, at::Tensor image)
      : PromiseWorker(env), model_(std::move(model)), image_(std::move(image)) {}

 protected:
  void Run() override { shapes_ = ts::layer_shapes(*model_, image_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, shapes_.size());
    for (size_t i = 0; i < shapes_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", shapes_[i].name);
      Napi::Array shape = Napi::Array::New(env, shapes_[i].shape.size());
      for (size_t d = 0; d < shapes_[i].shape.size(); ++d) shape.Set(static_cast<uint32_t>(d), static_cast<double>(shapes_[i].shape[d]));
      o.Set("shape", shape);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

 private:
  std::shared_ptr<ts::Model> model_;
  at::Tensor image_;
  std::vector<ts::LayerShape> shapes_;
};

class ReinitializeWorker : public PromiseWorker {
 public:
  ReinitializeWorker(Napi::Env env, std::shared_ptr<ts::Model> model, std::vector<std::string> layers, uint64_t seed)
      : PromiseWorker(env), model_(std::move(model)), layers_(std::move(layers)), seed_(seed) {}

 protected:
  void Run() override { clone_ = ts::clone_reinitialized(*model_, layers_, seed_); }
  Napi::Value Result(Napi::Env env) override { return ModelWrap::NewInstance(env, std::move(clone_)); }

 private:
  std::shared_ptr<ts::Model> model_, clone_;
  std::vector<std::string> layers_;
  uint64_t seed_;
};

class ExplainWorker : public Napi::AsyncProgressQueueWorker<ts::Progress> {
 public:
  ExplainWorker(Napi::Env env, std::shared_ptr<ts::Model> model, ts::ExplainRequest request, int64_t progress_every,
                std::shared_ptr<std::atomic<bool>> cancelled, Napi::Function on_progress)
      : Napi::AsyncProgressQueueWorker<ts::Progress>(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(model)),
        request_(std::move(request)) {
    if (cancelled) context_.cancelled = std::move(cancelled);
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
    context_.progress_every = std::max<int64_t>(1, progress_every);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    if (!on_progress_.IsEmpty()) {
      context_.on_progress = [&progress](const ts::Progress& p) { progress.Send(&p, 1); };
    }
    std::string message;
    bool ok = run_guarded(
        [this] {
          ts::sync_threads();
          context_.check_cancelled();
          result_ = ts::run_method(*model_, std::move(request_), context_);
        },
        code_, message, argument_);
    context_.on_progress = nullptr;
    request_ = ts::ExplainRequest();  // free the images now rather than at destruction
    if (!ok) SetError(message);
  }
  void OnProgress(const ts::Progress* data, size_t count) override {
    if (on_progress_.IsEmpty() || count == 0) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    const ts::Progress& p = data[count - 1];
    Napi::Object o = Napi::Object::New(env);
    o.Set("iteration", static_cast<double>(p.iteration));
    o.Set("total", static_cast<double>(p.total));
    o.Set("energy", p.energy);
    try {
      on_progress_.Call({o});
    } catch (const Napi::Error&) {
      // A throwing progress callback must not take the run down; the error surfaces in JS.
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      Napi::Object out = Napi::Object::New(env);
      out.Set("maps", tensor_to_js(env, result_.maps));
      Napi::Object outputs = Napi::Object::New(env);
      for (const auto& [name, tensor] : result_.tensors) outputs.Set(name, tensor_to_js(env, tensor));
      for (const auto& [name, record] : result_.records) {
        Napi::Object r = Napi::Object::New(env);
        for (const auto& [key, value] : record) r.Set(key, value);
        outputs.Set(name, r);
      }
      out.Set("outputs", outputs);
      result_ = ts::ExplainResult();
      deferred_.Resolve(out);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    result_ = ts::ExplainResult();
    deferred_.Reject(make_error(Env(), code_, e.Message(), argument_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ts::Model> model_;
  ts::ExplainRequest request_;
  ts::ExplainResult result_;
  ts::RunContext context_;
  Napi::FunctionReference on_progress_;
  std::string code_, argument_;
};

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  Napi::Function f = DefineClass(env, "NativeModel",
                                 {
                                     InstanceMethod<&ModelWrap::Predict>("predict"),
                                     InstanceMethod<&ModelWrap::Explain>("explain"),
                                     InstanceMethod<&ModelWrap::LayerShapes>("layerShapes"),
                                     InstanceMethod<&ModelWrap::Layers>("layers"),
                                     InstanceMethod<&ModelWrap::Info>("info"),
                                     InstanceMethod<&ModelWrap::RequiresGrad>("requiresGrad"),
                                     InstanceMethod<&ModelWrap::ParameterLayers>("parameterLayers"),
                                     InstanceMethod<&ModelWrap::CloneReinitialized>("cloneReinitialized"),
                                     InstanceMethod<&ModelWrap::Dispose>("dispose"),
                                     InstanceAccessor<&ModelWrap::Disposed>("disposed"),
                                 });
  model_constructor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

Napi::Object ModelWrap::NewInstance(Napi::Env env, std::shared_ptr<ts::Model> model) {
  auto* holder = new std::shared_ptr<ts::Model>(std::move(model));
  auto external = Napi::External<std::shared_ptr<ts::Model>>::New(env, holder, [](Napi::Env, std::shared_ptr<ts::Model>* p) { delete p; });
  return model_constructor->New({external});
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw make_error(info.Env(), "ERR_ILLEGAL_CONSTRUCTOR", "NativeModel is made by loadModel(), not by new");
  }
  // Take the model out of the External's holder: a copy would keep it alive until the External is
  // garbage collected, and dispose() would not free anything.
  model_ = std::move(*info[0].As<Napi::External<std::shared_ptr<ts::Model>>>().Data());
}

std::shared_ptr<ts::Model> ModelWrap::checked(Napi::Env env) {
  if (!model_) throw make_error(env, "ERR_DISPOSED", "The model was disposed; load it again to use it");
  return model_;
}

// predict(data: Float32Array, shape: number[]) -> Promise<{ data, shape }>
Napi::Value ModelWrap::Predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = checked(env);
  auto* worker = new PredictWorker(env, std::move(model), images_from_js(env, info[0], info[1]));
  worker->Queue();
  return worker->Promise();
}

// explain(options, data, shape, jobImage, jobTarget, onProgress?, token?) -> Promise<{ maps, outputs }>
Napi::Value ModelWrap::Explain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = checked(env);
  ts::ExplainRequest request;
  request.options = converting(env, [&] { return options_from_js(info[0].As<Napi::Object>()); });
  const int64_t progress_every = converting(env, [&] { return request.options.integer("progressEvery"); });
  request.images = images_from_js(env, info[1], info[2]);
  request.job_image = int_list(info[3]);
  request.job_target = int_list(info[4]);
  Napi::Function on_progress = info.Length() > 5 && info[5].IsFunction() ? info[5].As<Napi::Function>() : Napi::Function();
  std::shared_ptr<std::atomic<bool>> cancelled;
  if (info.Length() > 6 && info[6].IsObject()) cancelled = CancelToken::Unwrap(info[6].As<Napi::Object>())->flag;
  auto* worker = new ExplainWorker(env, std::move(model), std::move(request), progress_every, std::move(cancelled), on_progress);
  worker->Queue();
  return worker->Promise();
}

// layerShapes(data: Float32Array, shape: [1, C, H, W]) -> Promise<{ name, shape }[]>
Napi::Value ModelWrap::LayerShapes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = checked(env);
  auto* worker = new LayerShapesWorker(env, std::move(model), images_from_js(env, info[0], info[1]));
  worker->Queue();
  return worker->Promise();
}

Napi::Value ModelWrap::Layers(const Napi::CallbackInfo& info) {
  auto model = checked(info.Env());
  auto names = model->submodule_names();
  Napi::Array out = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = checked(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("device", model->device().str());
  o.Set("inputChannels", static_cast<double>(model->input_channels()));
  {
    auto [h, w] = model->input_size_hint();
    if (h > 0) {
      Napi::Array size = Napi::Array::New(info.Env(), 2);
      size.Set(0u, static_cast<double>(h));
      size.Set(1u, static_cast<double>(w));
      o.Set("inputSize", size);
    } else {
      o.Set("inputSize", info.Env().Null());
    }
  }
  o.Set("parameters", static_cast<double>(model->num_parameters()));
  o.Set("torchVersion", ts::torch_version());
  return o;
}

Napi::Value ModelWrap::RequiresGrad(const Napi::CallbackInfo& info) {
  auto model = checked(info.Env());
  auto flags = model->requires_grad_flags();
  Napi::Array out = Napi::Array::New(info.Env(), flags.size());
  for (size_t i = 0; i < flags.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Boolean::New(info.Env(), flags[i]));
  return out;
}

Napi::Value ModelWrap::ParameterLayers(const Napi::CallbackInfo& info) {
  auto model = checked(info.Env());
  auto names = ts::parameter_layers(*model);
  Napi::Array out = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

// cloneReinitialized(layers: string[], seed: number) -> Promise<NativeModel> (lib/model.ts checks the arguments)
Napi::Value ModelWrap::CloneReinitialized(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = checked(env);
  std::vector<std::string> layers;
  Napi::Array list = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) layers.push_back(list.Get(i).As<Napi::String>().Utf8Value());
  const auto seed = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  auto* worker = new ReinitializeWorker(env, std::move(model), std::move(layers), seed);
  worker->Queue();
  return worker->Promise();
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !model_); }

Napi::Function CancelToken::Define(Napi::Env env) {
  Napi::Function f = DefineClass(env, "CancelToken", {InstanceMethod<&CancelToken::Cancel>("cancel")});
  token_constructor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

CancelToken::CancelToken(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelToken>(info) {}

Napi::Value CancelToken::Cancel(const Napi::CallbackInfo& info) {
  flag->store(true);
  return info.Env().Undefined();
}

}  // namespace tsn
