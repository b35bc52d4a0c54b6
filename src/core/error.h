// Error codes and the exception every core function throws.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace kiln {

// Values match the KILN_STATUS_* codes in include/kiln/kiln.h; append only.
enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kOutOfRange = 3,
  kFailedPrecondition = 4,
  kDataLoss = 5,
  kUnimplemented = 6,
  kResourceExhausted = 7,
  kInternal = 8,
};

const char *code_name(Code code);

class Error : public std::runtime_error {
 public:
  Error(Code code, const std::string &message) : std::runtime_error(message), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

template <typename... Args>
std::string str_cat(Args &&...args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(Code code, Args &&...args) {
  throw Error(code, str_cat(std::forward<Args>(args)...));
}

}  // namespace kiln

// Throws InvalidArgument with the streamed message when cond is false.
#define KILN_REQUIRE(cond, ...)                                  \
  do {                                                           \
    if (!(cond)) ::kiln::fail(::kiln::Code::kInvalidArgument, __VA_ARGS__); \
  } while (0)
