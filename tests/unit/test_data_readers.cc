// IDX, Fashion-MNIST and CSV readers: values, gzip, and corrupt or truncated files as DataLoss
// errors that name the file.
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/readers.h"
#include "test_util.h"

namespace kiln::data {
namespace {

// One directory for the whole program, removed at its exit.
const std::string &temp_dir() {
  static const testing::TempDir dir("kiln_data_test");
  return dir.path();
}

void write_file(const std::string &path, const std::string &bytes, bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return;
  }
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// An IDX file of type code with dims and the raw big-endian payload.
std::string idx(unsigned char type, const std::vector<uint32_t> &dims, const std::string &payload) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) s += be32(d);
  return s + payload;
}

// The error of f(), checked for code and message fragments.
template <typename F>
void expect_error(F &&f, Code code, const std::vector<std::string> &fragments) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error &e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string &frag : fragments)
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
  }
}

TEST(DataReaders, IdxUint8PlainAndGzip) {
  const std::string p = temp_dir() + "/a-idx3-ubyte", g = p + ".gz";
  const std::string bytes =
      idx(0x08, {2, 2, 3}, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\xff", 12));
  write_file(p, bytes);
  write_file(g, bytes, true);
  for (const std::string &path : {p, g}) {
    Tensor t = read_idx(path);
    EXPECT_EQ(t.dtype(), DType::kUInt8);
    EXPECT_EQ(t.shape(), Shape({2, 2, 3}));
    EXPECT_EQ(t.data<uint8_t>()[0], 1);
    EXPECT_EQ(t.data<uint8_t>()[11], 255);
  }
}

TEST(DataReaders, IdxOtherTypesAreBigEndian) {
  const std::string p = temp_dir() + "/types";
  write_file(p, idx(0x0C, {2}, be32(1) + be32(0xFFFFFFFE)));
  Tensor i = read_idx(p);
  EXPECT_EQ(i.dtype(), DType::kInt32);
  EXPECT_EQ(i.data<int32_t>()[0], 1);
  EXPECT_EQ(i.data<int32_t>()[1], -2);
  write_file(p, idx(0x0B, {1}, std::string("\xff\xfd", 2)));
  EXPECT_EQ(read_idx(p).data<int32_t>()[0], -3);
  write_file(p, idx(0x09, {1}, std::string("\x80", 1)));
  EXPECT_EQ(read_idx(p).data<int32_t>()[0], -128);
  write_file(p, idx(0x0D, {1}, std::string("\x3f\xc0\x00\x00", 4)));
  Tensor f = read_idx(p);
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.data<float>()[0], 1.5f);
  write_file(p, idx(0x0E, {1}, std::string("\xc0\x04\x00\x00\x00\x00\x00\x00", 8)));
  EXPECT_EQ(read_idx(p).data<double>()[0], -2.5);
}

TEST(DataReaders, IdxCorruptAndTruncated) {
  const std::string p = temp_dir() + "/bad-idx";
  expect_error([&] { read_idx(temp_dir() + "/missing"); }, Code::kNotFound, {"missing"});
  write_file(p, std::string("\x00\x00", 2));
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "magic"});
  write_file(p, std::string("\x12\x34\x08\x01", 4) + be32(1) + "x");
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "two zero bytes"});
  write_file(p, idx(0x07, {1}, "x"));
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "element type"});
  write_file(p, std::string("\x00\x00\x08\x03", 4) + be32(2));
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "header needs 16 bytes"});
  write_file(p, idx(0x08, {10, 28, 28}, std::string(100, 'x')));
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "truncated", "uint8[10, 28, 28]", "7840"});
  write_file(p, idx(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, ""));
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "truncated"});
  write_file(p, idx(0x08, {2}, "abc"));
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "1 bytes after"});
  write_file(p, std::string("\x00\x00\x08\x09", 4));
  expect_error([&] { read_idx(p); }, Code::kDataLoss, {p, "9 dims"});
  // A gzip file cut short.
  const std::string g = temp_dir() + "/cut.gz";
  write_file(g, idx(0x08, {1000}, std::string(1000, 'q')), true);
  std::ifstream in(g, std::ios::binary);
  std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_file(g, whole.substr(0, whole.size() / 2));
  expect_error([&] { read_idx(g); }, Code::kDataLoss, {g, "corrupt or truncated"});
  // Garbage after a gzip header.
  write_file(g, std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage", 25));
  expect_error([&] { read_idx(g); }, Code::kDataLoss, {g});
}

TEST(DataReaders, FashionMnistLoaderChecksPairs) {
  const std::string dir = temp_dir() + "/fmnist";
  ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
  write_file(dir + "/train-images-idx3-ubyte.gz", idx(0x08, {3, 2, 2}, std::string(12, '\x07')), true);
  write_file(dir + "/train-labels-idx1-ubyte", idx(0x08, {3}, "\x01\x02\x03"));
  write_file(dir + "/t10k-images-idx3-ubyte", idx(0x08, {1, 2, 2}, std::string(4, '\x09')));
  write_file(dir + "/t10k-labels-idx1-ubyte.gz", idx(0x08, {1}, "\x04"), true);
  FashionMnist f = load_fashion_mnist(dir);
  EXPECT_EQ(f.x_train.shape(), Shape({3, 2, 2}));
  EXPECT_EQ(f.y_train.data<uint8_t>()[2], 3);
  EXPECT_EQ(f.x_test.shape(), Shape({1, 2, 2}));
  EXPECT_EQ(f.y_test.data<uint8_t>()[0], 4);
  write_file(dir + "/t10k-labels-idx1-ubyte.gz", idx(0x08, {2}, "\x04\x05"), true);
  expect_error([&] { load_fashion_mnist(dir); }, Code::kDataLoss, {"1 images", "2 labels"});
  expect_error([&] { load_fashion_mnist(dir + "/nowhere"); }, Code::kNotFound, {"train-images-idx3-ubyte"});
}

TEST(DataReaders, RealFashionMnistWhenInstalled) {
  if (access((std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz").c_str(), R_OK) != 0)
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  FashionMnist f = load_fashion_mnist(kFashionMnistDir);
  EXPECT_EQ(f.x_train.shape(), Shape({60000, 28, 28}));
  EXPECT_EQ(f.y_train.shape(), Shape({60000}));
  EXPECT_EQ(f.x_test.shape(), Shape({10000, 28, 28}));
  EXPECT_EQ(f.y_test.shape(), Shape({10000}));
  EXPECT_EQ(f.y_train.data<uint8_t>()[0], 9);  // the first training image is an ankle boot
}

TEST(DataReaders, Csv) {
  const std::string p = temp_dir() + "/a.csv";
  write_file(p, "a,b,name,c\n1,2.5,\"x, y\",3000000000\r\n-4,1e3,z,5\n\n");
  CsvOptions skip;
  skip.skip_text_columns = true;
  CsvTable t = read_csv(p, skip);
  EXPECT_EQ(t.names, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.columns.size(), 3u);
  EXPECT_EQ(t.columns[0].dtype(), DType::kInt32);
  EXPECT_EQ(t.columns[0].data<int32_t>()[1], -4);
  EXPECT_EQ(t.columns[1].dtype(), DType::kFloat32);
  EXPECT_EQ(t.columns[1].data<float>()[1], 1000.0f);
  EXPECT_EQ(t.columns[2].dtype(), DType::kInt64);
  EXPECT_EQ(t.columns[2].data<int64_t>()[0], 3000000000);
  expect_error([&] { read_csv(p); }, Code::kInvalidArgument, {"name", "line 2", "x, y"});
  CsvOptions typed;
  typed.column_types = {CsvType::kFloat64, CsvType::kSkip, CsvType::kSkip, CsvType::kFloat32};
  CsvTable u = read_csv(p, typed);
  EXPECT_EQ(u.names, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(u.columns[0].dtype(), DType::kFloat64);
  typed.column_types = {CsvType::kInt32, CsvType::kInt32, CsvType::kSkip, CsvType::kSkip};
  expect_error([&] { read_csv(p, typed); }, Code::kInvalidArgument, {p, "line 2", "'b'", "2.5", "int32"});
  // A dataset of dict records.
  DatasetPtr d = csv_dataset(p, skip);
  EXPECT_EQ(d->cardinality(), 2);
  EXPECT_EQ(d->names(), t.names);
  // No header; tab-delimited; gzip.
  const std::string g = temp_dir() + "/b.tsv.gz";
  write_file(g, "1\t2\n3\t4\n", true);
  CsvOptions nh;
  nh.header = false;
  nh.delimiter = '\t';
  CsvTable v = read_csv(g, nh);
  EXPECT_EQ(v.names, (std::vector<std::string>{"column_0", "column_1"}));
  EXPECT_EQ(v.columns[1].data<int32_t>()[1], 4);
}

TEST(DataReaders, CsvCorrupt) {
  const std::string p = temp_dir() + "/bad.csv";
  write_file(p, "a,b\n1,2\n3\n");
  expect_error([&] { read_csv(p); }, Code::kDataLoss, {p, "line 3", "1 fields", "header has 2"});
  write_file(p, "a,b\n1,\"2\n");
  expect_error([&] { read_csv(p); }, Code::kDataLoss, {p, "quote", "line 2"});
  write_file(p, "");
  expect_error([&] { read_csv(p); }, Code::kDataLoss, {p, "empty"});
  expect_error([&] { read_csv(temp_dir() + "/none.csv"); }, Code::kNotFound, {"none.csv"});
  // A number is the whole field, decimal: a NUL inside it, or a C99 hex float, is not one.
  CsvOptions f64;
  f64.column_types = {CsvType::kFloat64};
  write_file(p, std::string("a\n1\0"
                            "999\n",
                            8));
  expect_error([&] { read_csv(p, f64); }, Code::kInvalidArgument,
               {p, "line 2", "'a'", "1\\x00999", "float64"});
  CsvOptions i32;
  i32.column_types = {CsvType::kInt32};
  expect_error([&] { read_csv(p, i32); }, Code::kInvalidArgument, {p, "line 2", "'a'", "int32"});
  write_file(p, "a\n0x10\n");
  expect_error([&] { read_csv(p, f64); }, Code::kInvalidArgument, {p, "line 2", "'a'", "0x10"});
  write_file(p, "a\n-1.5e3\ninf\n");
  EXPECT_EQ(read_csv(p, f64).columns[0].data<double>()[0], -1500.0);
}

}  // namespace
}  // namespace kiln::data
