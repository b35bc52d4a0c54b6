// Tensor bundles against TensorFlow's own files: the fixtures read (names, dtypes, shapes, values,
// CRCs), kiln's writer reproduces them byte for byte, every kiln dtype round-trips bit for bit,
// and the writer's files appear only on finish().
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <thread>

#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/crc32c.h"
#include "test_util.h"

namespace kiln::io {
namespace {

using testing::expect_error;
using testing::TempDir;

const char *kData1 = ".data-00000-of-00001";

bool same_bytes(const Tensor &a, const Tensor &b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0;
}

// Counts the top-level field-1 (nodes) records of a serialized TrackableObjectGraph.
int count_object_graph_nodes(const std::string &bytes) {
  const char *p = bytes.data();
  const char *end = p + bytes.size();
  auto varint = [&](uint64_t *v) {
    *v = 0;
    for (int shift = 0; p < end; shift += 7) {
      const uint64_t b = static_cast<unsigned char>(*p++);
      *v |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  int nodes = 0;
  uint64_t tag, len;
  while (p < end) {
    if (!varint(&tag) || (tag & 7) != 2 || !varint(&len) || len > static_cast<uint64_t>(end - p)) return -1;
    if ((tag >> 3) == 1) ++nodes;
    p += len;
  }
  return nodes;
}

// ---- dtypes ----

TEST(BundleDTypeTest, NamesAndMapping) {
  EXPECT_EQ(tf_dtype_name(TfDType::kFloat), "float32");
  EXPECT_EQ(tf_dtype_name(TfDType::kHalf), "float16");
  EXPECT_EQ(tf_dtype_name(TfDType::kString), "string");
  EXPECT_EQ(tf_dtype_name(TfDType::kBFloat16), "bfloat16");
  EXPECT_EQ(tf_dtype_name(static_cast<TfDType>(101)), "float32_ref");
  EXPECT_EQ(tf_dtype_name(static_cast<TfDType>(77)), "dtype_77");
  for (DType d : {DType::kFloat32, DType::kBFloat16, DType::kInt32, DType::kInt64, DType::kUInt8,
                  DType::kBool, DType::kFloat64})
    EXPECT_EQ(from_tf_dtype(to_tf_dtype(d), "x"), d);
  EXPECT_EQ(to_tf_dtype(DType::kFloat64), TfDType::kDouble);
  EXPECT_EQ(to_tf_dtype(DType::kBool), TfDType::kBool);
  expect_error([] { from_tf_dtype(TfDType::kComplex64, "tensor 'z'"); }, Code::kUnimplemented,
               {"complex64", "tensor 'z'"});
}

// ---- the TensorFlow fixtures ----

TEST(BundleFixtureTest, KerasTf2Checkpoint) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  BundleReader r(testing::tf2_prefix());
  EXPECT_EQ(r.num_shards(), 1);
  // 14 tensors plus the object graph.
  ASSERT_EQ(r.entries().size(), 15u);
  EXPECT_EQ(r.entries().front().key, "_CHECKPOINTABLE_OBJECT_GRAPH");
  for (size_t i = 1; i < r.entries().size(); ++i) EXPECT_LT(r.entries()[i - 1].key, r.entries()[i].key);

  const std::map<std::string, std::vector<int64_t>> want = {
      {"layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", {784, 200}},
      {"layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE", {200}},
      {"layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE", {200, 10}},
      {"layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE", {10}},
      {"optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE", {}},
      {"optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE", {784, 200}},
      {"optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE", {784, 200}},
      {"optimizer/_variables/3/.ATTRIBUTES/VARIABLE_VALUE", {200}},
      {"optimizer/_variables/4/.ATTRIBUTES/VARIABLE_VALUE", {200}},
      {"optimizer/_variables/5/.ATTRIBUTES/VARIABLE_VALUE", {200, 10}},
      {"optimizer/_variables/6/.ATTRIBUTES/VARIABLE_VALUE", {200, 10}},
      {"optimizer/_variables/7/.ATTRIBUTES/VARIABLE_VALUE", {10}},
      {"optimizer/_variables/8/.ATTRIBUTES/VARIABLE_VALUE", {10}},
  };
  for (const auto &kv : want) {
    ASSERT_TRUE(r.contains(kv.first)) << kv.first;
    const BundleEntry &e = r.entry(kv.first);
    EXPECT_EQ(e.dtype, TfDType::kFloat) << kv.first;
    EXPECT_EQ(e.shape, kv.second) << kv.first;
    EXPECT_FALSE(e.sliced);
    const Tensor t = r.read(kv.first);  // CRC checked
    EXPECT_EQ(t.dtype(), DType::kFloat32);
    EXPECT_EQ(t.shape().to_vector(), kv.second);
    for (int64_t i = 0; i < t.num_elements(); ++i) ASSERT_TRUE(std::isfinite(t.data<float>()[i])) << kv.first;
  }
  const std::string iterations = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE";
  EXPECT_EQ(r.entry(iterations).dtype, TfDType::kInt64);
  EXPECT_TRUE(r.entry(iterations).shape.empty());
  const Tensor it = r.read(iterations);
  EXPECT_EQ(it.dtype(), DType::kInt64);
  EXPECT_EQ(it.rank(), 0);
  EXPECT_EQ(*it.data<int64_t>(), 1500);
  const float lr = *r.read("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE").data<float>();
  EXPECT_GT(lr, 0.0f);
  EXPECT_LT(lr, 1.0f);

  const BundleEntry &g = r.entry("_CHECKPOINTABLE_OBJECT_GRAPH");
  EXPECT_EQ(g.dtype, TfDType::kString);
  EXPECT_TRUE(g.shape.empty());
  const std::vector<std::string> graph = r.read_strings("_CHECKPOINTABLE_OBJECT_GRAPH");
  ASSERT_EQ(graph.size(), 1u);
  EXPECT_EQ(count_object_graph_nodes(graph[0]), 26);
  expect_error([&] { r.read("_CHECKPOINTABLE_OBJECT_GRAPH"); }, Code::kUnimplemented,
               {"string", "_CHECKPOINTABLE_OBJECT_GRAPH"});
  expect_error([&] { r.read_strings(iterations); }, Code::kInvalidArgument, {"int64", iterations});
  expect_error([&] { r.entry("nope"); }, Code::kNotFound, {"nope", "keras_embedding.ckpt-0"});
}

TEST(BundleFixtureTest, BertTf1Checkpoint) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::bert_prefix());
  BundleReader r(testing::bert_prefix());
  ASSERT_EQ(r.entries().size(), 139u);
  int adam = 0;
  for (const BundleEntry &e : r.entries()) {
    if (e.key == "global_step") continue;
    EXPECT_EQ(e.dtype, TfDType::kFloat) << e.key;
    const Tensor t = r.read(e.key);
    EXPECT_EQ(t.shape().to_vector(), e.shape);
    if (e.key.size() > 7 &&
        (e.key.substr(e.key.size() - 7) == "/adam_m" || e.key.substr(e.key.size() - 7) == "/adam_v"))
      ++adam;
  }
  EXPECT_EQ(adam, 2 * (139 - 1) / 3);
  const std::map<std::string, std::vector<int64_t>> want = {
      {"bert/embeddings/word_embeddings", {15, 4}},
      {"bert/embeddings/position_embeddings", {16, 4}},
      {"bert/embeddings/token_type_embeddings", {2, 4}},
      {"bert/encoder/layer_1/attention/self/query/kernel", {4, 4}},
      {"bert/encoder/layer_0/intermediate/dense/kernel", {4, 16}},
      {"bert/encoder/layer_0/output/dense/kernel", {16, 4}},
      {"cls/predictions/output_bias", {15}},
      {"cls/seq_relationship/output_weights", {2, 4}},
  };
  for (const auto &kv : want) EXPECT_EQ(r.entry(kv.first).shape, kv.second) << kv.first;
  const BundleEntry &step = r.entry("global_step");
  EXPECT_EQ(step.dtype, TfDType::kInt64);
  EXPECT_TRUE(step.shape.empty());
  const Tensor s = r.read("global_step");
  EXPECT_EQ(s.dtype(), DType::kInt64);
  EXPECT_GE(*s.data<int64_t>(), 0);
}

// Many threads read the same reader at once (lazy shard open, pread).
TEST(BundleFixtureTest, ConcurrentReads) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  BundleReader r(testing::tf2_prefix());
  std::vector<Tensor> want;
  for (const BundleEntry &e : r.entries())
    if (e.dtype != TfDType::kString) want.push_back(BundleReader(testing::tf2_prefix()).read(e.key));
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) {
        size_t i = 0;
        for (const BundleEntry &e : r.entries()) {
          if (e.dtype == TfDType::kString) continue;
          if (!same_bytes(r.read(e.key), want[i++])) ++bad[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (auto &th : threads) th.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

// Re-writes every entry of a TensorFlow bundle with kiln's writer, in the order of their data
// offsets (TF writes data in the order tensors are added), and expects identical files.
void expect_rewrite_identical(const std::string &src_prefix, const std::string &name) {
  BundleReader r(src_prefix);
  std::vector<const BundleEntry *> order;
  for (const BundleEntry &e : r.entries()) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const BundleEntry *a, const BundleEntry *b) { return a->offset < b->offset; });
  TempDir dir;
  const std::string prefix = dir / name;
  {
    BundleWriter w(prefix);
    for (const BundleEntry *e : order) {
      if (e->dtype == TfDType::kString)
        w.add_strings(e->key, e->shape, r.read_strings(e->key));
      else
        w.add(e->key, r.read(e->key));
    }
    w.finish();
  }
  const std::string want_index = testing::slurp(src_prefix + ".index");
  const std::string got_index = testing::slurp(prefix + ".index");
  EXPECT_EQ(got_index.size(), want_index.size());
  EXPECT_TRUE(got_index == want_index) << "the .index of " << name << " differs from TensorFlow's";
  const std::string want_data = testing::slurp(src_prefix + kData1);
  const std::string got_data = testing::slurp(prefix + kData1);
  EXPECT_EQ(got_data.size(), want_data.size());
  EXPECT_TRUE(got_data == want_data) << "the data file of " << name << " differs from TensorFlow's";
}

TEST(BundleFixtureTest, RewriteTf2IsByteIdentical) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  expect_rewrite_identical(testing::tf2_prefix(), "keras_embedding.ckpt-0");
}

TEST(BundleFixtureTest, RewriteBertIsByteIdentical) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::bert_prefix());
  expect_rewrite_identical(testing::bert_prefix(), "bert_model.ckpt");
}

// ---- round trips ----

template <typename T>
Tensor typed(const Shape &s, const std::vector<T> &v) {
  return Tensor::from_data(dtype_of<T>::value, s, v.data(), v.size() * sizeof(T));
}

TEST(BundleRoundTripTest, EveryDTypeBitExact) {
  const float fnan = std::numeric_limits<float>::quiet_NaN();
  const float finf = std::numeric_limits<float>::infinity();
  float payload_nan;
  const uint32_t nan_bits = 0x7fc01234u;
  std::memcpy(&payload_nan, &nan_bits, 4);
  const double dnan = std::numeric_limits<double>::quiet_NaN();
  const double dinf = std::numeric_limits<double>::infinity();
  bfloat16 b0, b1, b2, b3;
  b0.bits = 0x8000;  // -0
  b1.bits = 0x7fc1;  // NaN with payload
  b2.bits = 0xff80;  // -inf
  b3.bits = 0x3f80;  // 1

  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"f32", typed<float>({2, 3}, {-0.0f, fnan, finf, -finf, payload_nan, 1e-45f})},
      {"f32_scalar", Tensor::scalar(3.5f)},
      {"f32_empty", typed<float>({0}, {})},
      {"f32_empty2", typed<float>({3, 0, 2}, {})},
      {"f64", typed<double>({4}, {-0.0, dnan, -dinf, 5e-324})},
      {"bf16", typed<bfloat16>({2, 2}, {b0, b1, b2, b3})},
      {"i32",
       typed<int32_t>({3}, {std::numeric_limits<int32_t>::min(), -1, std::numeric_limits<int32_t>::max()})},
      {"i64",
       typed<int64_t>({2}, {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()})},
      {"i64_scalar", Tensor::scalar<int64_t>(1500)},
      {"u8", typed<uint8_t>({5}, {0, 1, 127, 128, 255})},
      {"bool", testing::make_bool({2, 2}, {1, 0, 0, 1})},
      {"bool_empty", testing::make_bool({0}, {})},
  };
  const std::string long_str(70000, 'x');
  std::string binary(300, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i);
  const std::vector<std::pair<std::string, std::pair<std::vector<int64_t>, std::vector<std::string>>>>
      strings = {
          {"s_scalar_empty", {{}, {""}}},
          {"s_matrix", {{2, 2}, {"", "a", binary, long_str}}},
          {"s_none", {{0}, {}}},
          {"s_none2", {{2, 0}, {}}},
      };

  TempDir dir;
  const std::string prefix = dir / "sub/dir/ckpt-1";  // the writer makes missing directories
  {
    BundleWriter w(prefix);
    // Added out of key order: the index sorts, the data keeps the order of add().
    for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) w.add(it->first, it->second);
    for (const auto &s : strings) w.add_strings(s.first, s.second.first, s.second.second);
    w.finish();
  }
  BundleReader r(prefix);
  EXPECT_EQ(r.entries().size(), tensors.size() + strings.size());
  for (size_t i = 1; i < r.entries().size(); ++i) EXPECT_LT(r.entries()[i - 1].key, r.entries()[i].key);
  int64_t expected_offset = 0;
  for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
    const BundleEntry &e = r.entry(it->first);
    EXPECT_EQ(e.offset, expected_offset) << it->first;
    EXPECT_EQ(e.size, static_cast<int64_t>(it->second.byte_size()));
    EXPECT_EQ(e.dtype, to_tf_dtype(it->second.dtype()));
    EXPECT_EQ(e.shape, it->second.shape().to_vector());
    expected_offset += e.size;
    const Tensor got = r.read(it->first);
    EXPECT_TRUE(same_bytes(got, it->second)) << it->first << " " << got.description();
  }
  for (const auto &s : strings) {
    const BundleEntry &e = r.entry(s.first);
    EXPECT_EQ(e.dtype, TfDType::kString);
    EXPECT_EQ(e.shape, s.second.first);
    EXPECT_EQ(r.read_strings(s.first), s.second.second) << s.first;
  }
  // An empty string list is still 4 bytes: the checksum of no lengths.
  EXPECT_EQ(r.entry("s_none").size, 4);
  EXPECT_EQ(r.entry("s_scalar_empty").size, 5);
}

TEST(BundleRoundTripTest, EmptyBundle) {
  TempDir dir;
  BundleWriter w(dir / "empty");
  w.finish();
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"empty.data-00000-of-00001", "empty.index"}));
  BundleReader r(dir / "empty");
  EXPECT_TRUE(r.entries().empty());
  EXPECT_FALSE(r.contains("x"));
}

// ---- writer behaviour ----

TEST(BundleWriterTest, OnlyFinalFilesAfterFinish) {
  TempDir dir;
  BundleWriter w(dir / "ckpt-1");
  w.add("a", Tensor::scalar(1.0f));
  // Before finish() nothing exists under the final names (only a temporary data file).
  for (const std::string &n : dir.list()) EXPECT_NE(n.find(".tempstate"), std::string::npos) << n;
  w.finish();
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"ckpt-1.data-00000-of-00001", "ckpt-1.index"}));
  expect_error([&] { w.add("b", Tensor::scalar(1.0f)); }, Code::kFailedPrecondition, {"finished"});
  expect_error([&] { w.finish(); }, Code::kFailedPrecondition, {"finished"});
}

TEST(BundleWriterTest, UnfinishedWriterLeavesNothing) {
  TempDir dir;
  {
    BundleWriter w(dir / "ckpt-1");
    w.add("a", testing::random_tensor({100, 100}, 1));
    w.add_strings("s", {}, {"graph"});
  }
  EXPECT_TRUE(dir.list().empty());
  { BundleWriter w(dir / "ckpt-2"); }
  EXPECT_TRUE(dir.list().empty());
}

TEST(BundleWriterTest, ReplacesExistingCheckpointOnlyOnFinish) {
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  {
    BundleWriter w(prefix);
    w.add("v", Tensor::scalar(1.0f));
    w.finish();
  }
  {
    BundleWriter w(prefix);
    w.add("v", Tensor::scalar(2.0f));
    w.add("w", Tensor::scalar(3.0f));
    EXPECT_EQ(*BundleReader(prefix).read("v").data<float>(), 1.0f);
    // Destroyed without finish(): the old checkpoint is intact.
  }
  EXPECT_EQ(*BundleReader(prefix).read("v").data<float>(), 1.0f);
  EXPECT_FALSE(BundleReader(prefix).contains("w"));
  {
    BundleWriter w(prefix);
    w.add("v", Tensor::scalar(2.0f));
    w.add("w", Tensor::scalar(3.0f));
    EXPECT_EQ(*BundleReader(prefix).read("v").data<float>(), 1.0f);
    w.finish();
  }
  BundleReader r(prefix);
  EXPECT_EQ(*r.read("v").data<float>(), 2.0f);
  EXPECT_EQ(*r.read("w").data<float>(), 3.0f);
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"ckpt.data-00000-of-00001", "ckpt.index"}));
}

TEST(BundleWriterTest, BadArguments) {
  TempDir dir;
  BundleWriter w(dir / "ckpt");
  w.add("a", Tensor::scalar(1.0f));
  expect_error([&] { w.add("a", Tensor::scalar(2.0f)); }, Code::kInvalidArgument, {"duplicate", "'a'"});
  expect_error([&] { w.add("", Tensor::scalar(2.0f)); }, Code::kInvalidArgument, {"empty key"});
  expect_error([&] { w.add("u", Tensor()); }, Code::kInvalidArgument, {});
  expect_error([&] { w.add_strings("s", {2}, {"x"}); }, Code::kInvalidArgument, {"holds 2 strings; got 1"});
  expect_error([&] { w.add_strings("s", {-1}, {}); }, Code::kInvalidArgument, {"invalid shape"});
  expect_error([&] { w.add_strings("a", {}, {"x"}); }, Code::kInvalidArgument, {"duplicate"});
  // Argument errors leave the writer usable.
  w.add("b", Tensor::scalar(2.0f));
  w.finish();
  BundleReader r(dir / "ckpt");
  EXPECT_EQ(r.entries().size(), 2u);
  EXPECT_EQ(*r.read("a").data<float>(), 1.0f);
  EXPECT_EQ(*r.read("b").data<float>(), 2.0f);
  expect_error([] { BundleWriter bad(""); }, Code::kInvalidArgument, {"empty prefix"});
}

TEST(BundleWriterTest, UnwritableDirectoryFails) {
  TempDir dir;
  testing::spit(dir / "file", "x");  // a file where the writer needs a directory
  BundleWriter w(dir / "file/ckpt");
  try {
    w.add("a", Tensor::scalar(1.0f));
    ADD_FAILURE() << "no error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("file"), std::string::npos) << e.what();
  }
  expect_error([&] { w.finish(); }, Code::kFailedPrecondition, {"failed"});
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"file"}));
}

}  // namespace
}  // namespace kiln::io

namespace kiln::io {
namespace {

// Threads of one process saving to one prefix at once: every save succeeds, and the prefix then
// reads as one of the saved bundles, whole (its value and its data file agree).
TEST(BundleWriterTest, ConcurrentWritersToOnePrefix) {
  TempDir dir;
  const std::string prefix = dir.path() + "/ckpt";
  std::vector<std::thread> threads;
  std::vector<std::string> errors(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int rep = 0; rep < 10; ++rep) {
          BundleWriter w(prefix);
          const std::vector<float> values(16, static_cast<float>(t * 100 + rep));
          w.add("v", Tensor::from_data(DType::kFloat32, {16}, values.data(), values.size() * sizeof(float)));
          w.finish();
        }
      } catch (const std::exception &e) {
        errors[static_cast<size_t>(t)] = e.what();
      }
    });
  }
  for (auto &th : threads) th.join();
  for (const std::string &e : errors) EXPECT_EQ(e, "");
  BundleReader r(prefix);
  const Tensor v = r.read("v");
  for (int i = 1; i < 16; ++i) EXPECT_EQ(v.data<float>()[i], v.data<float>()[0]);
}

}  // namespace
}  // namespace kiln::io
