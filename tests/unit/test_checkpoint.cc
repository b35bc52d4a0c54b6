// Object-based checkpoints (src/train/checkpoint.h): the keys, dtypes, shapes and object graph
// kiln writes for a Keras MLP and its Adam state are those of a real Keras 2.13 checkpoint; that
// checkpoint loads into the kiln model (slots when the optimizer makes them); a save / restore
// resumes training bit for bit; errors name what was wrong and change nothing; save numbers its
// checkpoints and keeps the `checkpoint` state file.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"
#include "layers/layer.h"
#include "layers/sequential.h"
#include "model_test_util.h"
#include "test_util.h"
#include "trackable_object_graph.pb.h"
#include "train/checkpoint.h"
#include "train/model_training.h"

namespace kiln::train {
namespace {

using layers::LayerPtr;
using testing::dense_config;
using testing::expect_error;
using testing::make;
using testing::make_typed;
using testing::sequential_of;
using testing::serialized_layer;

const std::string kFixture =
    testing::source_dir() + "/../shared/fixtures/tf2_checkpoint/keras_embedding.ckpt-0";
const std::string kBertFixture = testing::source_dir() + "/../shared/fixtures/tf1_bert_tiny/bert_model.ckpt";

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

#define SKIP_WITHOUT(prefix)                   \
  if (!exists(std::string(prefix) + ".index")) \
  GTEST_SKIP() << "fixture " << (prefix) << " is absent (../shared/fixtures is not in this checkout)"

// Directories made by the tests, removed when the test program ends.
class TempDirs : public ::testing::Environment {
 public:
  static std::vector<std::string> &dirs() {
    static std::vector<std::string> d;
    return d;
  }
  void TearDown() override {
    for (const std::string &d : dirs()) std::filesystem::remove_all(d);
  }
};
::testing::Environment *const temp_dirs = ::testing::AddGlobalTestEnvironment(new TempDirs);

std::string fresh_dir() {
  char tmpl[] = "/tmp/kiln_checkpoint_test_XXXXXX";
  const char *d = mkdtemp(tmpl);
  if (!d) ADD_FAILURE() << "mkdtemp failed";
  TempDirs::dirs().push_back(d ? d : "");
  return std::string(d ? d : "/tmp");
}

// The fixture's model: Keras Sequential [Flatten, Dense(200), Dropout, Dense(10)] on 784 inputs
// (layer-0 and layer-2 have no weights; kernels [784, 200] and [200, 10]).
LayerPtr fixture_model() {
  Config drop;
  drop.set("rate", 0.2);
  return sequential_of(
      {serialized_layer("Flatten"), serialized_layer("Dense", dense_config(200, "relu")),
       serialized_layer("Dropout", drop), serialized_layer("Dense", dense_config(10, "softmax"))},
      {-1, 28, 28});
}

// A small model for training round trips: no dropout (its mask would need the RNG state), a
// BatchNormalization for non-trainable state.
LayerPtr small_model() {
  return sequential_of(
      {serialized_layer("Dense", dense_config(8, "relu")), serialized_layer("BatchNormalization"),
       serialized_layer("Dense", dense_config(3, "softmax"))},
      {-1, 5});
}

OptimizerPtr adam(double lr = 0.001) {
  Config c;
  c.set("learning_rate", lr);
  return make_optimizer("Adam", c);
}

void compile_with(const LayerPtr &m, const OptimizerPtr &opt) {
  CompileOptions c;
  c.optimizer = opt;
  c.loss_names = {"sparse_categorical_crossentropy"};
  compile(m, c);
}

struct Batch {
  Tensor x, y;
};

Batch batch(const Shape &x_shape, int64_t classes, unsigned seed) {
  Batch b;
  b.x = testing::random_tensor(x_shape, seed);
  std::vector<int64_t> y;
  for (int64_t i = 0; i < x_shape[0]; ++i) y.push_back((i * 7 + seed) % classes);
  b.y = make_typed<int64_t>(Shape{x_shape[0]}, y);
  return b;
}

void train_steps(const LayerPtr &m, int64_t from, int64_t steps) {
  for (int64_t s = from; s < from + steps; ++s) {
    const Batch b = batch(Shape{6, 5}, 3, static_cast<unsigned>(s + 1));
    train_on_batch(m, {b.x}, {b.y});
  }
}

using testing::same_bits;

void copy_weights(const LayerPtr &from, const LayerPtr &to) {
  const auto src = from->variables(), dst = to->variables();
  ASSERT_EQ(src.size(), dst.size());
  for (size_t i = 0; i < src.size(); ++i) dst[i]->assign(src[i]->peek());
}

tfproto::TrackableObjectGraph object_graph(const io::BundleReader &r) {
  tfproto::TrackableObjectGraph g;
  EXPECT_TRUE(g.ParseFromString(r.read_strings("_CHECKPOINTABLE_OBJECT_GRAPH").at(0)));
  return g;
}

// Per node path (breadth first, as keys are made): its edge names, attributes and whether it has
// values — the shape of the graph, independent of node numbering. Edges named in `skip` (Keras's
// traced functions, which kiln has none of) are left out.
std::map<std::string, std::string> graph_summary(const tfproto::TrackableObjectGraph &g,
                                                 const std::set<std::string> &skip) {
  std::map<int, std::string> path{{0, ""}};
  std::vector<int> queue{0};
  for (size_t q = 0; q < queue.size(); ++q) {
    for (const auto &c : g.nodes(queue[q]).children()) {
      if (skip.count(c.local_name()) || path.count(c.node_id())) continue;
      path[c.node_id()] = path[queue[q]] + "/" + c.local_name();
      queue.push_back(c.node_id());
    }
  }
  std::map<std::string, std::string> out;
  for (const auto &p : path) {
    const auto &node = g.nodes(p.first);
    std::ostringstream s;
    s << "children:";
    for (const auto &c : node.children())
      if (!skip.count(c.local_name())) s << " " << c.local_name() << "->" << path.at(c.node_id());
    s << " attributes:";
    for (const auto &a : node.attributes()) s << " " << a.name() << "@" << a.checkpoint_key();
    s << " has_values:"
      << (node.has_has_checkpoint_values() ? (node.has_checkpoint_values().value() ? "1" : "0") : "unset");
    out[p.second] = s.str();
  }
  return out;
}

// ------------------------------------------------------------------ (a) the Keras layout

TEST(CheckpointKeras, SaveWeightsMatchesKerasKeysDtypesShapesAndGraph) {
  SKIP_WITHOUT(kFixture);
  const LayerPtr m = fixture_model();
  const OptimizerPtr opt = adam();
  compile_with(m, opt);
  const Batch b = batch(Shape{4, 28, 28}, 10, 1);
  train_on_batch(m, {b.x}, {b.y});  // makes the slots

  const std::string prefix = fresh_dir() + "/weights";
  save_weights(m, prefix);
  io::BundleReader ours(prefix), keras(kFixture);
  ASSERT_EQ(ours.entries().size(), keras.entries().size());
  for (size_t i = 0; i < keras.entries().size(); ++i) {
    const io::BundleEntry &k = keras.entries()[i], &o = ours.entries()[i];
    EXPECT_EQ(o.key, k.key);
    EXPECT_EQ(o.dtype, k.dtype) << k.key;
    EXPECT_EQ(o.shape, k.shape) << k.key;
  }
  // The object graphs have the same nodes, edges, attributes and has_checkpoint_values, but for
  // Keras's traced functions.
  const std::set<std::string> functions{"train_tf_function", "train_function", "test_function"};
  const auto want = graph_summary(object_graph(keras), functions);
  const auto got = graph_summary(object_graph(ours), functions);
  EXPECT_EQ(got.size(), want.size());
  for (const auto &w : want) {
    auto it = got.find(w.first);
    if (it == got.end()) {
      ADD_FAILURE() << "kiln's graph lacks node '" << w.first << "'";
      continue;
    }
    EXPECT_EQ(it->second, w.second) << "node '" << w.first << "'";
  }
  EXPECT_EQ(object_graph(ours).nodes_size() + 2, object_graph(keras).nodes_size());  // 2 function nodes
  // save_weights records the file as Keras does.
  EXPECT_EQ(io::latest_checkpoint(io::dir_name(prefix)), prefix);
}

// ------------------------------------------------------------------ (b) loading Keras's values

TEST(CheckpointKeras, LoadWeightsFromKerasRestoresWeightsIterationsAndMoments) {
  SKIP_WITHOUT(kFixture);
  const LayerPtr m = fixture_model();
  const OptimizerPtr opt = adam(0.5);
  compile_with(m, opt);
  LoadStatus status = load_weights(m, kFixture);
  io::BundleReader keras(kFixture);

  const auto vars = m->trainable_variables();
  ASSERT_EQ(vars.size(), 4u);
  EXPECT_TRUE(
      same_bits(vars[0]->peek(), keras.read("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_TRUE(same_bits(vars[1]->peek(), keras.read("layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_TRUE(same_bits(vars[3]->peek(), keras.read("layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_EQ(opt->iterations(), 1500);
  const float lr = keras.read("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE").data<float>()[0];
  EXPECT_EQ(opt->learning_rate(), static_cast<double>(lr));

  // The moments wait for the slots (TF defers them too): not consumed yet.
  EXPECT_EQ(status.pending_values().size(), 8u);
  EXPECT_EQ(opt->pending_slot_restores(), 8u);
  expect_error([&] { status.assert_consumed(); }, Code::kFailedPrecondition,
               {"optimizer/_variables/1", "not made yet"});
  status.assert_existing_objects_matched();

  opt->build(vars);  // Keras's optimizer.build: the slots are made and take the saved moments
  EXPECT_EQ(opt->pending_slot_restores(), 0u);
  EXPECT_TRUE(status.pending_values().empty());
  status.assert_consumed();
  EXPECT_TRUE(same_bits(opt->slot(vars[0]->id(), "m")->peek(),
                        keras.read("optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_TRUE(same_bits(opt->slot(vars[0]->id(), "v")->peek(),
                        keras.read("optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_TRUE(same_bits(opt->slot(vars[3]->id(), "velocity")->peek(),
                        keras.read("optimizer/_variables/8/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_EQ(status.restored_count(), 14);  // 4 weights, iterations, learning rate, 8 moments
}

TEST(CheckpointKeras, DeferredMomentsLandAtTheFirstStep) {
  SKIP_WITHOUT(kFixture);
  const LayerPtr m = fixture_model();
  const OptimizerPtr opt = adam();
  compile_with(m, opt);
  LoadStatus status = load_weights(m, kFixture);
  const Batch b = batch(Shape{4, 28, 28}, 10, 2);
  train_on_batch(m, {b.x}, {b.y});
  status.assert_consumed();
  EXPECT_EQ(opt->iterations(), 1501);
  // m = beta_1 * m_saved + (1 - beta_1) * g: a saved moment far from 0 stays far from 0.
  io::BundleReader keras(kFixture);
  const Tensor saved = keras.read("optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE");  // v of kernel 0
  const Tensor now = opt->slot(m->trainable_variables()[0]->id(), "velocity")->peek();
  double saved_sum = 0, now_sum = 0;
  for (int64_t i = 0; i < saved.num_elements(); ++i) {
    saved_sum += saved.data<float>()[i];
    now_sum += now.data<float>()[i];
  }
  EXPECT_GT(saved_sum, 0);
  EXPECT_GT(now_sum, 0.5 * saved_sum);
}

// ------------------------------------------------------------------ (c) resume bit for bit

TEST(CheckpointRoundTrip, ResumedTrainingIsBitIdenticalToUninterrupted) {
  const int64_t kN = 3, kM = 2;
  const LayerPtr a = small_model(), c = small_model();
  copy_weights(a, c);
  const OptimizerPtr opt_a = adam(0.01), opt_c = adam(0.01);
  compile_with(a, opt_a);
  compile_with(c, opt_c);
  train_steps(a, 0, kN);
  const std::string dir = fresh_dir();
  Checkpoint ckpt_a({{"model", make_trackable(a)}, {"optimizer", make_trackable(opt_a)}});
  const std::string path = ckpt_a.save(dir + "/ckpt");
  EXPECT_EQ(path, dir + "/ckpt-1");

  // A fresh process: other initial weights, a fresh optimizer without slots.
  const LayerPtr b = small_model();
  const OptimizerPtr opt_b = adam(0.01);
  compile_with(b, opt_b);
  Checkpoint ckpt_b({{"model", make_trackable(b)}, {"optimizer", make_trackable(opt_b)}});
  LoadStatus status = ckpt_b.restore(dir);  // the directory's latest checkpoint
  EXPECT_EQ(ckpt_b.save_counter(), 1);
  EXPECT_EQ(opt_b->iterations(), kN);
  status.assert_existing_objects_matched();
  train_steps(b, kN, kM);
  status.assert_consumed();

  train_steps(c, 0, kN + kM);
  const auto vb = b->variables(), vc = c->variables();
  ASSERT_EQ(vb.size(), vc.size());
  for (size_t i = 0; i < vb.size(); ++i)
    EXPECT_TRUE(same_bits(vb[i]->peek(), vc[i]->peek())) << vc[i]->name();
  const auto ob = opt_b->variables(), oc = opt_c->variables();
  ASSERT_EQ(ob.size(), oc.size());
  for (size_t i = 0; i < ob.size(); ++i)
    EXPECT_TRUE(same_bits(ob[i]->peek(), oc[i]->peek())) << oc[i]->name();
  EXPECT_EQ(opt_b->iterations(), kN + kM);
}

// Each built-in optimizer resumes bit for bit, its slots restored through Keras's lists (the
// `_variables` order of classes with several build loops depends on the variable count).
void expect_optimizer_resumes(const std::string &cls, Config cfg) {
  SCOPED_TRACE(cls);
  const int64_t kN = 2, kM = 2;
  cfg.set("learning_rate", 0.01);
  const LayerPtr a = small_model(), c = small_model(), b = small_model();
  copy_weights(a, c);
  const OptimizerPtr opt_a = make_optimizer(cls, cfg), opt_b = make_optimizer(cls, cfg),
                     opt_c = make_optimizer(cls, cfg);
  compile_with(a, opt_a);
  compile_with(b, opt_b);
  compile_with(c, opt_c);
  train_steps(a, 0, kN);
  const std::string dir = fresh_dir();
  save_weights(a, dir + "/w");
  LoadStatus status = load_weights(b, dir);
  train_steps(b, kN, kM);
  status.assert_consumed();
  train_steps(c, 0, kN + kM);
  const auto vb = b->variables(), vc = c->variables();
  for (size_t i = 0; i < vb.size(); ++i)
    EXPECT_TRUE(same_bits(vb[i]->peek(), vc[i]->peek())) << vc[i]->name();
  const auto ob = opt_b->variables(), oc = opt_c->variables();
  ASSERT_EQ(ob.size(), oc.size());
  for (size_t i = 0; i < ob.size(); ++i)
    EXPECT_TRUE(same_bits(ob[i]->peek(), oc[i]->peek())) << oc[i]->name();
}

TEST(CheckpointRoundTrip, EveryBuiltInOptimizerResumesBitForBit) {
  Config sgd, rms, ams, none;
  sgd.set("momentum", 0.9).set("nesterov", true);
  rms.set("momentum", 0.5).set("centered", true);
  ams.set("amsgrad", true);
  expect_optimizer_resumes("SGD", sgd);
  expect_optimizer_resumes("SGD", none);
  expect_optimizer_resumes("RMSprop", rms);
  expect_optimizer_resumes("Adam", ams);
  expect_optimizer_resumes("AdamW", none);
  expect_optimizer_resumes("Nadam", none);
  expect_optimizer_resumes("Adagrad", none);
  expect_optimizer_resumes("Adadelta", none);
  expect_optimizer_resumes("Adamax", none);
  expect_optimizer_resumes("Lion", none);
  Config ftrl;
  ftrl.set("l1_regularization_strength", 0.01)
      .set("l2_shrinkage_regularization_strength", 0.1)
      .set("beta", 0.5);
  expect_optimizer_resumes("Ftrl", ftrl);
  expect_optimizer_resumes("Lamb", Config().set("weight_decay", 0.01));
  expect_optimizer_resumes("Adafactor", Config().set("weight_decay", 0.01));
}

// Keras's Adafactor keeps the lists `_r`, `_c` and `_v`, one entry per variable, a variable of rank
// < 2 holding int32 placeholders in `_r` and `_c`; `_variables` lists r, c, velocity of each matrix
// and velocity alone of each vector, in one build loop.
TEST(CheckpointRoundTrip, AdafactorUsesKerasListsAndLeavesPlaceholdersOutOfVariables) {
  const LayerPtr m = small_model();
  const OptimizerPtr opt = make_optimizer("Adafactor", Config());
  compile_with(m, opt);
  train_steps(m, 0, 1);
  const std::string prefix = fresh_dir() + "/a";
  save_weights(m, prefix);
  io::BundleReader r(prefix);
  const auto vars = m->trainable_variables();  // kernel [5, 8], bias, gamma, beta, kernel [8, 3], bias
  ASSERT_EQ(vars.size(), 6u);
  auto key = [](const std::string &edge) { return "optimizer/" + edge + "/.ATTRIBUTES/VARIABLE_VALUE"; };
  EXPECT_TRUE(same_bits(r.read(key("_variables/1")), opt->slot(vars[0]->id(), "r")->peek()));
  EXPECT_EQ(r.read(key("_variables/1")).shape(), Shape({5}));
  EXPECT_TRUE(same_bits(r.read(key("_variables/2")), opt->slot(vars[0]->id(), "c")->peek()));
  EXPECT_EQ(r.read(key("_variables/2")).shape(), Shape({8}));
  EXPECT_TRUE(same_bits(r.read(key("_variables/3")), opt->slot(vars[0]->id(), "velocity")->peek()));
  EXPECT_TRUE(same_bits(r.read(key("_variables/4")), opt->slot(vars[1]->id(), "velocity")->peek()));
  EXPECT_TRUE(same_bits(r.read(key("_variables/7")), opt->slot(vars[4]->id(), "r")->peek()));
  EXPECT_TRUE(same_bits(r.read(key("_variables/10")), opt->slot(vars[5]->id(), "velocity")->peek()));
  EXPECT_FALSE(r.contains(key("_variables/11")));
  // A slot is saved once, under its first path (`_variables/N`); only placeholders go by `_r/i`.
  EXPECT_FALSE(r.contains(key("_r/0")));
  const Tensor placeholder = r.read(key("_r/1"));
  EXPECT_EQ(placeholder.dtype(), DType::kInt32);
  EXPECT_EQ(placeholder.shape(), Shape{});
  EXPECT_EQ(r.read(key("_c/3")).dtype(), DType::kInt32);
}

TEST(CheckpointRoundTrip, MultiLoopOptimizersUseKerasVariablesOrder) {
  const LayerPtr m = small_model();
  Config rms;
  rms.set("momentum", 0.5).set("centered", true);
  const OptimizerPtr opt = make_optimizer("RMSprop", rms);
  compile_with(m, opt);
  train_steps(m, 0, 1);
  const std::string prefix = fresh_dir() + "/r";
  save_weights(m, prefix);
  io::BundleReader r(prefix);
  const auto vars =
      m->trainable_variables();  // 6: Keras's _variables = 6 velocities, 6 momentums, 6 averages
  ASSERT_EQ(vars.size(), 6u);
  auto key = [](int n) {
    return "optimizer/_variables/" + std::to_string(n) + "/.ATTRIBUTES/VARIABLE_VALUE";
  };
  EXPECT_TRUE(same_bits(r.read(key(2)), opt->slot(vars[1]->id(), "velocity")->peek()));
  EXPECT_TRUE(same_bits(r.read(key(7)), opt->slot(vars[0]->id(), "momentum")->peek()));
  EXPECT_TRUE(same_bits(r.read(key(18)), opt->slot(vars[5]->id(), "average_gradient")->peek()));
  EXPECT_FALSE(r.contains(key(19)));
}

// Restoring into an optimizer whose slots exist assigns them at once (rewinding training).
TEST(CheckpointRoundTrip, RestoreIntoExistingSlotsRewindsTraining) {
  Config adam_cfg, rms;
  rms.set("momentum", 0.5).set("centered", true);
  for (const auto &oc : std::vector<std::pair<std::string, Config>>{{"Adam", adam_cfg}, {"RMSprop", rms}}) {
    SCOPED_TRACE(oc.first);
    const LayerPtr m = small_model();
    const OptimizerPtr opt = make_optimizer(oc.first, oc.second);
    compile_with(m, opt);
    train_steps(m, 0, 2);
    std::vector<Tensor> weights, state;
    for (const auto &v : m->variables()) weights.push_back(v->peek());
    for (const auto &v : opt->variables()) state.push_back(v->peek());
    const std::string prefix = fresh_dir() + "/rewind";
    save_weights(m, prefix);
    train_steps(m, 2, 3);
    load_weights(m, prefix).assert_consumed();
    EXPECT_EQ(opt->pending_slot_restores(), 0u);
    const auto vars = m->variables(), ovars = opt->variables();
    for (size_t i = 0; i < vars.size(); ++i)
      EXPECT_TRUE(same_bits(vars[i]->peek(), weights[i])) << vars[i]->name();
    ASSERT_EQ(ovars.size(), state.size());
    for (size_t i = 0; i < ovars.size(); ++i)
      EXPECT_TRUE(same_bits(ovars[i]->peek(), state[i])) << ovars[i]->name();
  }
}

TEST(CheckpointRoundTrip, MultiHeadAttentionUsesKerasAttributeNames) {
  Config c;
  c.set("num_heads", 2).set("key_dim", 4);
  const LayerPtr mha = layers::create_layer("MultiHeadAttention", c);
  mha->build({{-1, 3, 8}, {-1, 3, 8}});
  const std::string prefix = fresh_dir() + "/mha";
  Checkpoint({{"mha", make_trackable(mha)}}).write(prefix);
  io::BundleReader r(prefix);
  for (const char *k : {"mha/_query_dense/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                        "mha/_key_dense/bias/.ATTRIBUTES/VARIABLE_VALUE",
                        "mha/_value_dense/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                        "mha/_output_dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"})
    EXPECT_TRUE(r.contains(k)) << k;
  EXPECT_EQ(r.entry("mha/_query_dense/kernel/.ATTRIBUTES/VARIABLE_VALUE").shape,
            (std::vector<int64_t>{8, 2, 4}));
}

// A subclassed layer keeping its sub-layers in attributes, as Keras's
// `self.d1 = Dense(3); self.blocks = [Dense(3), Dense(3)]`, plus one tracked without an
// attribute; `named` false tracks all four by position (kiln before attribute names).
class Attrs final : public layers::Layer {
 public:
  explicit Attrs(bool named) : Attrs(ConfigReader(empty_config(), "Attrs"), named) {}

 private:
  static const Config &empty_config() {
    static const Config empty;
    return empty;
  }
  Attrs(ConfigReader &&r, bool named) : Layer("Attrs", r) {
    r.finish();
    for (auto &l : subs_) l = layers::create_layer("Dense", dense_config(3));
    track(subs_[0], named ? "d1" : "");
    track(subs_[1], named ? "blocks/0" : "");
    track(subs_[2], named ? "blocks/1" : "");
    track(subs_[3]);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const layers::CallContext &ctx) override {
    std::vector<Tensor> x = inputs;
    for (const LayerPtr &l : subs_) x = l->call(x, ctx).outputs;
    return x;
  }
  LayerPtr subs_[4];
};

TEST(CheckpointRoundTrip, SubLayersInAttributesGoByTheAttributeAsKeras) {
  const auto saved = std::make_shared<Attrs>(true);
  saved->call({testing::random_tensor(Shape{2, 4}, 1)});
  const std::string prefix = fresh_dir() + "/attrs";
  Checkpoint({{"m", make_trackable(saved)}}).write(prefix);
  io::BundleReader r(prefix);
  std::set<std::string> keys;
  for (const auto &e : r.entries()) keys.insert(e.key);
  for (const char *k :
       {"m/d1/kernel/.ATTRIBUTES/VARIABLE_VALUE", "m/blocks/0/kernel/.ATTRIBUTES/VARIABLE_VALUE",
        "m/blocks/1/bias/.ATTRIBUTES/VARIABLE_VALUE",
        // the sub-layer without an attribute keeps its position among all four
        "m/layer_with_weights-3/kernel/.ATTRIBUTES/VARIABLE_VALUE"})
    EXPECT_TRUE(keys.count(k)) << k;
  EXPECT_FALSE(keys.count("m/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_FALSE(keys.count("m/layer-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  // The list is a node of its own with edges "0" and "1" (Keras's ListWrapper), and no values.
  const auto summary = graph_summary(object_graph(r), {});
  EXPECT_EQ(summary.at("/m/blocks"), "children: 0->/m/blocks/0 1->/m/blocks/1 attributes: has_values:1");

  // Into a new model, named the same way: every value, nothing left over.
  const auto named = std::make_shared<Attrs>(true);
  named->call({testing::random_tensor(Shape{2, 4}, 1)});
  Checkpoint({{"m", make_trackable(named)}}).read(prefix).assert_consumed();
  const auto a = saved->variables(), b = named->variables();
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same_bits(a[i]->peek(), b[i]->peek())) << a[i]->name();

  // A checkpoint of kiln before attribute names (every sub-layer by position) still restores.
  const auto positional = std::make_shared<Attrs>(false);
  positional->call({testing::random_tensor(Shape{2, 4}, 1)});
  const std::string old_prefix = fresh_dir() + "/old";
  Checkpoint({{"m", make_trackable(positional)}}).write(old_prefix);
  EXPECT_TRUE(
      io::BundleReader(old_prefix).contains("m/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  Checkpoint({{"m", make_trackable(named)}}).read(old_prefix).assert_consumed();
  const auto c = positional->variables();
  for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(same_bits(c[i]->peek(), b[i]->peek())) << c[i]->name();

  // The same through save_weights / load_weights, whose root is the model itself.
  const auto fresh = std::make_shared<Attrs>(true);
  fresh->call({testing::random_tensor(Shape{2, 4}, 2)});
  const std::string weights = fresh_dir() + "/w";
  save_weights(positional, weights);
  load_weights(fresh, weights).assert_consumed();
  const auto d = fresh->variables();
  for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(same_bits(c[i]->peek(), d[i]->peek())) << c[i]->name();
}

TEST(CheckpointRoundTrip, AnAttributeGivenAgainNamesItsNewLayer) {
  const LayerPtr owner = layers::create_layer("Dense", dense_config(3));
  const LayerPtr x = layers::create_layer("Dense", dense_config(3)),
                 y = layers::create_layer("Dense", dense_config(3));
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto &a : owner->tracked_attributes())
      out.push_back(a.first + "=" + (a.second == x ? "x" : a.second == y ? "y" : "?"));
    return out;
  };
  owner->track(x, "a");
  owner->track(y, "b");
  owner->track(y, "a");  // self.a = self.b: a now names y, in its old place
  EXPECT_EQ(names(), (std::vector<std::string>{"a=y", "b=y"}));
  // x, which no attribute names any more, is no longer a sub-layer (Keras's __setattr__).
  EXPECT_EQ(owner->layers(), (std::vector<LayerPtr>{y}));
  owner->track(x, "b/0");  // self.b = [x]: "b" now holds a list
  EXPECT_EQ(names(), (std::vector<std::string>{"a=y", "b/0=x"}));
  owner->track(x, "b");  // and back
  EXPECT_EQ(names(), (std::vector<std::string>{"a=y", "b=x"}));
  EXPECT_EQ(owner->layers(), (std::vector<LayerPtr>{y, x}));
  // A layer tracked without an attribute stays a sub-layer when its attribute goes.
  const LayerPtr z = layers::create_layer("Dense", dense_config(3));
  owner->track(z);
  owner->track(z, "c");
  owner->track(x, "c");
  EXPECT_EQ(owner->layers(), (std::vector<LayerPtr>{y, x, z}));
  for (const char *bad : {"/a", "a/", "a//b"})
    expect_error([&] { owner->track(x, bad); }, Code::kInvalidArgument, {"empty part"});
  expect_error([&] { owner->track(x, std::string("\xff")); }, Code::kInvalidArgument, {"UTF-8"});
}

TEST(CheckpointRoundTrip, KeysOfACheckpointOfModelAndOptimizer) {
  const LayerPtr m = small_model();
  const OptimizerPtr opt = adam();
  compile_with(m, opt);
  train_steps(m, 0, 1);
  const std::string prefix = fresh_dir() + "/one";
  Checkpoint({{"optimizer", make_trackable(opt)}, {"model", make_trackable(m)}}).write(prefix);
  io::BundleReader r(prefix);
  std::set<std::string> keys;
  for (const auto &e : r.entries()) keys.insert(e.key);
  for (const char *k : {"model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                        "model/layer_with_weights-1/moving_variance/.ATTRIBUTES/VARIABLE_VALUE",
                        "model/layer_with_weights-2/bias/.ATTRIBUTES/VARIABLE_VALUE",
                        "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE",
                        "optimizer/_variables/12/.ATTRIBUTES/VARIABLE_VALUE"})
    EXPECT_TRUE(keys.count(k)) << k;
  // layer-2 is also layer_with_weights-2: one object, stored once under its first path.
  EXPECT_FALSE(keys.count("model/layer-2/bias/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_FALSE(keys.count("save_counter/.ATTRIBUTES/VARIABLE_VALUE"));  // write() before any save
  // A slot is one node, reached from `_variables` and from its list (`_velocities` ...).
  const auto g = object_graph(r);
  auto child = [&](int node, const std::string &name) {
    for (const auto &c : g.nodes(node).children())
      if (c.local_name() == name) return c.node_id();
    ADD_FAILURE() << "node " << node << " has no child '" << name << "'";
    return -1;
  };
  const int optimizer = child(0, "optimizer");
  const int variables = child(optimizer, "_variables"), velocities = child(optimizer, "_velocities");
  EXPECT_EQ(child(variables, "4"), child(velocities, "1"));  // v of the first bias
  EXPECT_EQ(child(variables, "0"), child(optimizer, "_iterations"));
  EXPECT_EQ(g.nodes(child(velocities, "1")).attributes(0).checkpoint_key(),
            "optimizer/_variables/4/.ATTRIBUTES/VARIABLE_VALUE");
}

TEST(CheckpointRoundTrip, BareVariablesNestedGroupsAndEscapedNames) {
  auto step = std::make_shared<autodiff::Variable>("step", Tensor::scalar<int64_t>(41), false);
  auto w = std::make_shared<autodiff::Variable>("w", make(Shape{2}, {1.5f, -2.f}), true);
  auto group = std::make_shared<TrackableGroup>();
  group->track("a.b/c", make_trackable(w));
  const std::string prefix = fresh_dir() + "/vars";
  Checkpoint({{"step", make_trackable(step)}, {"nested", group}}).write(prefix);
  io::BundleReader r(prefix);
  EXPECT_TRUE(r.contains("step/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_TRUE(r.contains("nested/a..b.Sc/.ATTRIBUTES/VARIABLE_VALUE"));

  auto step2 = std::make_shared<autodiff::Variable>("step", Tensor::scalar<int64_t>(0), false);
  auto w2 = std::make_shared<autodiff::Variable>("w", make(Shape{2}, {0.f, 0.f}), true);
  auto group2 = std::make_shared<TrackableGroup>();
  group2->track("a.b/c", make_trackable(w2));
  Checkpoint restored({{"nested", group2}, {"step", make_trackable(step2)}});
  restored.read(prefix).assert_consumed();
  EXPECT_EQ(step2->peek().data<int64_t>()[0], 41);
  EXPECT_TRUE(same_bits(w2->peek(), w->peek()));
}

// ------------------------------------------------------------------ (d) errors

TEST(CheckpointErrors, ShapeMismatchNamesTheVariableAndBothShapesAndChangesNothing) {
  const LayerPtr saved = sequential_of({serialized_layer("Dense", dense_config(8))}, {-1, 4});
  const std::string prefix = fresh_dir() + "/w";
  save_weights(saved, prefix);
  const LayerPtr wrong = sequential_of({serialized_layer("Dense", dense_config(9))}, {-1, 4});
  const Tensor before = wrong->variables()[0]->peek();
  expect_error([&] { load_weights(wrong, prefix); }, Code::kInvalidArgument,
               {wrong->variables()[0]->name(), "layer_with_weights-0/kernel", "[4, 9]", "[4, 8]"});
  EXPECT_TRUE(same_bits(wrong->variables()[0]->peek(), before));
}

TEST(CheckpointErrors, DtypeMismatchIsInvalidArgument) {
  auto v = std::make_shared<autodiff::Variable>("v", make(Shape{2}, {1.f, 2.f}), true);
  const std::string prefix = fresh_dir() + "/d";
  Checkpoint({{"v", make_trackable(v)}}).write(prefix);
  auto v64 = std::make_shared<autodiff::Variable>("v", make_typed<double>(Shape{2}, {0.0, 0.0}), true);
  expect_error(
      [&] {
        Checkpoint({{"v", make_trackable(v64)}}).read(prefix);
      },
      Code::kInvalidArgument, {"'v'", "float64", "float32"});
}

TEST(CheckpointErrors, AssertConsumedListsUnmatchedValuesAndObjects) {
  const LayerPtr m = small_model();
  const OptimizerPtr opt = adam();
  compile_with(m, opt);
  train_steps(m, 0, 1);
  const std::string prefix = fresh_dir() + "/c";
  Checkpoint({{"model", make_trackable(m)}, {"optimizer", make_trackable(opt)}}).write(prefix);

  std::vector<std::string> warnings;
  set_checkpoint_warning_sink([&](const std::string &t) { warnings.push_back(t); });
  {
    // The restoring side has no optimizer but an extra variable.
    const LayerPtr m2 = small_model();
    auto extra = std::make_shared<autodiff::Variable>("extra", Tensor::scalar<float>(1.f), true);
    Checkpoint ckpt({{"model", make_trackable(m2)}, {"extra", make_trackable(extra)}});
    LoadStatus status = ckpt.read(prefix);
    expect_error([&] { status.assert_consumed(); }, Code::kFailedPrecondition,
                 {"optimizer/_iterations", "optimizer/_variables/1", "variable 'extra' at 'extra'"});
    expect_error([&] { status.assert_existing_objects_matched(); }, Code::kFailedPrecondition, {"'extra'"});
    status.assert_nontrivial_match();
    EXPECT_TRUE(same_bits(m2->variables()[0]->peek(), m->variables()[0]->peek()));
  }
  ASSERT_EQ(warnings.size(), 1u);  // values no object took, reported when the status goes away
  EXPECT_NE(warnings[0].find("optimizer/_iterations"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("expect_partial"), std::string::npos) << warnings[0];
  {
    const LayerPtr m2 = small_model();
    Checkpoint({{"model", make_trackable(m2)}})
        .read(prefix)
        .expect_partial()
        .assert_existing_objects_matched();
  }
  EXPECT_EQ(warnings.size(), 1u);  // expect_partial: silent
  set_checkpoint_warning_sink(nullptr);
}

TEST(CheckpointErrors, CorruptDataIsDataLossAndChangesNothing) {
  auto v = std::make_shared<autodiff::Variable>("v", make(Shape{64}, std::vector<float>(64, 3.f)), true);
  const std::string prefix = fresh_dir() + "/bad";
  Checkpoint({{"v", make_trackable(v)}}).write(prefix);
  {
    std::fstream f(prefix + ".data-00000-of-00001", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  auto v2 = std::make_shared<autodiff::Variable>("v", make(Shape{64}, std::vector<float>(64, 0.f)), true);
  expect_error([&] { Checkpoint({{"v", make_trackable(v2)}}).read(prefix); }, Code::kDataLoss, {});
  EXPECT_EQ(v2->peek().data<float>()[10 / 4], 0.f);
}

TEST(CheckpointErrors, NameBasedAndMissingCheckpointsAndUnbuiltModels) {
  auto v = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(1.f), true);
  expect_error(
      [&] {
        Checkpoint({{"v", make_trackable(v)}}).read(fresh_dir() + "/none");
      },
      Code::kNotFound, {});
  expect_error(
      [&] {
        Checkpoint({{"v", make_trackable(v)}}).restore(fresh_dir());
      },
      Code::kNotFound, {"holds no checkpoint"});
  if (exists(kBertFixture + ".index"))
    expect_error(
        [&] {
          Checkpoint({{"v", make_trackable(v)}}).read(kBertFixture);
        },
        Code::kInvalidArgument, {"name-based"});
  Config c;
  c.set("layers", std::vector<Config>{serialized_layer("Dense", dense_config(3))});
  const LayerPtr unbuilt = layers::create_layer("Sequential", c);
  // An unbuilt model waits for its weights (test_checkpoint_deferred.cc), but not for a file.
  expect_error([&] { load_weights(unbuilt, "/tmp/whatever"); }, Code::kNotFound, {"/tmp/whatever"});
  expect_error(
      [&] {
        Checkpoint({{"save_counter", make_trackable(v)}});
      },
      Code::kInvalidArgument, {"save_counter"});
  expect_error(
      [&] {
        Checkpoint({{"a", make_trackable(v)}, {"a", make_trackable(v)}});
      },
      Code::kInvalidArgument, {"'a'"});
  // A checkpoint written for other objects: nothing below the root matches.
  const std::string prefix = fresh_dir() + "/other";
  Checkpoint({{"v", make_trackable(v)}}).write(prefix);
  expect_error(
      [&] {
        load_weights(sequential_of({serialized_layer("Dense", dense_config(3))}, {-1, 2}), prefix);
      },
      Code::kFailedPrecondition, {"nothing"});
}

TEST(CheckpointErrors, DeferredSlotOfTheWrongShapeFailsTheStepBeforeAnythingChanges) {
  const LayerPtr m = small_model();
  const OptimizerPtr opt = adam();
  compile_with(m, opt);
  train_steps(m, 0, 1);
  const std::string prefix = fresh_dir() + "/s";
  Checkpoint({{"model", make_trackable(m)}, {"optimizer", make_trackable(opt)}}).write(prefix);

  // Same optimizer state, but the model's first layer is wider: its slots no longer fit.
  const LayerPtr m2 = sequential_of(
      {serialized_layer("Dense", dense_config(8, "relu")), serialized_layer("BatchNormalization"),
       serialized_layer("Dense", dense_config(3, "softmax"))},
      {-1, 6});
  const OptimizerPtr opt2 = adam();
  compile_with(m2, opt2);
  LoadStatus status = Checkpoint({{"optimizer", make_trackable(opt2)}}).read(prefix);
  status.expect_partial();
  EXPECT_GT(opt2->pending_slot_restores(), 0u);
  const Tensor before = m2->trainable_variables()[0]->peek();
  const Batch b = batch(Shape{6, 6}, 3, 9);
  expect_error([&] { train_on_batch(m2, {b.x}, {b.y}); }, Code::kInvalidArgument, {"[6, 8]", "[5, 8]"});
  EXPECT_TRUE(same_bits(m2->trainable_variables()[0]->peek(), before));
  EXPECT_EQ(opt2->iterations(), 1);  // restored, and no step taken
  EXPECT_TRUE(opt2->slot_variables().empty());
}

// ------------------------------------------------------------------ (e) save numbering and state

TEST(CheckpointSave, SaveNumbersCheckpointsAndUpdatesTheStateFile) {
  auto v = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(1.f), true);
  const std::string dir = fresh_dir();
  Checkpoint ckpt({{"v", make_trackable(v)}});
  EXPECT_EQ(ckpt.save_counter(), 0);
  EXPECT_EQ(ckpt.save(dir + "/ckpt"), dir + "/ckpt-1");
  v->assign(Tensor::scalar<float>(2.f));
  EXPECT_EQ(ckpt.save(dir + "/ckpt"), dir + "/ckpt-2");
  EXPECT_TRUE(exists(dir + "/ckpt-1.index") && exists(dir + "/ckpt-2.index"));
  EXPECT_TRUE(exists(dir + "/ckpt-2.data-00000-of-00001"));
  const auto state = io::get_checkpoint_state(dir);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->model_checkpoint_path, dir + "/ckpt-2");
  EXPECT_EQ(state->all_model_checkpoint_paths, std::vector<std::string>{dir + "/ckpt-2"});
  EXPECT_EQ(io::latest_checkpoint(dir), dir + "/ckpt-2");
  io::BundleReader r(dir + "/ckpt-2");
  EXPECT_EQ(r.read("save_counter/.ATTRIBUTES/VARIABLE_VALUE").data<int64_t>()[0], 2);

  // write() leaves the counter and the state file alone.
  EXPECT_EQ(ckpt.write(dir + "/exact"), dir + "/exact");
  EXPECT_EQ(ckpt.save_counter(), 2);
  EXPECT_EQ(io::latest_checkpoint(dir), dir + "/ckpt-2");

  // A fresh Checkpoint restored from the directory continues the numbering.
  auto v2 = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(0.f), true);
  Checkpoint again({{"v", make_trackable(v2)}});
  again.restore(dir).assert_consumed();
  EXPECT_EQ(v2->peek().data<float>()[0], 2.f);
  EXPECT_EQ(again.save_counter(), 2);
  EXPECT_EQ(again.save(dir + "/ckpt"), dir + "/ckpt-3");
}

// ------------------------------------------------------------------ CheckpointManager

struct FakeClock {
  double t = 1.7e9;
  std::function<double()> fn() {
    return [this] { return t; };
  }
};

TEST(CheckpointManagerTest, KeepsTheNewestAndDeletesTheRest) {
  auto v = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(1.f), true);
  auto ckpt = std::make_shared<Checkpoint>(
      std::vector<std::pair<std::string, TrackablePtr>>{{"v", make_trackable(v)}});
  const std::string dir = fresh_dir();
  FakeClock clock;
  CheckpointManagerOptions o;
  o.max_to_keep = 2;
  o.clock = clock.fn();
  CheckpointManager manager(ckpt, dir, o);
  EXPECT_EQ(manager.latest_checkpoint(), "");
  EXPECT_EQ(manager.restore_or_initialize(), "");
  for (int i = 1; i <= 4; ++i) {
    clock.t += 10;
    EXPECT_EQ(manager.save(), dir + "/ckpt-" + std::to_string(i));
  }
  EXPECT_EQ(manager.checkpoints(), (std::vector<std::string>{dir + "/ckpt-3", dir + "/ckpt-4"}));
  EXPECT_EQ(manager.latest_checkpoint(), dir + "/ckpt-4");
  EXPECT_FALSE(exists(dir + "/ckpt-1.index") || exists(dir + "/ckpt-2.index"));
  EXPECT_FALSE(exists(dir + "/ckpt-2.data-00000-of-00001"));
  EXPECT_TRUE(exists(dir + "/ckpt-3.index") && exists(dir + "/ckpt-4.data-00000-of-00001"));
  const auto state = io::get_checkpoint_state(dir);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->model_checkpoint_path, dir + "/ckpt-4");
  EXPECT_EQ(state->all_model_checkpoint_paths, manager.checkpoints());
  EXPECT_EQ(state->all_model_checkpoint_timestamps, (std::vector<double>{1.7e9 + 30, 1.7e9 + 40}));

  // An explicit number; the counter still goes up.
  EXPECT_EQ(manager.save(100), dir + "/ckpt-100");
  EXPECT_EQ(ckpt->save_counter(), 5);
  EXPECT_FALSE(exists(dir + "/ckpt-3.index"));

  // A later process: a new manager on the directory carries on with its list and numbering.
  auto v2 = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(0.f), true);
  auto ckpt2 = std::make_shared<Checkpoint>(
      std::vector<std::pair<std::string, TrackablePtr>>{{"v", make_trackable(v2)}});
  CheckpointManager again(ckpt2, dir, o);
  EXPECT_EQ(again.checkpoints(), (std::vector<std::string>{dir + "/ckpt-4", dir + "/ckpt-100"}));
  EXPECT_EQ(again.restore_or_initialize(), dir + "/ckpt-100");
  EXPECT_EQ(v2->peek().data<float>()[0], 1.f);
  EXPECT_EQ(again.save(), dir + "/ckpt-6");
  EXPECT_EQ(again.checkpoints(), (std::vector<std::string>{dir + "/ckpt-100", dir + "/ckpt-6"}));
  EXPECT_FALSE(exists(dir + "/ckpt-4.index"));
}

TEST(CheckpointManagerTest, KeepCheckpointEveryNHoursSparesFilesButNotTheList) {
  auto v = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(1.f), true);
  auto ckpt = std::make_shared<Checkpoint>(
      std::vector<std::pair<std::string, TrackablePtr>>{{"v", make_trackable(v)}});
  const std::string dir = fresh_dir();
  FakeClock clock;
  CheckpointManagerOptions o;
  o.max_to_keep = 1;
  o.keep_checkpoint_every_n_hours = 2;
  o.clock = clock.fn();
  CheckpointManager manager(ckpt, dir, o);  // made at hour 0
  for (int i = 1; i <= 6; ++i) {
    clock.t = 1.7e9 + 3600.0 * (i - 1);  // ckpt-i at hour i-1
    manager.save();
  }
  // ckpt-3 (hour 2) and ckpt-5 (hour 4) are 2 hours past the last one kept; the others go.
  for (int i = 1; i <= 6; ++i)
    EXPECT_EQ(exists(dir + "/ckpt-" + std::to_string(i) + ".index"), i == 3 || i == 5 || i == 6) << i;
  EXPECT_EQ(manager.checkpoints(), std::vector<std::string>{dir + "/ckpt-6"});
  EXPECT_EQ(io::get_checkpoint_state(dir)->last_preserved_timestamp, 1.7e9 + 4 * 3600.0);
}

TEST(CheckpointManagerTest, KeepsEveryCheckpointWithoutMaxToKeepAndChecksArguments) {
  auto v = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(1.f), true);
  auto ckpt = std::make_shared<Checkpoint>(
      std::vector<std::pair<std::string, TrackablePtr>>{{"v", make_trackable(v)}});
  const std::string dir = fresh_dir();
  CheckpointManagerOptions o;
  o.checkpoint_name = "model";
  CheckpointManager manager(ckpt, dir, o);
  for (int i = 0; i < 3; ++i) manager.save();
  EXPECT_EQ(manager.checkpoints().size(), 3u);
  EXPECT_TRUE(exists(dir + "/model-1.index"));
  CheckpointManagerOptions bad;
  bad.max_to_keep = 0;
  expect_error([&] { CheckpointManager(ckpt, dir, bad); }, Code::kInvalidArgument, {"max_to_keep"});
  bad.max_to_keep = 1;
  bad.keep_checkpoint_every_n_hours = -1;
  expect_error([&] { CheckpointManager(ckpt, dir, bad); }, Code::kInvalidArgument,
               {"keep_checkpoint_every_n_hours"});
  expect_error([&] { CheckpointManager(nullptr, dir); }, Code::kInvalidArgument, {"null"});
  expect_error([&] { manager.save(-3); }, Code::kInvalidArgument, {"checkpoint_number"});
}

}  // namespace
}  // namespace kiln::train
