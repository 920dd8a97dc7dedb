// Errors the core raises on purpose. Each carries the code the JavaScript side exposes
// (ERR_MODEL_LOAD, ERR_INPUT_SHAPE, ...) and, where one is to blame, the argument's name.
#pragma once
#include <stdexcept>
#include <string>

namespace ts {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message, std::string argument = "")
      : std::runtime_error(message), code_(std::move(code)), argument_(std::move(argument)) {}
  const std::string& code() const { return code_; }
  const std::string& argument() const { return argument_; }

 private:
  std::string code_;
  std::string argument_;
};

// Thrown by RunContext::check_cancelled when the caller aborted.
class Cancelled : public Error {
 public:
  Cancelled() : Error("ABORT_ERR", "The operation was aborted") {}
};

}  // namespace ts
