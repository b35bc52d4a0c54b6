#include "core/error.h"

#include "core/dtype.h"

namespace kiln {

const char *code_name(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kOutOfRange: return "OutOfRange";
    case Code::kFailedPrecondition: return "FailedPrecondition";
    case Code::kDataLoss: return "DataLoss";
    case Code::kUnimplemented: return "Unimplemented";
    case Code::kResourceExhausted: return "ResourceExhausted";
    case Code::kInternal: return "Internal";
  }
  return "Unknown";
}

bool dtype_valid(int value) { return value >= 1 && value <= 7; }

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kBFloat16: return 2;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
    case DType::kBool: return 1;
    case DType::kFloat64: return 8;
  }
  return 0;
}

const char *dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kBool: return "bool";
    case DType::kFloat64: return "float64";
  }
  return "invalid";
}

std::optional<DType> dtype_from_name(const std::string &name) {
  for (int v = 0; v < 64; ++v)
    if (dtype_valid(v) && name == dtype_name(static_cast<DType>(v))) return static_cast<DType>(v);
  return std::nullopt;
}

}  // namespace kiln
