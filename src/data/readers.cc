#include "data/readers.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "core/count.h"
#include "core/error.h"
#include "io/file_util.h"

namespace kiln::data {

std::string read_whole_file(const std::string &path, const char *op) {
  const int fd = io::open_for_reading(path);
  if (fd < 0) {
    const int err = errno;
    fail(err == ENOENT ? Code::kNotFound : Code::kFailedPrecondition, op, ": cannot open '", path,
         "': ", std::strerror(err));
  }
  if (!io::is_regular_fd(fd)) {  // a FIFO would block, /dev/zero never end
    ::close(fd);
    fail(Code::kFailedPrecondition, op, ": '", path, "' is not a regular file");
  }
  gzFile f = gzdopen(fd, "rb");
  if (!f) {
    ::close(fd);
    fail(Code::kResourceExhausted, op, ": cannot read '", path, "': out of memory");
  }
  std::string data;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n > 0) {
      data.append(buf, static_cast<size_t>(n));
      continue;
    }
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    if (n < 0 || code != Z_OK) {
      std::string what = msg ? msg : "read error";
      gzclose(f);
      fail(Code::kDataLoss, op, ": '", path, "' is corrupt or truncated: ", what, " (after ", data.size(),
           " bytes of data)");
    }
    break;
  }
  gzclose(f);
  return data;
}

namespace {

uint32_t big_endian32(const unsigned char *p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct IdxType {
  DType dtype;
  size_t file_size;  // bytes per element on disk
  const char *name;
};

IdxType idx_type(unsigned code, const std::string &path) {
  switch (code) {
    case 0x08:
      return {DType::kUInt8, 1, "uint8"};
    case 0x09:
      return {DType::kInt32, 1, "int8"};
    case 0x0B:
      return {DType::kInt32, 2, "int16"};
    case 0x0C:
      return {DType::kInt32, 4, "int32"};
    case 0x0D:
      return {DType::kFloat32, 4, "float32"};
    case 0x0E:
      return {DType::kFloat64, 8, "float64"};
    default:
      break;
  }
  fail(Code::kDataLoss, "read_idx: '", path, "' has element type code 0x", std::hex, code,
       "; an IDX file has 0x08 (uint8), 0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E "
       "(float64)");
}

// Big-endian element i of width w as T.
template <typename T>
T read_be(const unsigned char *p, size_t w) {
  uint64_t u = 0;
  for (size_t k = 0; k < w; ++k) u = (u << 8) | p[k];
  if constexpr (std::is_same_v<T, float>) {
    uint32_t bits = static_cast<uint32_t>(u);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  } else if constexpr (std::is_same_v<T, double>) {
    double d;
    std::memcpy(&d, &u, 8);
    return d;
  } else {
    // Sign-extend the narrow signed types (int8, int16, int32).
    const unsigned shift = static_cast<unsigned>(64 - 8 * w);
    return static_cast<T>(static_cast<int64_t>(u << shift) >> shift);
  }
}

}  // namespace

Tensor read_idx(const std::string &path) {
  const std::string data = read_whole_file(path, "read_idx");
  const auto *p = reinterpret_cast<const unsigned char *>(data.data());
  if (data.size() < 4)
    fail(Code::kDataLoss, "read_idx: '", path, "' has ", data.size(),
         " bytes; an IDX file starts with a 4-byte magic number");
  if (p[0] != 0 || p[1] != 0)
    fail(Code::kDataLoss, "read_idx: '", path, "' is not an IDX file: its magic number 0x", std::hex,
         big_endian32(p), " does not start with two zero bytes");
  const IdxType type = idx_type(p[2], path);
  const int rank = p[3];
  if (rank > Shape::kMaxRank)
    fail(Code::kDataLoss, "read_idx: '", path, "' says it has ", rank, " dims; kiln reads at most ",
         Shape::kMaxRank);
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (data.size() < header)
    fail(Code::kDataLoss, "read_idx: '", path, "' is truncated: its header needs ", header, " bytes for ",
         rank, " dims; the file has ", data.size());
  std::vector<int64_t> dims;
  int64_t count = 1;
  bool fits = true;
  for (int d = 0; d < rank; ++d) {
    dims.push_back(big_endian32(p + 4 + 4 * d));
    fits = fits && checked_mul(count, dims.back(), &count);
  }
  int64_t need = 0;
  fits = fits && checked_mul(count, static_cast<int64_t>(type.file_size), &need, kMaxBytes);
  const size_t have = data.size() - header;
  if (!fits || static_cast<uint64_t>(need) > have)
    fail(Code::kDataLoss, "read_idx: '", path, "' is truncated: its header says ", type.name,
         list_string(dims), " (", fits ? std::to_string(need) : std::string("too many"),
         " bytes of data); the file has ", have);
  if (static_cast<size_t>(need) < have)
    fail(Code::kDataLoss, "read_idx: '", path, "' has ", have - static_cast<size_t>(need),
         " bytes after the data its header describes (", type.name, list_string(dims), ")");
  Tensor t = Tensor::empty(type.dtype, Shape(dims));
  const unsigned char *src = p + header;
  if (type.dtype == DType::kUInt8) {
    if (need) std::memcpy(t.raw_mutable_data(), src, static_cast<size_t>(need));
    return t;
  }
  const size_t w = type.file_size;
  if (type.dtype == DType::kInt32) {
    auto *dst = t.mutable_data<int32_t>();
    for (int64_t i = 0; i < count; ++i) dst[i] = read_be<int32_t>(src + static_cast<size_t>(i) * w, w);
  } else if (type.dtype == DType::kFloat32) {
    auto *dst = t.mutable_data<float>();
    for (int64_t i = 0; i < count; ++i) dst[i] = read_be<float>(src + static_cast<size_t>(i) * w, w);
  } else {
    auto *dst = t.mutable_data<double>();
    for (int64_t i = 0; i < count; ++i) dst[i] = read_be<double>(src + static_cast<size_t>(i) * w, w);
  }
  return t;
}

namespace {

// dir/name.gz when it exists, else dir/name.
std::string idx_path(const std::string &dir, const std::string &name) {
  struct stat st;
  const std::string base = dir + "/" + name;
  if (stat((base + ".gz").c_str(), &st) == 0) return base + ".gz";
  return base;
}

void check_pair(const Tensor &x, const Tensor &y, const std::string &xp, const std::string &yp) {
  if (x.dtype() != DType::kUInt8 || x.rank() != 3)
    fail(Code::kDataLoss, "load_fashion_mnist: '", xp, "' holds ", x.description(),
         "; expected uint8 images [N, rows, cols]");
  if (y.dtype() != DType::kUInt8 || y.rank() != 1)
    fail(Code::kDataLoss, "load_fashion_mnist: '", yp, "' holds ", y.description(),
         "; expected uint8 labels [N]");
  if (x.shape()[0] != y.shape()[0])
    fail(Code::kDataLoss, "load_fashion_mnist: '", xp, "' has ", x.shape()[0], " images but '", yp, "' has ",
         y.shape()[0], " labels");
}

}  // namespace

FashionMnist load_fashion_mnist(const std::string &dir) {
  FashionMnist out;
  const std::string xtr = idx_path(dir, "train-images-idx3-ubyte"),
                    ytr = idx_path(dir, "train-labels-idx1-ubyte");
  const std::string xte = idx_path(dir, "t10k-images-idx3-ubyte"),
                    yte = idx_path(dir, "t10k-labels-idx1-ubyte");
  out.x_train = read_idx(xtr);
  out.y_train = read_idx(ytr);
  out.x_test = read_idx(xte);
  out.y_test = read_idx(yte);
  check_pair(out.x_train, out.y_train, xtr, ytr);
  check_pair(out.x_test, out.y_test, xte, yte);
  return out;
}

}  // namespace kiln::data
