// kiln::train's checkpoint reading from kiln.hpp: load_checkpoint, list_variables and
// CheckpointReader on TensorFlow's own checkpoints (../shared/fixtures; skipped when absent), a
// directory through its state file, and the errors as kiln::Error codes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "kiln/kiln.hpp"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/capi/CMakeLists.txt sets it)"
#endif

namespace {

using kiln::Dims;
using kiln::train::CheckpointReader;

const std::string kFixtures = std::string(KILN_TEST_SOURCE_DIR) + "/../shared/fixtures";
const std::string kTf2 = kFixtures + "/tf2_checkpoint/keras_embedding.ckpt-0";
const std::string kBert = kFixtures + "/tf1_bert_tiny/bert_model.ckpt";
const std::string kData = ".data-00000-of-00001";
const std::string kKernel0 = "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE";
const std::string kIterations = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE";

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

#define REQUIRE_FIXTURES()                                   \
  if (!exists(kTf2 + ".index") || !exists(kBert + ".index")) \
  GTEST_SKIP() << "the TensorFlow checkpoint fixtures are not in " << kFixtures

// The status code of what fn throws (KILN_STATUS_OK when it does not), its message in *message.
template <typename F>
kiln_status_code code_of(F &&fn, std::string *message = nullptr) {
  try {
    fn();
  } catch (const kiln::Error &e) {
    if (message) *message = e.what();
    return e.code();
  }
  return KILN_STATUS_OK;
}

// A temporary directory holding a copy of the TF2 fixture as m.ckpt-0 (byte `flip` of its data
// inverted when >= 0), removed at the end of the test.
class CheckpointCopy {
 public:
  explicit CheckpointCopy(long flip = -1) {
    char tmpl[] = "/tmp/kiln_hpp_ckpt_XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    copy(kTf2 + ".index", prefix() + ".index", -1);
    copy(kTf2 + kData, prefix() + kData, flip);
  }
  ~CheckpointCopy() {
    for (const char *name : {"checkpoint", "m.ckpt-0.index", "m.ckpt-0.data-00000-of-00001"})
      std::remove((dir_ + "/" + name).c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string &dir() const { return dir_; }
  std::string prefix() const { return dir_ + "/m.ckpt-0"; }
  void write_state(const std::string &text) const { std::ofstream(dir_ + "/checkpoint") << text; }

 private:
  static void copy(const std::string &from, const std::string &to, long flip) {
    std::ifstream in(from, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (flip >= 0) bytes[static_cast<size_t>(flip)] = static_cast<char>(~bytes[static_cast<size_t>(flip)]);
    std::ofstream(to, std::ios::binary) << bytes;
  }
  std::string dir_;
};

TEST(HppCheckpoint, Tf2KerasCheckpointMaps) {
  REQUIRE_FIXTURES();
  CheckpointReader r = kiln::train::load_checkpoint(kTf2);
  EXPECT_EQ(r.prefix(), kTf2);
  EXPECT_EQ(r.num_variables(), 15u);  // 14 tensors and the object graph, as TF lists them
  const std::map<std::string, Dims> shapes = r.get_variable_to_shape_map();
  ASSERT_EQ(shapes.size(), 15u);
  EXPECT_EQ(shapes.at(kKernel0), (Dims{784, 200}));
  EXPECT_EQ(shapes.at(kIterations), Dims{});
  EXPECT_EQ(shapes.at("_CHECKPOINTABLE_OBJECT_GRAPH"), Dims{});
  const std::map<std::string, std::string> dtypes = r.get_variable_to_dtype_map();
  EXPECT_EQ(dtypes.at(kKernel0), "float32");
  EXPECT_EQ(dtypes.at(kIterations), "int64");
  EXPECT_EQ(dtypes.at("_CHECKPOINTABLE_OBJECT_GRAPH"), "string");

  const kiln::train::CheckpointVariable v = r.variable(kKernel0);
  EXPECT_EQ(v.byte_size, 784u * 200u * 4u);
  ASSERT_TRUE(v.kiln_dtype.has_value());
  EXPECT_EQ(*v.kiln_dtype, kiln::DType::float32);
  EXPECT_FALSE(r.variable("_CHECKPOINTABLE_OBJECT_GRAPH").kiln_dtype.has_value());

  EXPECT_TRUE(r.has_tensor(kIterations));
  EXPECT_FALSE(r.has_tensor("optimizer/_iterations"));
  EXPECT_EQ(r.get_tensor(kIterations).item<int64_t>(), 1500);
  EXPECT_NEAR(r.get_tensor("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE").item<float>(), 0.001f,
              1e-9);
  const kiln::Tensor kernel = r.get_tensor(kKernel0);
  EXPECT_EQ(kernel.shape(), (Dims{784, 200}));
  EXPECT_EQ(kernel.dtype(), kiln::DType::float32);
}

TEST(HppCheckpoint, ListVariablesSortedLikeTf) {
  REQUIRE_FIXTURES();
  const auto vars = kiln::train::list_variables(kBert);
  ASSERT_EQ(vars.size(), 139u);
  for (size_t i = 1; i < vars.size(); ++i) EXPECT_LT(vars[i - 1].first, vars[i].first);
  EXPECT_EQ(vars.back().first, "global_step");
  EXPECT_EQ(vars.back().second, Dims{});
  EXPECT_EQ(vars.front().first, "bert/embeddings/LayerNorm/beta");
  EXPECT_EQ(vars.front().second, Dims{4});
  const CheckpointReader r(kBert);
  EXPECT_EQ(r.get_tensor("global_step").item<int64_t>(), 20);
  EXPECT_EQ(r.get_variable_to_shape_map().at("bert/embeddings/word_embeddings"), (Dims{15, 4}));
  EXPECT_TRUE(r.has_tensor("bert/encoder/layer_0/attention/self/key/kernel/adam_v"));
  const std::vector<float> b = r.get_tensor("cls/seq_relationship/output_bias").to_vector<float>();
  ASSERT_EQ(b.size(), 2u);
  EXPECT_NEAR(b[0], -6.131137524789665e-06, 1e-12);
}

TEST(HppCheckpoint, DirectoryThroughStateFile) {
  REQUIRE_FIXTURES();
  CheckpointCopy copy;
  EXPECT_EQ(code_of([&] { kiln::train::load_checkpoint(copy.dir()); }), KILN_STATUS_NOT_FOUND);
  copy.write_state("model_checkpoint_path: \"m.ckpt-0\"\nall_model_checkpoint_paths: \"m.ckpt-0\"\n");
  CheckpointReader r = kiln::train::load_checkpoint(copy.dir());
  EXPECT_NE(r.prefix().find("m.ckpt-0"), std::string::npos);
  EXPECT_EQ(r.get_tensor(kIterations).item<int64_t>(), 1500);
  EXPECT_EQ(kiln::train::list_variables(copy.dir()).size(), 15u);
}

TEST(HppCheckpoint, Errors) {
  REQUIRE_FIXTURES();
  std::string msg;
  EXPECT_EQ(code_of([&] { CheckpointReader(kFixtures + "/no_such.ckpt"); }, &msg), KILN_STATUS_NOT_FOUND);
  EXPECT_NE(msg.find("no_such.ckpt"), std::string::npos) << msg;
  const CheckpointReader r(kTf2);
  EXPECT_EQ(code_of([&] { r.get_tensor("no/such/variable"); }, &msg), KILN_STATUS_NOT_FOUND);
  EXPECT_NE(msg.find("no/such/variable"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { r.variable("no/such/variable"); }), KILN_STATUS_NOT_FOUND);
  EXPECT_EQ(code_of([&] { r.variable(size_t{15}); }), KILN_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(code_of([&] { r.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"); }, &msg), KILN_STATUS_UNIMPLEMENTED);
  EXPECT_NE(msg.find("string"), std::string::npos) << msg;
  // A moved-from reader holds no handle: a status, not a crash.
  CheckpointReader moved(kTf2);
  CheckpointReader taken(std::move(moved));
  EXPECT_EQ(code_of([&] { moved.num_variables(); }), KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(taken.num_variables(), 15u);
}

TEST(HppCheckpoint, CorruptCopyIsDataLossNamingTheVariable) {
  REQUIRE_FIXTURES();
  CheckpointCopy copy(0);  // byte 0 of the data file is the first of layer_with_weights-0/kernel
  const CheckpointReader r(copy.prefix());
  std::string msg;
  EXPECT_EQ(code_of([&] { r.get_tensor(kKernel0); }, &msg), KILN_STATUS_DATA_LOSS);
  EXPECT_NE(msg.find(kKernel0), std::string::npos) << msg;
  EXPECT_NE(msg.find(kData), std::string::npos) << msg;
  EXPECT_EQ(r.get_tensor(kIterations).item<int64_t>(), 1500);
}

}  // namespace
