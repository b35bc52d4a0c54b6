// Checkpoints written with TF's legacy optimizers (Keras < 2.11's optimizer_v2,
// tf.keras.optimizers.legacy, tf.compat.v1): no fixture has them, so each test writes the object
// graph TensorFlow writes for tf.train.Checkpoint(model=m, optimizer=o) (or model.save_weights)
// with kiln's bundle writer and the TrackableObjectGraph proto: the optimizer's `iter`,
// `learning_rate` and hyperparameter edges, and its slots as SlotVariableReferences under keys
// `<variable>/.OPTIMIZER_SLOT/optimizer/<slot>/.ATTRIBUTES/VARIABLE_VALUE`. Every value must land
// in the slot of its own variable, whether the optimizer made its slots before the restore or
// makes them after it (in any order), and what kiln cannot take is named, never guessed.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "layers/layer.h"
#include "model_test_util.h"
#include "test_util.h"
#include "trackable_object_graph.pb.h"
#include "train/checkpoint.h"
#include "train/model_training.h"

namespace kiln::train {
namespace {

using layers::LayerPtr;
using testing::expect_error;
using testing::serialized_layer;
using testing::TempDir;

// Sequential [Dense(3), Dense(2)] on 4 inputs: kernels [4, 3] and [3, 2], biases [3] and [2]
// (unbuilt: no weights until it builds).
LayerPtr make_model(bool build = true) {
  Config d0, d1;
  d0.set("units", int64_t{3});
  d1.set("units", int64_t{2});
  Config c;
  c.set("layers", std::vector<Config>{serialized_layer("Dense", d0), serialized_layer("Dense", d1)});
  LayerPtr m = layers::create_layer("Sequential", c);
  if (build) m->build({layers::PartialShape{-1, 4}});
  return m;
}

// The model's variables with their paths under the model, in creation order.
std::vector<std::pair<std::string, VariablePtr>> model_variables(const LayerPtr &m) {
  std::vector<std::pair<std::string, VariablePtr>> out;
  const std::vector<LayerPtr> subs = m->layers();
  for (size_t i = 0; i < subs.size(); ++i)
    for (const auto &w : subs[i]->own_weights())
      out.emplace_back("layer_with_weights-" + std::to_string(i) + "/" + w.first, w.second);
  return out;
}

Tensor filled(const Shape &shape, float base) {
  Tensor t = Tensor::empty(DType::kFloat32, shape);
  float *p = t.mutable_data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = base + 0.001f * static_cast<float>(i);
  return t;
}

bool equal(const Tensor &a, const Tensor &b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  return std::equal(a.data<float>(), a.data<float>() + a.num_elements(), b.data<float>());
}

// The object graph and values TensorFlow writes; nodes are numbered as added.
class LegacyCheckpoint {
 public:
  int node() {
    graph_.add_nodes();
    return graph_.nodes_size() - 1;
  }
  void edge(int parent, const std::string &name, int child) {
    auto *c = graph_.mutable_nodes(parent)->add_children();
    c->set_node_id(child);
    c->set_local_name(name);
  }
  void value(int n, const std::string &key, const Tensor &t) {
    auto *a = graph_.mutable_nodes(n)->add_attributes();
    a->set_name("VARIABLE_VALUE");
    a->set_checkpoint_key(key);
    values_.emplace_back(key, t);
  }
  // A child of `parent` holding one value.
  int variable(int parent, const std::string &name, const std::string &key, const Tensor &t) {
    const int n = node();
    edge(parent, name, n);
    value(n, key, t);
    return n;
  }
  void slot(int optimizer, int variable_node, const std::string &slot_name, int slot_node) {
    auto *r = graph_.mutable_nodes(optimizer)->add_slot_variables();
    r->set_original_variable_node_id(variable_node);
    r->set_slot_name(slot_name);
    r->set_slot_variable_node_id(slot_node);
  }
  void write(const std::string &prefix) const {
    io::BundleWriter w(prefix);
    for (const auto &kv : values_) w.add(kv.first, kv.second);
    std::string bytes;
    ASSERT_TRUE(graph_.SerializeToString(&bytes));
    w.add_strings("_CHECKPOINTABLE_OBJECT_GRAPH", {}, {bytes});
    w.finish();
  }

 private:
  tfproto::TrackableObjectGraph graph_;
  std::vector<std::pair<std::string, Tensor>> values_;
};

constexpr int64_t kIterations = 1234;
constexpr float kLearningRate = 0.0125f;

// What a test writes: the legacy slots of every variable, the hyperparameters (name -> float32
// value), and where the model sits.
struct Layout {
  std::vector<std::string> legacy_slots;
  std::map<std::string, float> hypers;
  bool model_is_root =
      false;               // model.save_weights: keys without "model/"; else Checkpoint(model=, optimizer=)
  Shape wrong_slot_shape;  // non-empty: the first slot of the first variable has this shape
};

// The saved value of legacy slot s of variable v.
Tensor slot_value(size_t v, size_t s, const Shape &shape) {
  return filled(shape, 10.f * static_cast<float>(v + 1) + static_cast<float>(s + 1));
}
Tensor weight_value(size_t v, const Shape &shape) { return filled(shape, -1.f - static_cast<float>(v)); }

// Writes model's and the optimizer's state as TF does with a legacy optimizer.
void write_legacy(const std::string &prefix, const LayerPtr &model, const Layout &l) {
  LegacyCheckpoint c;
  const int root = c.node();
  const int m = l.model_is_root ? root : c.node();
  const std::string model_path = l.model_is_root ? "" : "model/";
  if (!l.model_is_root) c.edge(root, "model", m);
  const int opt = c.node();
  c.edge(root, "optimizer", opt);
  if (!l.model_is_root) {
    const int counter = c.node();
    c.edge(root, "save_counter", counter);
    c.value(counter, "save_counter/.ATTRIBUTES/VARIABLE_VALUE", Tensor::scalar<int64_t>(1));
  }
  c.variable(opt, "iter", "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", Tensor::scalar<int64_t>(kIterations));
  c.variable(opt, "learning_rate", "optimizer/learning_rate/.ATTRIBUTES/VARIABLE_VALUE",
             Tensor::scalar<float>(kLearningRate));
  for (const auto &h : l.hypers)
    c.variable(opt, h.first, "optimizer/" + h.first + "/.ATTRIBUTES/VARIABLE_VALUE",
               Tensor::scalar<float>(h.second));

  const auto vars = model_variables(model);
  std::map<std::string, int> layer_nodes;
  std::vector<int> var_nodes;
  for (size_t v = 0; v < vars.size(); ++v) {
    const std::string &path = vars[v].first;  // layer_with_weights-<i>/<weight>
    const std::string layer_edge = path.substr(0, path.find('/'));
    if (!layer_nodes.count(layer_edge)) {
      layer_nodes[layer_edge] = c.node();
      c.edge(m, layer_edge, layer_nodes[layer_edge]);
    }
    const Shape shape = vars[v].second->shape();
    var_nodes.push_back(c.variable(layer_nodes[layer_edge], path.substr(path.find('/') + 1),
                                   model_path + path + "/.ATTRIBUTES/VARIABLE_VALUE",
                                   weight_value(v, shape)));
  }
  // Slot nodes hang off no edge; TF lists them in the optimizer's node, slot name by slot name.
  for (size_t s = 0; s < l.legacy_slots.size(); ++s)
    for (size_t v = 0; v < vars.size(); ++v) {
      const int n = c.node();
      const Shape shape =
          (v == 0 && s == 0 && l.wrong_slot_shape.rank() > 0) ? l.wrong_slot_shape : vars[v].second->shape();
      c.value(n,
              model_path + vars[v].first + "/.OPTIMIZER_SLOT/optimizer/" + l.legacy_slots[s] +
                  "/.ATTRIBUTES/VARIABLE_VALUE",
              slot_value(v, s, shape));
      c.slot(opt, var_nodes[v], l.legacy_slots[s], n);
    }
  c.write(prefix);
}

OptimizerPtr optimizer(const std::string &cls, const std::string &config_json) {
  return make_optimizer(cls, Config::from_json(config_json));
}

// Each variable's kiln slot `kiln_slots[s]` must hold legacy slot s's value, the weights theirs,
// and the optimizer the iterations and learning rate.
void expect_restored(const LayerPtr &model, const OptimizerPtr &opt,
                     const std::vector<std::string> &kiln_slots) {
  const auto vars = model_variables(model);
  for (size_t v = 0; v < vars.size(); ++v) {
    EXPECT_TRUE(equal(vars[v].second->peek(), weight_value(v, vars[v].second->shape()))) << vars[v].first;
    for (size_t s = 0; s < kiln_slots.size(); ++s) {
      const VariablePtr slot = opt->slot(vars[v].second->id(), kiln_slots[s]);
      EXPECT_TRUE(equal(slot->peek(), slot_value(v, s, vars[v].second->shape())))
          << opt->class_name() << " slot '" << kiln_slots[s] << "' of " << vars[v].first;
    }
  }
  EXPECT_EQ(opt->iterations(), kIterations);
  EXPECT_EQ(static_cast<float>(opt->learning_rate()), kLearningRate);
}

struct Case {
  std::string cls, config;
  std::vector<std::string> legacy_slots, kiln_slots;
  std::map<std::string, float> hypers;
};

// Keras 2.13's keras/optimizers/legacy/*.py: the slots each class adds and its _set_hyper names.
std::vector<Case> cases() {
  return {
      {"Adam",
       "{}",
       {"m", "v"},
       {"momentum", "velocity"},
       {{"beta_1", 0.9f}, {"beta_2", 0.999f}, {"decay", 0.f}}},
      {"Adam",
       "{\"amsgrad\": true}",
       {"m", "v", "vhat"},
       {"momentum", "velocity", "velocity_hat"},
       {{"beta_1", 0.9f}, {"beta_2", 0.999f}, {"decay", 0.f}}},
      {"AdamW", "{}", {"m", "v"}, {"momentum", "velocity"}, {{"beta_1", 0.9f}, {"decay", 0.f}}},
      {"SGD", "{\"momentum\": 0.9}", {"momentum"}, {"momentum"}, {{"momentum", 0.9f}, {"decay", 0.f}}},
      {"RMSprop",
       "{\"momentum\": 0.5, \"centered\": true}",
       {"rms", "momentum", "mg"},
       {"velocity", "momentum", "average_gradient"},
       {{"rho", 0.9f}, {"momentum", 0.5f}, {"decay", 0.f}}},
      {"RMSprop", "{}", {"rms"}, {"velocity"}, {{"rho", 0.9f}, {"momentum", 0.f}, {"decay", 0.f}}},
      {"Adagrad", "{}", {"accumulator"}, {"accumulator"}, {{"decay", 0.f}}},
      {"Adamax",
       "{}",
       {"m", "v"},
       {"momentum", "norm"},
       {{"beta_1", 0.9f}, {"beta_2", 0.999f}, {"decay", 0.f}}},
      {"Ftrl",
       "{\"l1_regularization_strength\": 0.25}",
       {"accumulator", "linear"},
       {"accumulator", "linear"},
       {{"decay", 0.f},
        {"learning_rate_power", -0.5f},
        {"l1_regularization_strength", 0.25f},
        {"beta", 0.f}}},
      {"Adadelta",
       "{}",
       {"accum_grad", "accum_var"},
       {"accumulated_grad", "accumulated_delta_var"},
       {{"rho", 0.95f}, {"decay", 0.f}}},
      {"Nadam",
       "{}",
       {"m", "v"},
       {"momentum", "velocity"},
       {{"beta_1", 0.9f}, {"beta_2", 0.999f}, {"decay", 0.f}, {"momentum_cache", 0.5f}}},
  };
}

TEST(CheckpointLegacyOptimizer, SlotsLandInTheirOwnVariablesSlotsWhenTheOptimizerBuildsLater) {
  TempDir dir;
  for (const Case &c : cases()) {
    SCOPED_TRACE(c.cls + " " + c.config);
    const LayerPtr saved = make_model();
    Layout l;
    l.legacy_slots = c.legacy_slots;
    l.hypers = c.hypers;
    write_legacy(dir / "ckpt-1", saved, l);

    const LayerPtr model = make_model();
    const OptimizerPtr opt = optimizer(c.cls, c.config);
    Checkpoint ckpt({{"model", make_trackable(model)}, {"optimizer", make_trackable(opt)}});
    const LoadStatus status = ckpt.read(dir / "ckpt-1");
    EXPECT_TRUE(status.unmatched_values().empty()) << ::testing::PrintToString(status.unmatched_values());
    // Every slot waits for its variable's slots: 4 variables.
    EXPECT_EQ(status.pending_values().size(), 4 * c.legacy_slots.size());
    EXPECT_EQ(opt->iterations(), kIterations);
    // The values are keyed by variable, not by the order slots are made: build in reverse.
    std::vector<VariablePtr> vars = model->trainable_variables();
    std::reverse(vars.begin(), vars.end());
    opt->build(vars);
    EXPECT_TRUE(status.pending_values().empty());
    EXPECT_EQ(opt->pending_slot_restores(), 0u);
    EXPECT_NO_THROW(status.assert_consumed());
    expect_restored(model, opt, c.kiln_slots);
  }
}

TEST(CheckpointLegacyOptimizer, SlotsThatExistTakeTheirValuesAtOnce) {
  TempDir dir;
  for (const Case &c : cases()) {
    SCOPED_TRACE(c.cls + " " + c.config);
    Layout l;
    l.legacy_slots = c.legacy_slots;
    l.hypers = c.hypers;
    write_legacy(dir / "ckpt-1", make_model(), l);

    const LayerPtr model = make_model();
    const OptimizerPtr opt = optimizer(c.cls, c.config);
    opt->build(model->trainable_variables());
    Checkpoint ckpt({{"model", make_trackable(model)}, {"optimizer", make_trackable(opt)}});
    const LoadStatus status = ckpt.read(dir / "ckpt-1");
    EXPECT_NO_THROW(status.assert_consumed());
    EXPECT_TRUE(status.pending_values().empty());
    expect_restored(model, opt, c.kiln_slots);
  }
}

// Nadam's momentum_cache (the product of its momentum schedule) is kiln's u_product.
TEST(CheckpointLegacyOptimizer, NadamMomentumCacheIsTheUProduct) {
  TempDir dir;
  Layout l;
  l.legacy_slots = {"m", "v"};
  l.hypers = {{"momentum_cache", 0.625f}, {"beta_1", 0.9f}, {"beta_2", 0.999f}};
  write_legacy(dir / "ckpt-1", make_model(), l);
  const LayerPtr model = make_model();
  const OptimizerPtr opt = optimizer("Nadam", "{}");
  Checkpoint ckpt({{"model", make_trackable(model)}, {"optimizer", make_trackable(opt)}});
  const LoadStatus status = ckpt.read(dir / "ckpt-1");
  opt->build(model->trainable_variables());
  EXPECT_NO_THROW(status.assert_consumed());
  ASSERT_EQ(opt->state_variables().size(), 1u);
  EXPECT_EQ(opt->state_variables()[0]->peek().item_as_double(), 0.625);
}

// Nadam's u_product is saved in its model's dtype, as Keras's (float32 for a float32 model, which
// TF's restore needs); a value saved in the other float dtype is converted, before the
// optimizer's build or after it.
TEST(CheckpointLegacyOptimizer, NadamUProductConvertsBetweenFloat32AndFloat64) {
  TempDir dir;
  const VariablePtr w64 = std::make_shared<autodiff::Variable>("w64", Tensor::scalar<double>(1.0), true);
  const VariablePtr w32 = std::make_shared<autodiff::Variable>("w32", Tensor::scalar<float>(1.0f), true);
  const OptimizerPtr trained = optimizer("Nadam", "{}");
  trained->apply_gradients({Tensor::scalar<float>(0.5f)}, {w32});
  Checkpoint({{"optimizer", make_trackable(trained)}}).write(dir / "trained");
  EXPECT_EQ(io::BundleReader(dir / "trained").read("optimizer/_u_product/.ATTRIBUTES/VARIABLE_VALUE").dtype(),
            DType::kFloat32);
  // Checkpoints holding only an optimizer's `_u_product`, in float64 and in float32.
  const double value = 0.1;
  for (const Tensor &saved :
       {Tensor::scalar<double>(value), Tensor::scalar<float>(static_cast<float>(value))}) {
    auto group = std::make_shared<TrackableGroup>();
    group->track("_u_product", make_trackable(std::make_shared<autodiff::Variable>("u", saved, false)));
    Checkpoint({{"optimizer", group}}).write(dir / dtype_name(saved.dtype()));
  }
  for (const char *from : {"float64", "float32"}) {
    for (const VariablePtr &w : {w32, w64}) {
      for (bool built_first : {true, false}) {
        SCOPED_TRACE(std::string(from) + " into " + w->name() + (built_first ? ", built first" : ""));
        const OptimizerPtr opt = optimizer("Nadam", "{}");
        if (built_first) opt->build({w});
        Checkpoint({{"optimizer", make_trackable(opt)}}).read(dir / from);
        if (!built_first) opt->build({w});
        const Tensor u = opt->state_variables()[0]->peek();
        ASSERT_EQ(u.dtype(), w->dtype());
        const double want = std::string(from) == "float32" || w == w32 ? static_cast<float>(value) : value;
        EXPECT_EQ(u.item_as_double(), want);
      }
    }
  }
}

// model.save_weights with a compiled model: the model is the root, the optimizer its child.
TEST(CheckpointLegacyOptimizer, LoadWeightsOfACompiledModel) {
  TempDir dir;
  Layout l;
  l.legacy_slots = {"m", "v"};
  l.hypers = {{"beta_1", 0.9f}, {"beta_2", 0.999f}, {"decay", 0.f}};
  l.model_is_root = true;
  write_legacy(dir / "weights", make_model(), l);
  const LayerPtr model = make_model();
  const OptimizerPtr opt = optimizer("Adam", "{}");
  CompileOptions co;
  co.optimizer = opt;
  co.loss_names = {"mean_squared_error"};
  compile(model, co);
  const LoadStatus status = load_weights(model, dir / "weights");
  EXPECT_TRUE(status.unmatched_values().empty()) << ::testing::PrintToString(status.unmatched_values());
  opt->build(model->trainable_variables());
  expect_restored(model, opt, {"momentum", "velocity"});
  status.expect_partial();  // the self edge "root" Keras adds is not in this hand-made graph
}

// What kiln cannot take stays unmatched, by its saved path: a hyperparameter that differs from
// the live optimizer's setting (kiln holds it as a setting), a time-inverse decay, a slot the
// class does not have (Ftrl's "linear"; RMSprop's "momentum" without momentum).
TEST(CheckpointLegacyOptimizer, WhatKilnCannotTakeIsNamed) {
  TempDir dir;
  Layout l;
  l.legacy_slots = {"m", "v", "linear"};
  l.hypers = {{"beta_1", 0.8f}, {"beta_2", 0.999f}, {"decay", 0.01f}};
  write_legacy(dir / "ckpt-1", make_model(), l);
  const LayerPtr model = make_model();
  const OptimizerPtr opt = optimizer("Adam", "{}");
  opt->build(model->trainable_variables());
  Checkpoint ckpt({{"model", make_trackable(model)}, {"optimizer", make_trackable(opt)}});
  const LoadStatus status = ckpt.read(dir / "ckpt-1");
  std::vector<std::string> unmatched = status.unmatched_values();
  std::sort(unmatched.begin(), unmatched.end());
  EXPECT_EQ(unmatched, (std::vector<std::string>{
                           "model/layer_with_weights-0/bias/.OPTIMIZER_SLOT/optimizer/linear",
                           "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/linear",
                           "model/layer_with_weights-1/bias/.OPTIMIZER_SLOT/optimizer/linear",
                           "model/layer_with_weights-1/kernel/.OPTIMIZER_SLOT/optimizer/linear",
                           "optimizer/beta_1",
                           "optimizer/decay",
                       }));
  expect_error([&] { status.assert_consumed(); }, Code::kFailedPrecondition,
               {"optimizer/beta_1", "optimizer/decay", ".OPTIMIZER_SLOT/optimizer/linear"});
  status.expect_partial();
  expect_restored(model, opt, {"momentum", "velocity"});

  Layout r;
  r.legacy_slots = {"rms", "momentum"};
  write_legacy(dir / "ckpt-2", make_model(), r);
  const OptimizerPtr rms = optimizer("RMSprop", "{}");  // no momentum: no such slot
  Checkpoint ckpt2({{"model", make_trackable(make_model())}, {"optimizer", make_trackable(rms)}});
  const LoadStatus status2 = ckpt2.read(dir / "ckpt-2");
  EXPECT_EQ(status2.unmatched_values().size(), 4u);
  EXPECT_EQ(status2.pending_values().size(), 4u);  // the "rms" slots, for velocity
  status2.expect_partial();
}

// A slot whose shape is not its variable's fails the restore before anything changes.
TEST(CheckpointLegacyOptimizer, ASlotOfTheWrongShapeChangesNothing) {
  TempDir dir;
  for (bool built : {false, true}) {
    SCOPED_TRACE(built ? "slots made before the restore" : "slots made after it");
    Layout l;
    l.legacy_slots = {"m", "v"};
    l.wrong_slot_shape = Shape{5, 3};
    write_legacy(dir / "ckpt-1", make_model(), l);
    const LayerPtr model = make_model();
    const OptimizerPtr opt = optimizer("Adam", "{}");
    if (built) opt->build(model->trainable_variables());
    const Tensor kernel_before = model_variables(model)[0].second->peek();
    Checkpoint ckpt({{"model", make_trackable(model)}, {"optimizer", make_trackable(opt)}});
    expect_error([&] { ckpt.read(dir / "ckpt-1"); }, Code::kInvalidArgument,
                 {"layer_with_weights-0/kernel", "[5, 3]", "[4, 3]"});
    EXPECT_TRUE(equal(model_variables(model)[0].second->peek(), kernel_before));
    EXPECT_EQ(opt->iterations(), 0);
    EXPECT_EQ(opt->pending_slot_restores(), 0u);
  }
}

// A model that is not built yet takes its weights when it builds (Keras's deferred restoration);
// the legacy slots of those weights, which the optimizer outside the model keys by them, wait
// with them and then for the optimizer's slots.
TEST(CheckpointLegacyOptimizer, SlotsOfAnUnbuiltModelsVariablesWaitForItsBuild) {
  TempDir dir;
  Layout l;
  l.legacy_slots = {"m", "v"};
  l.hypers = {{"beta_1", 0.9f}, {"beta_2", 0.999f}, {"decay", 0.f}};
  write_legacy(dir / "ckpt-1", make_model(), l);
  const LayerPtr model = make_model(false);
  const OptimizerPtr opt = optimizer("Adam", "{}");
  Checkpoint ckpt({{"model", make_trackable(model)}, {"optimizer", make_trackable(opt)}});
  const LoadStatus status = ckpt.read(dir / "ckpt-1");
  EXPECT_TRUE(status.unmatched_values().empty()) << ::testing::PrintToString(status.unmatched_values());
  EXPECT_EQ(status.pending_values().size(), 4u * 3u);  // 4 weights, and their 2 slots each
  EXPECT_EQ(opt->iterations(), kIterations);
  model->build({layers::PartialShape{-1, 4}});
  EXPECT_EQ(status.pending_values().size(), 4u * 2u);
  opt->build(model->trainable_variables());
  EXPECT_NO_THROW(status.assert_consumed());
  expect_restored(model, opt, {"momentum", "velocity"});
}

// Slot references to nodes that are not there are a damaged file.
TEST(CheckpointLegacyOptimizer, ASlotReferenceOutsideTheGraphIsDataLoss) {
  TempDir dir;
  LegacyCheckpoint c;
  const int root = c.node();
  const int opt = c.node();
  c.edge(root, "optimizer", opt);
  c.slot(opt, 7, "m", 9);
  c.write(dir / "bad");
  Checkpoint ckpt({{"optimizer", make_trackable(optimizer("Adam", "{}"))}});
  expect_error([&] { ckpt.read(dir / "bad"); }, Code::kDataLoss, {"slot 'm'"});
}

}  // namespace
}  // namespace kiln::train
