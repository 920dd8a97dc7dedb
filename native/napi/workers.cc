#include "napi/workers.h"

#include <c10/util/Exception.h>

namespace tsn {

bool run_guarded(const std::function<void()>& work, std::string& code, std::string& message, std::string& argument) {
  try {
    work();
    return true;
  } catch (const ts::Error& e) {
    code = e.code();
    message = e.what();
    argument = e.argument();
  } catch (const c10::Error& e) {
    code = "ERR_TORCH";
    message = std::string("libtorch: ") + e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    code = "ERR_OUT_OF_MEMORY";
    message = "Out of memory";
  } catch (const std::exception& e) {
    code = "ERR_NATIVE";
    message = e.what();
  } catch (...) {
    code = "ERR_NATIVE";
    message = "Unknown native failure";
  }
  return false;
}

void PromiseWorker::OnOK() {
  Napi::HandleScope scope(Env());
  try {
    deferred_.Resolve(Result(Env()));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (const std::exception& e) {
    deferred_.Reject(make_error(Env(), "ERR_NATIVE", e.what()).Value());
  }
}

}  // namespace tsn
