// init_from_checkpoint (train/init_from_checkpoint.h): checkpoint key names (TF1, TF2
// object-based, optimizer state), the assignment map's forms (names, scopes, the root, variables
// given as objects, one value into many variables), its checks (dtype, shape, reshape, missing
// names, all or nothing), the report, and the real TensorFlow checkpoints of ../shared/fixtures
// (google-research/bert's TF1 names, a Keras TF2 one). The BERT and ALBERT name maps of
// examples/cpp/bert_tf1_names.h are checked here too: BERT on the real checkpoint, ALBERT on a
// synthetic one written with BundleWriter, and the attention-kernel reshape they rely on against
// a reference attention written in TF1's layout with more than one dim per head.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "../../examples/cpp/bert_tf1_names.h"
#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "test_util.h"
#include "train/init_from_checkpoint.h"

namespace kiln::train {
namespace {

using autodiff::Variable;
using kiln::testing::expect_error;
using kiln::testing::make;
using kiln::testing::make_typed;
using kiln::testing::random_tensor;
using kiln::testing::TempDir;
using kiln::testing::values;
using VariablePtr = std::shared_ptr<Variable>;

VariablePtr var(const std::string &name, const Shape &shape, DType dtype = DType::kFloat32) {
  return std::make_shared<Variable>(name, ops::fill(shape, 0.0, dtype), true);
}

bool contains(const std::vector<std::string> &v, const std::string &s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool same_values(const Tensor &a, const Tensor &b) {
  return a.num_elements() == b.num_elements() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0;
}

// ------------------------------------------------------------------ names

TEST(CheckpointKeyNameTest, Tf1Names) {
  CheckpointKeyName n = checkpoint_key_name("bert/encoder/layer_0/attention/self/query/kernel");
  EXPECT_EQ(n.name, "bert/encoder/layer_0/attention/self/query/kernel");
  EXPECT_EQ(n.kind, CheckpointKeyKind::kVariable);
  EXPECT_FALSE(n.object_based);
  for (const char *key : {"bert/pooler/dense/kernel/adam_m", "bert/pooler/dense/kernel/adam_v", "global_step",
                          "dense/kernel/Adam", "dense/kernel/Adam_1", "dense/kernel/Momentum", "w/RMSProp_1",
                          "w/Adagrad", "w/Ftrl", "beta1_power", "beta2_power"})
    EXPECT_EQ(checkpoint_key_name(key).kind, CheckpointKeyKind::kOptimizerState) << key;
  // Only the last component counts: a scope named like a slot is not one.
  EXPECT_EQ(checkpoint_key_name("adam_m/kernel").kind, CheckpointKeyKind::kVariable);
  EXPECT_EQ(checkpoint_key_name("my_global_step").kind, CheckpointKeyKind::kVariable);
  EXPECT_EQ(checkpoint_key_name("_CHECKPOINTABLE_OBJECT_GRAPH").kind, CheckpointKeyKind::kNotAVariable);
  EXPECT_EQ(checkpoint_key_name(std::string("\0slice", 6)).kind, CheckpointKeyKind::kNotAVariable);
  EXPECT_TRUE(is_tf1_optimizer_state_name("a/b/adam_v"));
  EXPECT_FALSE(is_tf1_optimizer_state_name("adam_v"));  // a variable of that name, not a slot
}

TEST(CheckpointKeyNameTest, ObjectBasedNames) {
  CheckpointKeyName n = checkpoint_key_name("model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(n.name, "model/layer_with_weights-0/kernel");
  EXPECT_EQ(n.kind, CheckpointKeyKind::kVariable);
  EXPECT_TRUE(n.object_based);
  // TF's escaping undone: "." was "..", "/" inside an edge name was ".S".
  EXPECT_EQ(checkpoint_key_name("a..b/c.Sd/.ATTRIBUTES/VARIABLE_VALUE").name, "a.b/c/d");
  EXPECT_EQ(object_based_variable_name("a..b/c.Sd/.ATTRIBUTES/VARIABLE_VALUE"), "a.b/c/d");
  EXPECT_EQ(object_based_variable_name("bert/pooler/dense/kernel"), "");
  EXPECT_EQ(object_based_variable_name("/.ATTRIBUTES/VARIABLE_VALUE"), "");
  for (const char *key :
       {"layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
        "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE",
        "optimizer/_variables/3/.ATTRIBUTES/VARIABLE_VALUE",
        "model/optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
        "bert.Spooler.Sdense.Skernel.Sadam_m/.ATTRIBUTES/VARIABLE_VALUE"})  // a TF1 slot under its name
    EXPECT_EQ(checkpoint_key_name(key).kind, CheckpointKeyKind::kOptimizerState) << key;
  for (const char *key : {"layer-0/.ATTRIBUTES/OBJECT_CONFIG_JSON", ".ATTRIBUTES/VARIABLE_VALUE",
                          "a/.ATTRIBUTES/VARIABLE_VALUE/extra"})
    EXPECT_EQ(checkpoint_key_name(key).kind, CheckpointKeyKind::kNotAVariable) << key;
  // An edge spelled ".ATTRIBUTES" is escaped to "..ATTRIBUTES": not the marker.
  EXPECT_EQ(checkpoint_key_name("..ATTRIBUTES/x/.ATTRIBUTES/VARIABLE_VALUE").name, ".ATTRIBUTES/x");
  EXPECT_EQ(checkpoint_key_name("..OPTIMIZER_SLOT/.ATTRIBUTES/VARIABLE_VALUE").kind,
            CheckpointKeyKind::kVariable);
}

TEST(ReshapeCompatibleTest, SplitsAndMergesOnly) {
  EXPECT_TRUE(reshape_compatible({8, 8}, {8, 2, 4}));  // query kernel [H, H] -> [H, A, H/A]
  EXPECT_TRUE(reshape_compatible({8, 8}, {2, 4, 8}));  // output kernel [H, H] -> [A, H/A, H]
  EXPECT_TRUE(reshape_compatible({8}, {2, 4}));
  EXPECT_TRUE(reshape_compatible({2, 4}, {8}));
  EXPECT_TRUE(reshape_compatible({1, 8}, {8}));
  EXPECT_TRUE(reshape_compatible({}, {1}));
  EXPECT_TRUE(reshape_compatible({3, 4}, {3, 4}));
  EXPECT_FALSE(reshape_compatible({4, 16}, {16, 4}));  // a transposition
  EXPECT_FALSE(reshape_compatible({2, 6}, {3, 4}));
  EXPECT_FALSE(reshape_compatible({8, 8}, {8, 9}));
  EXPECT_FALSE(reshape_compatible({6, 4}, {4, 6}));
}

// ------------------------------------------------------------------ a synthetic TF1 checkpoint

class InitFromCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = dir_ / "model.ckpt";
    io::BundleWriter w(prefix_);
    w.add("a/w", aw_);
    w.add("a/b", ab_);
    w.add("b/w", bw_);
    w.add("a/w/adam_m", random_tensor(Shape({2, 3}), 4));
    w.add("a/w/adam_v", random_tensor(Shape({2, 3}), 5));
    w.add("global_step", make_typed<int64_t>(Shape({}), {42}));
    w.add("heads/q", q_);
    w.finish();
  }

  TempDir dir_;
  std::string prefix_;
  const Tensor aw_ = random_tensor(Shape({2, 3}), 1), ab_ = random_tensor(Shape({3}), 2),
               bw_ = random_tensor(Shape({3, 3}), 3), q_ = random_tensor(Shape({4, 4}), 6);
};

TEST_F(InitFromCheckpointTest, NamesToNames) {
  VariablePtr w = var("x/w", Shape({2, 3})), b = var("x/b", Shape({3})), other = var("y", Shape({2}));
  InitFromCheckpointReport r = init_from_checkpoint(
      prefix_, {{"a/w", "x/w", nullptr}, {"a/b", "x/b", nullptr}}, std::vector<VariablePtr>{w, b, other});
  EXPECT_TRUE(same_values(w->value(), aw_));
  EXPECT_TRUE(same_values(b->value(), ab_));
  EXPECT_EQ(r.checkpoint, prefix_);
  ASSERT_EQ(r.matched.size(), 2u);
  EXPECT_EQ(r.matched[0].checkpoint_name, "a/w");
  EXPECT_EQ(r.matched[0].checkpoint_key, "a/w");
  EXPECT_EQ(r.matched[0].variable_name, "x/w");
  EXPECT_EQ(r.matched[0].variable, w);
  EXPECT_EQ(r.matched[0].checkpoint_shape, (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(r.matched[0].reshaped);
  EXPECT_EQ(r.unmatched_checkpoint_names, (std::vector<std::string>{"b/w", "heads/q"}));
  EXPECT_EQ(r.skipped_checkpoint_names,
            (std::vector<std::string>{"a/w/adam_m", "a/w/adam_v", "global_step"}));
  EXPECT_EQ(r.unmatched_variables, (std::vector<std::string>{"y"}));
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.mismatched.empty());
  const std::string text = r.to_string();
  EXPECT_NE(text.find("a/w [2, 3] -> x/w"), std::string::npos) << text;
  EXPECT_NE(text.find("unmatched variables 1"), std::string::npos) << text;
}

TEST_F(InitFromCheckpointTest, ScopesAndTheRoot) {
  VariablePtr w = var("x/w", Shape({2, 3})), b = var("x/b", Shape({3})), c = var("y/w", Shape({3, 3}));
  // {"a/": "x/"}: each variable under x/ from a/ + the rest of its name.
  InitFromCheckpointReport r =
      init_from_checkpoint(prefix_, {{"a/", "x/", nullptr}}, std::vector<VariablePtr>{w, b, c});
  EXPECT_TRUE(same_values(w->value(), aw_));
  EXPECT_TRUE(same_values(b->value(), ab_));
  EXPECT_EQ(r.matched.size(), 2u);
  EXPECT_EQ(r.unmatched_variables, (std::vector<std::string>{"y/w"}));

  // {"/": "root/"}: the checkpoint's root under a variable scope; {"b/", "/"}: every variable.
  VariablePtr rw = var("root/b/w", Shape({3, 3}));
  r = init_from_checkpoint(prefix_, {{"/", "root/", nullptr}}, std::vector<VariablePtr>{rw});
  EXPECT_TRUE(same_values(rw->value(), bw_));
  VariablePtr plain = var("w", Shape({3, 3}));
  r = init_from_checkpoint(prefix_, {{"b/", "/", nullptr}}, std::vector<VariablePtr>{plain});
  EXPECT_TRUE(same_values(plain->value(), bw_));
  EXPECT_EQ(r.matched[0].checkpoint_name, "b/w");
}

TEST_F(InitFromCheckpointTest, VariablesGivenAsObjectsAndSharedValues) {
  // A variable given itself needs no list; one value may go to many variables (ALBERT's layers).
  VariablePtr v1 = var("layer_0/w", Shape({3, 3})), v2 = var("layer_1/w", Shape({3, 3})),
              v3 = var("v3", Shape({3, 3}));
  InitFromCheckpointReport r = init_from_checkpoint(
      prefix_, {{"b/w", "", v1}, {"b/w", "", v2}, {"b/w", "v3", nullptr}}, std::vector<VariablePtr>{v3});
  for (const VariablePtr &v : {v1, v2, v3}) EXPECT_TRUE(same_values(v->value(), bw_)) << v->name();
  EXPECT_EQ(r.matched.size(), 3u);
  EXPECT_TRUE(r.unmatched_variables.empty());
  EXPECT_FALSE(contains(r.unmatched_checkpoint_names, "b/w"));
}

TEST_F(InitFromCheckpointTest, TheLastEntryForAVariableWins) {
  VariablePtr w = var("x/w", Shape({3})), b = var("x/b", Shape({3}));
  // The scope sends a/w [2, 3] to x/w [3], which would not fit; the last entry replaces that
  // pair before anything is checked, as a later key of TF's dict would.
  InitFromCheckpointReport r =
      init_from_checkpoint(prefix_, {{"a/b", "x/w", nullptr}, {"a/", "x/", nullptr}, {"a/b", "x/w", nullptr}},
                           std::vector<VariablePtr>{w, b});
  EXPECT_TRUE(same_values(w->value(), ab_));
  EXPECT_TRUE(same_values(b->value(), ab_));
  ASSERT_EQ(r.matched.size(), 2u);
  EXPECT_EQ(r.matched[0].variable_name, "x/b");  // the scope's, kept
  EXPECT_EQ(r.matched[1].variable_name, "x/w");  // the last entry's
  EXPECT_TRUE(r.mismatched.empty());
}

TEST_F(InitFromCheckpointTest, OptimizerStateIsSkippedUnlessNamed) {
  VariablePtr step = var("step", Shape({}), DType::kInt64), m = var("opt/a/w/adam_m", Shape({2, 3}));
  // By name it is taken.
  InitFromCheckpointReport r =
      init_from_checkpoint(prefix_, {{"global_step", "step", nullptr}}, std::vector<VariablePtr>{step});
  EXPECT_EQ(step->value().data<int64_t>()[0], 42);
  EXPECT_FALSE(contains(r.skipped_checkpoint_names, "global_step"));
  // A scope does not take it...
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"/", "opt/", nullptr}}, std::vector<VariablePtr>{m});
      },
      Code::kNotFound, {"a/w/adam_m", "optimizer state", "skip_optimizer_state"});
  // ...unless skip_optimizer_state is off, when nothing is skipped.
  InitFromCheckpointOptions o;
  o.skip_optimizer_state = false;
  r = init_from_checkpoint(prefix_, {{"/", "opt/", nullptr}}, std::vector<VariablePtr>{m}, o);
  EXPECT_EQ(r.matched.size(), 1u);
  EXPECT_TRUE(r.skipped_checkpoint_names.empty());
  EXPECT_TRUE(contains(r.unmatched_checkpoint_names, "global_step"));
}

TEST_F(InitFromCheckpointTest, MissingNames) {
  VariablePtr w = var("x/w", Shape({2, 3})), z = var("x/z", Shape({3}));
  const Tensor before = w->value();
  // TensorFlow's rule: NotFound, and nothing assigned (x/w keeps its value).
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "x/w", nullptr}, {"a/nope", "x/z", nullptr}},
                             std::vector<VariablePtr>{w, z});
      },
      Code::kNotFound, {"a/nope", "x/z", prefix_});
  EXPECT_TRUE(same_values(w->value(), before));
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/", "x/", nullptr}}, std::vector<VariablePtr>{w, z});
      },
      Code::kNotFound, {"a/z", "x/z", "scope"});
  InitFromCheckpointOptions o;
  o.allow_missing = true;
  InitFromCheckpointReport r =
      init_from_checkpoint(prefix_, {{"a/", "x/", nullptr}}, std::vector<VariablePtr>{w, z}, o);
  EXPECT_TRUE(same_values(w->value(), aw_));
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].checkpoint_name, "a/z");
  EXPECT_EQ(r.missing[0].variable_name, "x/z");
  EXPECT_EQ(r.unmatched_variables, (std::vector<std::string>{"x/z"}));
  // A later entry that finds x/z a value replaces the missing one.
  r = init_from_checkpoint(prefix_, {{"a/", "x/", nullptr}, {"a/b", "x/z", nullptr}},
                           std::vector<VariablePtr>{w, z}, o);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(same_values(z->value(), ab_));
  EXPECT_TRUE(r.unmatched_variables.empty());
}

TEST_F(InitFromCheckpointTest, MismatchesNameBothSidesAndChangeNothing) {
  VariablePtr ok = var("x/b", Shape({3})), t = var("x/w", Shape({3, 2})),
              d = var("x/d", Shape({3}), DType::kFloat64);
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/b", "x/b", nullptr}, {"a/w", "x/w", nullptr}},
                             std::vector<VariablePtr>{ok, t});
      },
      Code::kInvalidArgument, {"'a/w'", "float32[2, 3]", "'x/w'", "float32[3, 2]", "nothing was assigned"});
  EXPECT_EQ(values(ok->value()), std::vector<float>(3, 0.0f));
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/b", "x/d", nullptr}}, std::vector<VariablePtr>{d});
      },
      Code::kInvalidArgument, {"'a/b'", "float32[3]", "'x/d'", "float64[3]", "dtypes differ"});
  // skip_mismatched: reported, the rest assigned.
  InitFromCheckpointOptions o;
  o.skip_mismatched = true;
  InitFromCheckpointReport r = init_from_checkpoint(
      prefix_, {{"a/b", "x/b", nullptr}, {"a/w", "x/w", nullptr}, {"a/b", "x/d", nullptr}},
      std::vector<VariablePtr>{ok, t, d}, o);
  EXPECT_TRUE(same_values(ok->value(), ab_));
  ASSERT_EQ(r.mismatched.size(), 2u);
  EXPECT_EQ(r.mismatched[0].checkpoint_name, "a/w");
  EXPECT_EQ(r.mismatched[0].variable_name, "x/w");
  EXPECT_EQ(r.mismatched[0].checkpoint_shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.mismatched[0].variable_shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(r.mismatched[1].variable_dtype, "float64");
  EXPECT_FALSE(contains(r.unmatched_checkpoint_names, "a/w"));  // reported as mismatched instead
  EXPECT_EQ(r.unmatched_variables, (std::vector<std::string>{"x/w", "x/d"}));
}

TEST_F(InitFromCheckpointTest, ReshapeOnlyWhenAskedAndOnlySplitsOrMerges) {
  VariablePtr q = var("mha/query/kernel", Shape({4, 2, 2})), t = var("t", Shape({2, 3}));
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"heads/q", "mha/query/kernel", nullptr}},
                             std::vector<VariablePtr>{q});
      },
      Code::kInvalidArgument, {"[4, 4]", "[4, 2, 2]", "shapes differ"});
  InitFromCheckpointOptions o;
  o.allow_reshape = true;
  InitFromCheckpointReport r = init_from_checkpoint(prefix_, {{"heads/q", "mha/query/kernel", nullptr}},
                                                    std::vector<VariablePtr>{q}, o);
  EXPECT_EQ(q->shape(), Shape({4, 2, 2}));
  EXPECT_EQ(values(q->value()), values(q_));  // the same row-major values
  EXPECT_TRUE(r.matched[0].reshaped);
  EXPECT_NE(r.to_string().find("(reshaped)"), std::string::npos);
  // [3, 3] into [2, 3]: other counts; a/w [2, 3] into [3, 2]: a transposition.
  VariablePtr tr = var("tr", Shape({3, 2}));
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "tr", nullptr}}, std::vector<VariablePtr>{tr}, o);
      },
      Code::kInvalidArgument, {"split or merge"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"b/w", "t", nullptr}}, std::vector<VariablePtr>{t}, o);
      },
      Code::kInvalidArgument, {"[3, 3]", "[2, 3]"});
}

TEST_F(InitFromCheckpointTest, BadMapsAndPaths) {
  VariablePtr w = var("x/w", Shape({2, 3})), w2 = var("x/w", Shape({2, 3}));
  const std::vector<VariablePtr> vs{w};
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/", "x/w", nullptr}}, vs);
      },
      Code::kInvalidArgument, {"'a/'", "'x/w'", "scope"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "x/", nullptr}}, vs);
      },
      Code::kInvalidArgument, {"scope"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"", "x/w", nullptr}}, vs);
      },
      Code::kInvalidArgument, {"empty checkpoint name"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "", nullptr}}, vs);
      },
      Code::kInvalidArgument, {"no variable"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "x/w", w}}, vs);
      },
      Code::kInvalidArgument, {"both"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "x/nope", nullptr}}, vs);
      },
      Code::kNotFound, {"'x/nope'", "1 variables"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/", "z/", nullptr}}, vs);
      },
      Code::kNotFound, {"'z/'"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "x/w", nullptr}}, std::vector<VariablePtr>{w, w2});
      },
      Code::kInvalidArgument, {"2 of the variables", "'x/w'"});
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/w", "x/w", nullptr}}, std::vector<VariablePtr>{nullptr});
      },
      Code::kInvalidArgument, {"null"});
  expect_error(
      [&] {
        init_from_checkpoint(dir_ / "absent.ckpt", {{"a/w", "x/w", nullptr}}, vs);
      },
      Code::kNotFound, {"absent.ckpt"});
  expect_error(
      [&] {
        init_from_checkpoint(dir_.path(), {{"a/w", "x/w", nullptr}}, vs);
      },
      Code::kNotFound, {});
  expect_error(
      [&] {
        init_from_checkpoint("", {{"a/w", "x/w", nullptr}}, vs);
      },
      Code::kInvalidArgument, {"empty"});
  // The same variable listed twice is one variable.
  InitFromCheckpointReport r =
      init_from_checkpoint(prefix_, {{"a/w", "x/w", nullptr}}, std::vector<VariablePtr>{w, w});
  EXPECT_EQ(r.matched.size(), 1u);
}

TEST_F(InitFromCheckpointTest, PathsNameTheCheckpointAsTheReaderDoes) {
  VariablePtr w = var("x/w", Shape({2, 3}));
  for (const std::string &path : {prefix_ + ".index", prefix_ + ".data-00000-of-00001"}) {
    InitFromCheckpointReport r =
        init_from_checkpoint(path, {{"a/w", "x/w", nullptr}}, std::vector<VariablePtr>{w});
    EXPECT_EQ(r.checkpoint, prefix_) << path;
  }
  io::CheckpointState state;
  state.model_checkpoint_path = "model.ckpt";
  state.all_model_checkpoint_paths = {"model.ckpt"};
  io::update_checkpoint_state(dir_.path(), state);
  InitFromCheckpointReport r =
      init_from_checkpoint(dir_.path(), {{"a/w", "x/w", nullptr}}, std::vector<VariablePtr>{w});
  EXPECT_EQ(r.checkpoint, prefix_);
}

TEST_F(InitFromCheckpointTest, CorruptValuesChangeNothing) {
  VariablePtr w = var("x/w", Shape({2, 3})), b = var("x/b", Shape({3}));
  // Damage the last tensor written (heads/q, at the end of the data file).
  const std::string data = prefix_ + ".data-00000-of-00001";
  std::string bytes = kiln::testing::slurp(data);
  bytes[bytes.size() - 2] ^= 0x55;
  kiln::testing::spit(data, bytes);
  VariablePtr q = var("q", Shape({4, 4}));
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/", "x/", nullptr}, {"heads/q", "q", nullptr}},
                             std::vector<VariablePtr>{w, b, q});
      },
      Code::kDataLoss, {"heads/q"});
  EXPECT_EQ(values(w->value()), std::vector<float>(6, 0.0f));
  EXPECT_EQ(values(b->value()), std::vector<float>(3, 0.0f));
}

TEST_F(InitFromCheckpointTest, IntoAModel) {
  Config c;
  c.set("units", 3).set("name", "dense_from_ckpt");
  layers::LayerPtr dense = layers::create_layer("Dense", c);
  expect_error(
      [&] {
        init_from_checkpoint(prefix_, {{"a/", "dense_from_ckpt/", nullptr}}, dense);
      },
      Code::kFailedPrecondition, {"dense_from_ckpt", "not built"});
  dense->build({{-1, 2}});
  // Dense names its weights kernel and bias: map them by name.
  InitFromCheckpointReport r = init_from_checkpoint(
      prefix_, {{"a/w", "dense_from_ckpt/kernel", nullptr}, {"a/b", "dense_from_ckpt/bias", nullptr}}, dense);
  EXPECT_EQ(r.matched.size(), 2u);
  const Tensor y = (*dense)(make(Shape({1, 2}), {1, 0}));
  const std::vector<float> w = values(aw_), b = values(ab_);
  kiln::testing::expect_near(y, {w[0] + b[0], w[1] + b[1], w[2] + b[2]});
}

// ------------------------------------------------------------------ TensorFlow's own files

TEST(InitFromCheckpointFixtureTest, KerasTf2ObjectBasedNames) {
  KILN_SKIP_WITHOUT_FIXTURE(kiln::testing::tf2_prefix());
  VariablePtr k0 = var("mlp/d0/kernel", Shape({784, 200})), b0 = var("mlp/d0/bias", Shape({200})),
              k1 = var("mlp/d1/kernel", Shape({200, 10})), b1 = var("mlp/d1/bias", Shape({10}));
  InitFromCheckpointReport r = init_from_checkpoint(
      kiln::testing::tf2_prefix(),
      {{"layer_with_weights-0/", "mlp/d0/", nullptr},
       {"layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE", "mlp/d1/kernel", nullptr},  // a key in full
       {"layer_with_weights-1/bias", "mlp/d1/bias", nullptr}},
      std::vector<VariablePtr>{k0, b0, k1, b1});
  ASSERT_EQ(r.matched.size(), 4u);
  EXPECT_EQ(r.matched[0].checkpoint_name, "layer_with_weights-0/kernel");
  EXPECT_EQ(r.matched[0].checkpoint_key, "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
  io::BundleReader reader(kiln::testing::tf2_prefix());
  EXPECT_TRUE(
      same_values(k0->value(), reader.read("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_TRUE(same_values(b1->value(), reader.read("layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_TRUE(r.unmatched_checkpoint_names.empty());
  // Keras 2.13's optimizer (iterations, learning rate, 8 slots) and the object graph.
  EXPECT_EQ(r.skipped_checkpoint_names.size(), 11u);
  EXPECT_TRUE(contains(r.skipped_checkpoint_names, "_CHECKPOINTABLE_OBJECT_GRAPH"));
  EXPECT_TRUE(contains(r.skipped_checkpoint_names, "optimizer/_iterations"));
}

// A store of variables named and shaped as a kiln layout names them, from (kiln name, shape).
std::vector<VariablePtr> store_of(const std::vector<std::pair<std::string, Shape>> &vars) {
  std::vector<VariablePtr> out;
  for (const auto &[name, shape] : vars) out.push_back(var(name, shape));
  return out;
}

// The kiln shape of a weight of examples/cpp/bert_tf1_init.cc's layer, from its kiln path.
Shape kiln_layer_shape(const std::string &path, int64_t h, int64_t a, int64_t i) {
  auto ends = [&](const std::string &tail) {
    return path.size() >= tail.size() && path.compare(path.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (ends("attention_output/kernel")) return Shape({a, h / a, h});
  if (ends("attention_output/bias")) return Shape({h});
  if (ends("/kernel") && path.find("/attention/") != std::string::npos) return Shape({h, a, h / a});
  if (ends("/bias") && path.find("/attention/") != std::string::npos) return Shape({a, h / a});
  if (ends("intermediate/kernel")) return Shape({h, i});
  if (ends("intermediate/bias")) return Shape({i});
  if (ends("output/kernel")) return Shape({i, h});
  return Shape({h});  // output/bias, layer norms
}

TEST(InitFromCheckpointFixtureTest, BertTf1NameMap) {
  KILN_SKIP_WITHOUT_FIXTURE(kiln::testing::bert_prefix());
  const int64_t h = 4, a = 4, inter = 16, layers_n = 2;
  const std::vector<bert_tf1::NamePair> names = bert_tf1::bert_tf1_name_map("bert_model", layers_n);
  ASSERT_EQ(names.size(), 39u);
  std::vector<std::pair<std::string, Shape>> shapes;
  for (const auto &[tf1, k] : names) {
    Shape s = kiln_layer_shape(k, h, a, inter);
    if (tf1 == "bert/embeddings/word_embeddings") s = Shape({15, h});
    if (tf1 == "bert/embeddings/token_type_embeddings") s = Shape({2, h});
    if (tf1 == "bert/embeddings/position_embeddings") s = Shape({16, h});
    if (tf1 == "bert/pooler/dense/kernel") s = Shape({h, h});
    shapes.emplace_back(k, s);
  }
  const std::vector<VariablePtr> store = store_of(shapes);
  std::vector<CheckpointAssignment> map;
  for (const auto &[tf1, k] : names) map.push_back({tf1, k, nullptr});
  InitFromCheckpointOptions o;
  o.allow_reshape = true;
  InitFromCheckpointReport r = init_from_checkpoint(kiln::testing::bert_prefix(), map, store, o);
  EXPECT_EQ(r.matched.size(), 39u);
  EXPECT_TRUE(r.unmatched_variables.empty());
  EXPECT_EQ(r.unmatched_checkpoint_names.size(), 7u);  // cls/*
  for (const std::string &n : r.unmatched_checkpoint_names) EXPECT_EQ(n.rfind("cls/", 0), 0u) << n;
  EXPECT_EQ(r.skipped_checkpoint_names.size(), 93u);  // 92 Adam slots and global_step
  EXPECT_EQ(r.matched.size() + r.unmatched_checkpoint_names.size() + r.skipped_checkpoint_names.size(), 139u);
  io::BundleReader reader(kiln::testing::bert_prefix());
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_TRUE(same_values(store[i]->value(), reader.read(names[i].first))) << names[i].first;
}

// ------------------------------------------------------------------ ALBERT, synthetic

// A tiny albert_config.json: vocab 30, embedding 6, hidden 8 in 2 heads, intermediate 12,
// 16 positions, 2 token types; written under google-research/albert's names with Adam slots and
// global_step, as its run_pretraining would.
struct TinyAlbert {
  int64_t vocab = 30, embedding = 6, hidden = 8, heads = 2, intermediate = 12, positions = 16, types = 2;
  int64_t layers_n, groups;
  std::map<std::string, Tensor> tensors;  // TF1 name -> value

  TinyAlbert(int64_t num_layers, int64_t num_groups) : layers_n(num_layers), groups(num_groups) {
    unsigned seed = 100;
    auto add = [&](const std::string &name, const Shape &s) { tensors[name] = random_tensor(s, seed++); };
    add("bert/embeddings/word_embeddings", Shape({vocab, embedding}));
    add("bert/embeddings/token_type_embeddings", Shape({types, embedding}));
    add("bert/embeddings/position_embeddings", Shape({positions, embedding}));
    add("bert/embeddings/LayerNorm/gamma", Shape({embedding}));
    add("bert/embeddings/LayerNorm/beta", Shape({embedding}));
    add("bert/encoder/embedding_hidden_mapping_in/kernel", Shape({embedding, hidden}));
    add("bert/encoder/embedding_hidden_mapping_in/bias", Shape({hidden}));
    for (int64_t g = 0; g < groups; ++g) {
      const std::string p = "bert/encoder/transformer/group_" + std::to_string(g) + "/inner_group_0/";
      for (const char *qkv : {"query", "key", "value"}) {
        add(p + "attention_1/self/" + qkv + "/kernel", Shape({hidden, hidden}));
        add(p + "attention_1/self/" + qkv + "/bias", Shape({hidden}));
      }
      add(p + "attention_1/output/dense/kernel", Shape({hidden, hidden}));
      add(p + "attention_1/output/dense/bias", Shape({hidden}));
      add(p + "LayerNorm/gamma", Shape({hidden}));
      add(p + "LayerNorm/beta", Shape({hidden}));
      add(p + "ffn_1/intermediate/dense/kernel", Shape({hidden, intermediate}));
      add(p + "ffn_1/intermediate/dense/bias", Shape({intermediate}));
      add(p + "ffn_1/intermediate/output/dense/kernel", Shape({intermediate, hidden}));
      add(p + "ffn_1/intermediate/output/dense/bias", Shape({hidden}));
      add(p + "LayerNorm_1/gamma", Shape({hidden}));
      add(p + "LayerNorm_1/beta", Shape({hidden}));
    }
    add("bert/pooler/dense/kernel", Shape({hidden, hidden}));
    add("bert/pooler/dense/bias", Shape({hidden}));
    add("cls/predictions/output_bias", Shape({vocab}));
  }

  void write(const std::string &prefix) const {
    io::BundleWriter w(prefix);
    for (const auto &[name, t] : tensors) {
      w.add(name, t);
      if (name.rfind("bert/", 0) == 0) {
        w.add(name + "/adam_m", ops::fill(t.shape(), 0.0, DType::kFloat32));
        w.add(name + "/adam_v", ops::fill(t.shape(), 0.0, DType::kFloat32));
      }
    }
    w.add("global_step", make_typed<int64_t>(Shape({}), {1000}));
    w.finish();
  }

  // The kiln model's variables (examples/cpp/bert_tf1_init.cc's layout with ALBERT's embeddings).
  std::vector<std::pair<std::string, Shape>> kiln_variables(
      const std::vector<bert_tf1::NamePair> &names) const {
    std::vector<std::pair<std::string, Shape>> out;
    for (const auto &[tf1, k] : names) {
      Shape s = kiln_layer_shape(k, hidden, heads, intermediate);
      if (k.find("/embeddings/") != std::string::npos) s = tensors.at(tf1).shape();  // [V, E], [E]
      if (k.find("embedding_hidden_mapping_in") != std::string::npos) s = tensors.at(tf1).shape();
      if (tf1 == "bert/pooler/dense/kernel") s = Shape({hidden, hidden});
      bool seen = false;
      for (const auto &o : out) seen = seen || o.first == k;
      if (!seen) out.emplace_back(k, s);
    }
    return out;
  }
};

void check_albert(int64_t num_layers, int64_t num_groups) {
  SCOPED_TRACE(::testing::Message() << num_layers << " layers in " << num_groups << " groups");
  TempDir dir;
  const TinyAlbert albert(num_layers, num_groups);
  albert.write(dir / "model.ckpt-best");
  const std::vector<bert_tf1::NamePair> names =
      bert_tf1::albert_tf1_name_map("albert", num_layers, num_groups);
  const std::vector<VariablePtr> store = store_of(albert.kiln_variables(names));
  std::map<std::string, VariablePtr> by_name;
  for (const VariablePtr &v : store) by_name[v->name()] = v;
  ASSERT_EQ(store.size(), names.size()) << "one kiln variable per pair";

  std::vector<CheckpointAssignment> map;
  for (const auto &[tf1, k] : names) map.push_back({tf1, k, nullptr});
  InitFromCheckpointOptions o;
  o.allow_reshape = true;
  const InitFromCheckpointReport r = init_from_checkpoint(dir / "model.ckpt-best", map, store, o);
  EXPECT_EQ(r.matched.size(), names.size());
  EXPECT_TRUE(r.unmatched_variables.empty());
  EXPECT_EQ(r.unmatched_checkpoint_names, (std::vector<std::string>{"cls/predictions/output_bias"}));
  EXPECT_EQ(r.skipped_checkpoint_names.size(), 2 * (albert.tensors.size() - 1) + 1);  // slots + global_step

  // Every shared weight reaches every layer that shares it, in the row-major order of its
  // [H, H] (or [H]) checkpoint tensor, and every group's weights are used.
  std::map<std::string, int> uses;
  for (const auto &[tf1, k] : names) {
    EXPECT_EQ(values(by_name.at(k)->value()), values(albert.tensors.at(tf1))) << tf1 << " -> " << k;
    ++uses[tf1];
  }
  for (const auto &[tf1, t] : albert.tensors) {
    if (tf1.rfind("cls/", 0) == 0) continue;
    const bool shared = tf1.find("/transformer/group_") != std::string::npos;
    EXPECT_EQ(uses[tf1], shared ? num_layers / num_groups : 1) << tf1;
  }
  for (int64_t layer = 0; layer < num_layers; ++layer) {
    const int64_t g = bert_tf1::albert_group_of_layer(layer, num_layers, num_groups);
    const std::string k = "albert/encoder/layer_" + std::to_string(layer) + "/attention/query/kernel";
    EXPECT_EQ(by_name.at(k)->shape(), Shape({8, 2, 4}));
    EXPECT_EQ(values(by_name.at(k)->value()),
              values(albert.tensors.at("bert/encoder/transformer/group_" + std::to_string(g) +
                                       "/inner_group_0/attention_1/self/query/kernel")));
  }
}

TEST(InitFromCheckpointAlbertTest, OneSharedGroupReachesEveryLayer) { check_albert(4, 1); }
TEST(InitFromCheckpointAlbertTest, TwoGroupsEachReachTheirLayers) { check_albert(4, 2); }

TEST(InitFromCheckpointAlbertTest, NoHiddenMappingWhenEmbeddingIsHidden) {
  const std::vector<bert_tf1::NamePair> with = bert_tf1::albert_tf1_name_map("m", 2, 1, true),
                                        without = bert_tf1::albert_tf1_name_map("m", 2, 1, false);
  EXPECT_EQ(with.size(), without.size() + 2);
  for (const auto &p : without) EXPECT_EQ(p.first.find("embedding_hidden_mapping_in"), std::string::npos);
  EXPECT_EQ(bert_tf1::albert_group_of_layer(5, 12, 1), 0);
  EXPECT_EQ(bert_tf1::albert_group_of_layer(5, 12, 2), 0);
  EXPECT_EQ(bert_tf1::albert_group_of_layer(6, 12, 2), 1);
  EXPECT_EQ(bert_tf1::albert_group_of_layer(11, 12, 3), 2);
}

// ------------------------------------------------------------------ the attention reshape

// The maps pour TF1's [H, H] attention kernels into MultiHeadAttention's [H, A, H/A] and
// [A, H/A, H] unchanged. With 2 heads of 4 dims, kiln's layer must then compute what
// google-research/bert's attention_layer computes from the [H, H] kernels: heads taken from
// consecutive blocks of H/A columns (transpose_for_scores), their contexts concatenated in
// head order before the output dense.
TEST(InitFromCheckpointAttentionTest, Tf1KernelsInMultiHeadAttention) {
  layers::clear_session();
  const int64_t h = 8, a = 2, d = 4, b = 2, s = 5;
  TempDir dir;
  std::map<std::string, Tensor> w;
  unsigned seed = 7;
  for (const char *p : {"query", "key", "value"}) {
    w[std::string("self/") + p + "/kernel"] = random_tensor(Shape({h, h}), seed++);
    w[std::string("self/") + p + "/bias"] = random_tensor(Shape({h}), seed++);
  }
  w["output/dense/kernel"] = random_tensor(Shape({h, h}), seed++);
  w["output/dense/bias"] = random_tensor(Shape({h}), seed++);
  {
    io::BundleWriter writer(dir / "attention.ckpt");
    for (const auto &[name, t] : w) writer.add("attention/" + name, t);
    writer.finish();
  }
  Config c;
  c.set("num_heads", a).set("key_dim", d).set("name", "mha");
  layers::LayerPtr mha = layers::create_layer("MultiHeadAttention", c);
  const Tensor x = random_tensor(Shape({b, s, h}), 99);
  (*mha)({x, x});  // builds it
  InitFromCheckpointOptions o;
  o.allow_reshape = true;
  const InitFromCheckpointReport r =
      init_from_checkpoint(dir / "attention.ckpt",
                           {{"attention/self/query/", "mha/query/", nullptr},
                            {"attention/self/key/", "mha/key/", nullptr},
                            {"attention/self/value/", "mha/value/", nullptr},
                            {"attention/output/dense/", "mha/attention_output/", nullptr}},
                           mha, o);
  ASSERT_EQ(r.matched.size(), 8u) << r.to_string();
  EXPECT_TRUE(r.unmatched_variables.empty());

  // modeling.py's attention_layer on the [H, H] kernels.
  const Tensor x2 = ops::reshape(x, {b * s, h});
  auto linear = [&](const Tensor &in, const std::string &scope) {
    return ops::add(ops::matmul(in, w.at(scope + "/kernel")), w.at(scope + "/bias"));
  };
  auto heads = [&](const Tensor &t) { return ops::transpose(ops::reshape(t, {b, s, a, d}), {0, 2, 1, 3}); };
  const Tensor q = heads(linear(x2, "self/query")), k = heads(linear(x2, "self/key")),
               v = heads(linear(x2, "self/value"));
  const Tensor scale = ops::fill(Shape({}), 1.0 / std::sqrt(static_cast<double>(d)), DType::kFloat32);
  const Tensor probs = ops::softmax(ops::mul(ops::matmul(q, k, false, true), scale));
  const Tensor context = ops::reshape(ops::transpose(ops::matmul(probs, v), {0, 2, 1, 3}), {b * s, h});
  const Tensor want = ops::reshape(linear(context, "output/dense"), {b, s, h});
  kiln::testing::expect_near((*mha)({x, x})[0], values(want), 1e-5f);
}

}  // namespace
}  // namespace kiln::train
