// The numeric elements of a TensorProto, as TensorBoard's tensor_util.make_ndarray reads them.
#include "io/event_tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "event.pb.h"

namespace kiln::io::events {

namespace tfp = kiln::tfproto;

namespace {

float half_to_float(uint16_t h) {
  const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(frac), -24);
  } else if (exp == 31) {
    v = frac ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(frac | 0x400), exp - 25);
  }
  return sign ? -v : v;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

// Bytes per element of the numeric dtypes TensorBoard's make_ndarray reads; 0 for the others.
size_t item_size(int dtype) {
  switch (dtype) {
    case tfp::DT_UINT8:
    case tfp::DT_INT8:
    case tfp::DT_BOOL:
    case tfp::DT_QINT8:
    case tfp::DT_QUINT8:
      return 1;
    case tfp::DT_INT16:
    case tfp::DT_UINT16:
    case tfp::DT_HALF:
    case tfp::DT_BFLOAT16:
    case tfp::DT_QINT16:
    case tfp::DT_QUINT16:
      return 2;
    case tfp::DT_FLOAT:
    case tfp::DT_INT32:
    case tfp::DT_UINT32:
    case tfp::DT_QINT32:
      return 4;
    case tfp::DT_DOUBLE:
    case tfp::DT_INT64:
    case tfp::DT_UINT64:
      return 8;
    default:
      return 0;
  }
}

// One little-endian element of tensor_content.
double content_element(int dtype, const unsigned char *p) {
  uint64_t raw = 0;
  const size_t n = item_size(dtype);
  for (size_t i = n; i-- > 0;) raw = (raw << 8) | p[i];
  switch (dtype) {
    case tfp::DT_UINT8:
    case tfp::DT_QUINT8:
    case tfp::DT_UINT16:
    case tfp::DT_QUINT16:
    case tfp::DT_UINT32:
      return static_cast<double>(raw);
    case tfp::DT_UINT64:
      return static_cast<double>(raw);
    case tfp::DT_BOOL:
      return raw != 0 ? 1.0 : 0.0;
    case tfp::DT_INT8:
    case tfp::DT_QINT8:
      return static_cast<int8_t>(raw);
    case tfp::DT_INT16:
    case tfp::DT_QINT16:
      return static_cast<int16_t>(raw);
    case tfp::DT_INT32:
    case tfp::DT_QINT32:
      return static_cast<int32_t>(raw);
    case tfp::DT_INT64:
      return static_cast<double>(static_cast<int64_t>(raw));
    case tfp::DT_HALF:
      return half_to_float(static_cast<uint16_t>(raw));
    case tfp::DT_BFLOAT16:
      return bf16_to_float(static_cast<uint16_t>(raw));
    case tfp::DT_FLOAT: {
      const uint32_t bits = static_cast<uint32_t>(raw);
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case tfp::DT_DOUBLE: {
      double d;
      std::memcpy(&d, &raw, 8);
      return d;
    }
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

// A typed *_val field as doubles, each converted to the tensor's dtype first (an int_val of
// 300 in a uint8 tensor is 44, as NumPy's cast gives).
template <typename Field, typename F>
void typed_values(const Field &field, F convert, std::vector<double> *out) {
  out->reserve(static_cast<size_t>(field.size()));
  for (const auto &v : field) out->push_back(convert(v));
}

double int_val_as(int dtype, int32_t v) {
  switch (dtype) {
    case tfp::DT_UINT8:
    case tfp::DT_QUINT8:
      return static_cast<uint8_t>(v);
    case tfp::DT_INT8:
    case tfp::DT_QINT8:
      return static_cast<int8_t>(v);
    case tfp::DT_INT16:
    case tfp::DT_QINT16:
      return static_cast<int16_t>(v);
    case tfp::DT_UINT16:
    case tfp::DT_QUINT16:
      return static_cast<uint16_t>(v);
    default:
      return v;
  }
}

}  // namespace

bool decode_numbers(const tbproto::TensorProto &t, int64_t elements, std::vector<double> *out) {
  out->clear();
  const int dtype = t.dtype();
  const size_t item = item_size(dtype);
  if (item == 0 || elements < 0) return false;
  if (!t.tensor_content().empty()) {
    const std::string &c = t.tensor_content();
    if (c.size() % item != 0 || static_cast<uint64_t>(c.size() / item) != static_cast<uint64_t>(elements))
      return false;
    out->reserve(static_cast<size_t>(elements));
    const auto *p = reinterpret_cast<const unsigned char *>(c.data());
    for (int64_t i = 0; i < elements; ++i) out->push_back(content_element(dtype, p + i * item));
    return true;
  }
  switch (dtype) {
    case tfp::DT_FLOAT:
      typed_values(
          t.float_val(), [](float v) { return static_cast<double>(v); }, out);
      break;
    case tfp::DT_DOUBLE:
      typed_values(
          t.double_val(), [](double v) { return v; }, out);
      break;
    case tfp::DT_INT64:
      typed_values(
          t.int64_val(), [](int64_t v) { return static_cast<double>(v); }, out);
      break;
    case tfp::DT_BOOL:
      typed_values(
          t.bool_val(), [](bool v) { return v ? 1.0 : 0.0; }, out);
      break;
    case tfp::DT_HALF:
      typed_values(
          t.half_val(),
          [](int32_t v) { return static_cast<double>(half_to_float(static_cast<uint16_t>(v))); }, out);
      break;
    case tfp::DT_BFLOAT16:
      typed_values(
          t.half_val(),
          [](int32_t v) { return static_cast<double>(bf16_to_float(static_cast<uint16_t>(v))); }, out);
      break;
    case tfp::DT_UINT32:
      typed_values(
          t.uint32_val(), [](uint32_t v) { return static_cast<double>(v); }, out);
      break;
    case tfp::DT_UINT64:
      typed_values(
          t.uint64_val(), [](uint64_t v) { return static_cast<double>(v); }, out);
      break;
    default:  // the int_val dtypes
      typed_values(
          t.int_val(), [dtype](int32_t v) { return int_val_as(dtype, v); }, out);
      break;
  }
  if (out->size() == 1 && elements != 1) {
    if (elements > kMaxBroadcast) {
      out->clear();
      return false;
    }
    out->assign(static_cast<size_t>(elements), out->front());
  }
  if (static_cast<int64_t>(out->size()) != elements) {
    out->clear();
    return false;
  }
  return true;
}

int64_t element_count(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > (int64_t{1} << 48) / d) return -1;
    n *= d;
  }
  return n;
}

}  // namespace kiln::io::events
