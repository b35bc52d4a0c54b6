// kiln::train::init_from_checkpoint from kiln.hpp on google-research/bert's TF1 checkpoint
// (../shared/fixtures; skipped when absent): both overloads (a model, a list of variables), pairs
// given as names, scopes and Variables, every field of the report, and errors as kiln::Error codes
// with nothing changed. examples/cpp/bert_tf1_init.cc runs the whole BERT encoder through it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

#include "kiln/kiln.hpp"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/capi/CMakeLists.txt sets it)"
#endif

namespace {

using kiln::Tensor;
using kiln::Variable;
using kiln::train::InitFromCheckpointOptions;
using kiln::train::InitFromCheckpointReport;

const std::string kBert =
    std::string(KILN_TEST_SOURCE_DIR) + "/../shared/fixtures/tf1_bert_tiny/bert_model.ckpt";

#define REQUIRE_BERT()                                            \
  do {                                                            \
    struct stat st;                                               \
    if (::stat((kBert + ".index").c_str(), &st) != 0)             \
      GTEST_SKIP() << "the TF1 BERT fixture is not at " << kBert; \
  } while (0)

Variable zeros(const std::string &name, const kiln::Dims &shape) {
  return Variable(kiln::zeros(shape), name);
}

std::vector<float> checkpoint_values(const std::string &name) {
  return kiln::train::load_checkpoint(kBert).get_tensor(name).to_vector<float>();
}

kiln_status_code code_of(const std::function<void()> &fn, std::string *message = nullptr) {
  try {
    fn();
  } catch (const kiln::Error &e) {
    if (message) *message = e.what();
    return e.code();
  }
  return KILN_STATUS_OK;
}

TEST(HppInitFromCheckpoint, VariablesNamesScopesAndObjects) {
  REQUIRE_BERT();
  Variable kernel = zeros("pool/kernel", {4, 4}), bias = zeros("pool/bias", {4}), gamma = zeros("g", {4});
  Variable spare = zeros("spare", {2});
  const InitFromCheckpointReport r = kiln::train::init_from_checkpoint(
      kBert, {{"bert/pooler/dense/", "pool/"}, {"bert/embeddings/LayerNorm/gamma", gamma}},
      {kernel, bias, spare});
  EXPECT_EQ(kernel.value().to_vector<float>(), checkpoint_values("bert/pooler/dense/kernel"));
  EXPECT_EQ(bias.value().to_vector<float>(), checkpoint_values("bert/pooler/dense/bias"));
  EXPECT_EQ(gamma.value().to_vector<float>(), checkpoint_values("bert/embeddings/LayerNorm/gamma"));
  EXPECT_EQ(r.checkpoint, kBert);
  ASSERT_EQ(r.matched.size(), 3u);
  EXPECT_EQ(r.matched[0].checkpoint_name, "bert/pooler/dense/kernel");
  EXPECT_EQ(r.matched[0].checkpoint_key, "bert/pooler/dense/kernel");
  EXPECT_EQ(r.matched[0].variable, "pool/kernel");
  EXPECT_EQ(r.matched[0].checkpoint_shape, (kiln::Dims{4, 4}));
  EXPECT_EQ(r.matched[2].variable, "g");
  EXPECT_EQ(r.unmatched_variables, std::vector<std::string>{"spare"});
  EXPECT_EQ(r.skipped_checkpoint_names.size(), 93u);
  EXPECT_EQ(r.unmatched_checkpoint_names.size(), 139u - 93u - 3u);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.mismatched.empty());
  EXPECT_NE(r.summary.find("bert/pooler/dense/bias [4] -> pool/bias"), std::string::npos) << r.summary;
}

TEST(HppInitFromCheckpoint, AModelAndTheOptions) {
  REQUIRE_BERT();
  kiln::layers::DenseOptions d;
  d.name = "hpp_pooler";
  kiln::Layer dense = kiln::layers::Dense(16, d);
  EXPECT_EQ(code_of([&] {
              kiln::train::init_from_checkpoint(kBert, {{"bert/pooler/dense/", "hpp_pooler/"}}, dense);
            }),
            KILN_STATUS_FAILED_PRECONDITION);
  dense.build_for({-1, 4});
  // The kernel [4, 16] takes intermediate/dense's; the bias [16] too, from the same scope.
  InitFromCheckpointReport r = kiln::train::init_from_checkpoint(
      kBert, {{"bert/encoder/layer_1/intermediate/dense/", "hpp_pooler/"}}, dense);
  EXPECT_EQ(r.matched.size(), 2u);
  EXPECT_EQ(dense.variables()[0].value().to_vector<float>(),
            checkpoint_values("bert/encoder/layer_1/intermediate/dense/kernel"));

  // A transposed shape: INVALID_ARGUMENT naming both sides, or reported with skip_mismatched.
  Variable t = zeros("t", {16, 4}), b = zeros("b", {4}), q = zeros("q", {4, 2, 2});
  std::string message;
  EXPECT_EQ(code_of(
                [&] {
                  kiln::train::init_from_checkpoint(kBert,
                                                    {{"bert/pooler/dense/bias", "b"},
                                                     {"bert/encoder/layer_0/intermediate/dense/kernel", "t"}},
                                                    {t, b});
                },
                &message),
            KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("float32[4, 16]"), std::string::npos) << message;
  EXPECT_NE(message.find("'t' (float32[16, 4])"), std::string::npos) << message;
  EXPECT_EQ(b.value().to_vector<float>(), std::vector<float>(4, 0.0f));
  InitFromCheckpointOptions o;
  o.skip_mismatched = true;
  o.allow_missing = true;
  o.allow_reshape = true;
  r = kiln::train::init_from_checkpoint(kBert,
                                        {{"bert/pooler/dense/bias", "b"},
                                         {"bert/encoder/layer_0/intermediate/dense/kernel", "t"},
                                         {"bert/no/such", "spare"},
                                         {"bert/encoder/layer_0/attention/self/key/kernel", "q"}},
                                        {t, b, zeros("spare", {1}), q}, o);
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0].checkpoint_name, "bert/encoder/layer_0/intermediate/dense/kernel");
  EXPECT_EQ(r.mismatched[0].variable, "t");
  EXPECT_EQ(r.mismatched[0].checkpoint_dtype, "float32");
  EXPECT_EQ(r.mismatched[0].checkpoint_shape, (kiln::Dims{4, 16}));
  EXPECT_EQ(r.mismatched[0].variable_shape, (kiln::Dims{16, 4}));
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].checkpoint_name, "bert/no/such");
  EXPECT_EQ(r.missing[0].variable, "spare");
  ASSERT_EQ(r.matched.size(), 2u);
  EXPECT_TRUE(r.matched[1].reshaped);
  EXPECT_EQ(q.value().to_vector<float>(),
            checkpoint_values("bert/encoder/layer_0/attention/self/key/kernel"));
  // Optimizer state taken by name: global_step is int64, a scalar.
  Variable step(Tensor::scalar<int64_t>(0), "step");
  r = kiln::train::init_from_checkpoint(kBert, {{"global_step", step}}, std::vector<Variable>{});
  EXPECT_EQ(r.matched[0].checkpoint_shape, kiln::Dims{});
  EXPECT_GT(step.value().to_vector<int64_t>()[0], 0);
}

TEST(HppInitFromCheckpoint, Errors) {
  REQUIRE_BERT();
  Variable v = zeros("v", {4});
  EXPECT_EQ(code_of([&] {
              kiln::train::init_from_checkpoint(kBert, {{"bert/pooler/", "v"}}, {v});
            }),
            KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] {
              kiln::train::init_from_checkpoint(kBert, {{"bert/pooler/dense/bias", "w"}}, {v});
            }),
            KILN_STATUS_NOT_FOUND);
  EXPECT_EQ(code_of([&] {
              kiln::train::init_from_checkpoint(kBert + "_absent", {{"a", "v"}}, {v});
            }),
            KILN_STATUS_NOT_FOUND);
  EXPECT_EQ(v.value().to_vector<float>(), std::vector<float>(4, 0.0f));
}

}  // namespace
