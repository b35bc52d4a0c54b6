// The SavedModel (src/train/saved_model.h, src/io/saved_model_format.h): a model saved, then
// loaded with nothing but the directory, predicts bit for bit as the original, comes back
// compiled with its optimizer state (training continues bit for bit), serves its signature from
// 8 threads; custom classes come back through the registry; damaged or foreign directories are
// clear errors; a save replaces an earlier export whole and leaves nothing behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "bundle_test_util.h"
#include "io/bundle.h"
#include "io/file_util.h"
#include "io/saved_model_format.h"
#include "layers/layer.h"
#include "model_test_util.h"
#include "ops/ops.h"
#include "saved_model.pb.h"
#include "test_util.h"
#include "train/model_training.h"
#include "train/saved_model.h"

namespace kiln::train {
namespace {

using layers::LayerPtr;
using testing::dense_config;
using testing::expect_error;
using testing::sequential_of;
using testing::serialized_layer;

LayerPtr small_model() {
  return sequential_of(
      {serialized_layer("Dense", dense_config(8, "relu")), serialized_layer("BatchNormalization"),
       serialized_layer("Dense", dense_config(3, "softmax"))},
      {-1, 5});
}

void compile_adam(const LayerPtr &m) {
  CompileOptions o;
  Config c;
  c.set("learning_rate", 0.01);
  o.optimizer = make_optimizer("Adam", c);
  o.loss_names = {"sparse_categorical_crossentropy"};
  o.metric_names = {"accuracy"};
  compile(m, o);
}

Tensor labels(int64_t n) {
  std::vector<int64_t> y;
  for (int64_t i = 0; i < n; ++i) y.push_back((i * 7 + 1) % 3);
  return Tensor::from_data(DType::kInt64, Shape({n}), y.data(), y.size() * sizeof(int64_t));
}

void expect_same(const Tensor &a, const Tensor &b, const std::string &what) {
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()), 0) << what << " differs";
}

void expect_same_weights(const LayerPtr &a, const LayerPtr &b) {
  const auto va = a->variables(), vb = b->variables();
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); ++i) expect_same(va[i]->value(), vb[i]->value(), va[i]->name());
}

TEST(SavedModel, RoundTripPredictsAndTrainsOnBitForBit) {
  testing::TempDir dir;
  const LayerPtr m = small_model();
  compile_adam(m);
  const Tensor x = testing::random_tensor(Shape({16, 5}), 3), y = labels(16);
  for (int i = 0; i < 3; ++i) train_on_batch(m, {x}, {y});
  const std::string path = dir / "export";
  save_model(m, path);

  const std::shared_ptr<SavedModel> loaded = load_saved_model(path);
  const LayerPtr l = loaded->model();
  EXPECT_EQ(l->class_name(), "Sequential");
  EXPECT_EQ(loaded->manifest().kiln_version, KILN_TEST_VERSION);
  expect_same_weights(m, l);
  expect_same(predict_on_batch(m, {x})[0], predict_on_batch(l, {x})[0], "predictions");

  // Compiled as saved: the same optimizer, iterations and slots, so training continues exactly.
  ASSERT_TRUE(is_compiled(*l));
  EXPECT_EQ(training_state(*l)->optimizer->class_name(), "Adam");
  EXPECT_EQ(training_state(*l)->optimizer->iterations(), 3);
  for (int i = 0; i < 2; ++i) {
    const Logs a = train_on_batch(m, {x}, {y}), b = train_on_batch(l, {x}, {y});
    EXPECT_EQ(a.get("loss"), b.get("loss"));
    EXPECT_EQ(a.get("accuracy"), b.get("accuracy"));
  }
  EXPECT_EQ(metrics_names(*l), metrics_names(*m));
  expect_same_weights(m, l);
  expect_same(training_state(*m)->optimizer->iterations_variable()->value(),
              training_state(*l)->optimizer->iterations_variable()->value(), "iterations");

  // compile=false: the same weights, no compile state.
  LoadModelOptions no_compile;
  no_compile.compile = false;
  const LayerPtr u = load_model(path, no_compile);
  EXPECT_FALSE(is_compiled(*u));
}

TEST(SavedModel, DirectoryLayoutAndVariablesAreATensorFlowCheckpoint) {
  testing::TempDir dir;
  const LayerPtr m = small_model();
  save_model(m, dir / "export");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"export"});  // no temporaries left beside it
  const std::string e = dir / "export";
  EXPECT_TRUE(io::file_exists(e + "/saved_model.pb"));
  EXPECT_TRUE(io::file_exists(e + "/fingerprint.pb"));
  io::BundleReader r(e + "/variables/variables");
  EXPECT_TRUE(r.contains("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_TRUE(r.contains("layer_with_weights-1/moving_mean/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_TRUE(r.contains("_CHECKPOINTABLE_OBJECT_GRAPH"));

  // The fingerprint's hashes follow the parts: another model gives another program hash.
  tfproto::KilnFingerprint f;
  ASSERT_TRUE(f.ParseFromString(io::read_file(e + "/fingerprint.pb")));
  EXPECT_EQ(f.saved_model_checksum(), io::fingerprint64(io::read_file(e + "/saved_model.pb")));
  EXPECT_EQ(f.checkpoint_hash(), io::fingerprint64(io::read_file(e + "/variables/variables.index")));
  EXPECT_EQ(f.version().producer(), 1);
}

TEST(SavedModel, ServingSignatureNamesShapesAndErrors) {
  testing::TempDir dir;
  const LayerPtr m = small_model();
  save_model(m, dir / "export");
  const auto loaded = load_saved_model(dir / "export");
  EXPECT_EQ(loaded->signature_keys(), std::vector<std::string>{"serving_default"});
  const Signature &s = loaded->signature();
  ASSERT_EQ(s.info().inputs.size(), 1u);
  EXPECT_EQ(s.info().inputs[0].name, m->layers()[0]->name() + "_input");
  EXPECT_EQ(s.info().inputs[0].dtype, DType::kFloat32);
  EXPECT_EQ(s.info().inputs[0].dims, (std::vector<int64_t>{-1, 5}));
  ASSERT_EQ(s.info().outputs.size(), 1u);
  EXPECT_EQ(s.info().outputs[0].name, m->layers()[2]->name());
  EXPECT_EQ(s.info().outputs[0].dims, (std::vector<int64_t>{-1, 3}));

  const Tensor x = testing::random_tensor(Shape({4, 5}), 9);
  expect_same(s.run({x})[0], (*m)(x), "signature output");
  const auto named = s.run_named({{s.info().inputs[0].name, x}});
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].first, s.info().outputs[0].name);

  expect_error([&] { s.run({ops::cast(x, DType::kInt64)}); }, Code::kInvalidArgument,
               {"has dtype int64; expected float32"});
  expect_error(
      [&] {
        s.run({testing::random_tensor(Shape({4, 4}), 1)});
      },
      Code::kInvalidArgument, {"signature 'serving_default': input", "has shape (4, 4); expected (None, 5)"});
  expect_error([&] { s.run({testing::random_tensor(Shape({5}), 1)}); }, Code::kInvalidArgument,
               {"signature 'serving_default': input", "expected (None, 5)"});
  expect_error([&] { s.run({x, x}); }, Code::kInvalidArgument, {"got 2 input(s); expected 1"});
  expect_error([&] { s.run_named({{"pixels", x}}); }, Code::kInvalidArgument, {"no input named 'pixels'"});
  expect_error([&] { loaded->signature("serve"); }, Code::kNotFound, {"no signature 'serve'"});

  // Names and dtypes given at save time.
  SaveModelOptions o;
  o.inputs.resize(1);
  o.inputs[0].name = "features";
  o.output_names = {"probabilities"};
  save_model(m, dir / "named", o);
  const auto n = load_saved_model(dir / "named");
  EXPECT_EQ(n->signature().info().inputs[0].name, "features");
  EXPECT_EQ(n->signature().info().outputs[0].name, "probabilities");
  o.output_names = {"a", "b"};
  expect_error([&] { save_model(m, dir / "bad", o); }, Code::kInvalidArgument,
               {"2 output names for a model with 1 output(s)"});
  EXPECT_FALSE(io::file_exists(dir / "bad"));
}

TEST(SavedModel, ModelsOfUnknownLengthsThatRefuseLengthOneSave) {
  // Conv1D over (None, 8) sequences with a VALID window of 3, and a crop of 2 + 2: the signature's
  // call on zeros stands in longer lengths when 1 does not fit.
  testing::TempDir dir;
  Config conv, crop;
  conv.set("filters", 4).set("kernel_size", 3);
  crop.set("cropping", std::vector<int64_t>{2, 2});
  const LayerPtr m =
      sequential_of({serialized_layer("Conv1D", conv), serialized_layer("Cropping1D", crop),
                     serialized_layer("GlobalMaxPooling1D"), serialized_layer("Dense", dense_config(2))},
                    {-1, -1, 8});
  save_model(m, dir / "export");
  const auto loaded = load_saved_model(dir / "export");
  EXPECT_EQ(loaded->signature().info().inputs[0].dims, (std::vector<int64_t>{-1, -1, 8}));
  EXPECT_EQ(loaded->signature().info().outputs[0].dims, (std::vector<int64_t>{-1, 2}));
  const Tensor x = testing::random_tensor(Shape({3, 11, 8}), 21);
  expect_same(loaded->signature().run({x})[0], (*m)(x), "signature output");
  // A model that fits no stand-in still says why, and leaves nothing behind.
  crop.set("cropping", std::vector<int64_t>{300, 300});
  const LayerPtr too_short = sequential_of({serialized_layer("Cropping1D", crop)}, {-1, -1, 8});
  expect_error([&] { save_model(too_short, dir / "short"); }, Code::kInvalidArgument,
               {"(Cropping1D)", "smaller than"});
  EXPECT_FALSE(io::file_exists(dir / "short"));
}

TEST(SavedModel, EightThreadsServeIdenticalResults) {
  testing::TempDir dir;
  save_model(small_model(), dir / "export");
  const auto loaded = load_saved_model(dir / "export");
  const Signature &s = loaded->signature();
  constexpr int kThreads = 8, kRounds = 20;
  std::vector<Tensor> inputs, expected;
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(testing::random_tensor(Shape({1 + t * 5, 5}), 100 + t));
    expected.push_back(s.run({inputs.back()})[0]);
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const Tensor out = s.run({inputs[t]})[0];
        if (out.shape() != expected[t].shape() ||
            std::memcmp(out.raw_data(), expected[t].raw_data(), out.byte_size()) != 0)
          ++mismatches[t];
      }
    });
  for (std::thread &th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// A custom class: y = x * factor, with a trainable scalar weight.
class Scale final : public layers::Layer {
 public:
  explicit Scale(const Config &config) : Scale(ConfigReader(config, "Scale")) {}

 private:
  // Registered as "Test>Scale": Keras's registered name, kept in the saved config.
  explicit Scale(ConfigReader &&r) : Layer("Test>Scale", r) {
    factor_ = r.get_float("factor", 1.0);
    r.finish();
  }
  void build_impl(const std::vector<layers::PartialShape> &) override {
    w_ = add_weight("w", Shape({}), DType::kFloat32, *layers::get_initializer("ones"), true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const layers::CallContext &) override {
    return {ops::mul(inputs[0], w_->value())};
  }
  void add_config(Config &c) const override { c.set("factor", factor_); }
  double factor_;
  layers::VariablePtr w_;
};

TEST(SavedModel, CustomClassesComeBackThroughTheRegistry) {
  testing::TempDir dir;
  layers::register_layer("Test>Scale", [](const Config &c) { return std::make_shared<Scale>(c); });
  Config scale;
  scale.set("factor", 2.5);
  const LayerPtr m = sequential_of(
      {serialized_layer("Test>Scale", scale), serialized_layer("Dense", dense_config(2))}, {-1, 3});
  m->variables()[0]->assign(Tensor::scalar(4.0f));
  save_model(m, dir / "export");

  layers::unregister_layer("Test>Scale");
  expect_error([&] { load_model(dir / "export"); }, Code::kNotFound,
               {"register custom classes before loading"});

  layers::register_layer("Test>Scale", [](const Config &cfg) { return std::make_shared<Scale>(cfg); });
  const LayerPtr l = load_model(dir / "export");
  expect_same_weights(m, l);
  const Tensor x = testing::random_tensor(Shape({2, 3}), 5);
  expect_same((*m)(x), (*l)(x), "custom model output");
  layers::unregister_layer("Test>Scale");
}

TEST(SavedModel, ReplacesAnEarlierExportAndRefusesOtherDirectories) {
  testing::TempDir dir;
  const LayerPtr a = small_model(), b = small_model();
  save_model(a, dir / "export");
  save_model(b, dir / "export");  // replaced whole
  expect_same_weights(b, load_model(dir / "export"));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"export"});

  std::filesystem::create_directories(dir / "other");
  { std::ofstream(dir / "other/notes.txt") << "mine"; }
  expect_error([&] { save_model(a, dir / "other"); }, Code::kFailedPrecondition,
               {"is not a SavedModel (no saved_model.pb)"});
  EXPECT_EQ(io::read_file(dir / "other/notes.txt"), "mine");
  std::filesystem::create_directories(dir / "empty");
  save_model(a, dir / "empty");  // an empty directory is fine
  expect_same_weights(a, load_model(dir / "empty"));

  expect_error(
      [&] { save_model(sequential_of({serialized_layer("Dense", dense_config(2))}), dir / "unbuilt"); },
      Code::kFailedPrecondition, {"is not built"});
}

TEST(SavedModel, DamagedOrForeignDirectoriesAreClearErrors) {
  testing::TempDir dir;
  save_model(small_model(), dir / "export");
  const std::string e = dir / "export";
  expect_error([&] { load_model(dir.path()); }, Code::kNotFound, {"has no saved_model.pb"});

  // A byte of saved_model.pb changed: the fingerprint's checksum no longer matches.
  const std::string pb = io::read_file(e + "/saved_model.pb");
  std::string bad = pb;
  bad[bad.size() / 2] ^= 0x20;
  io::write_file_atomic(e + "/saved_model.pb", bad);
  expect_error([&] { load_model(e); }, Code::kDataLoss, {"saved_model.pb was changed or damaged"});
  // Without the fingerprint, the manifest's own checks speak.
  std::filesystem::remove(e + "/fingerprint.pb");
  io::write_file_atomic(e + "/saved_model.pb", "not a protobuf \xff\xff\xff");
  expect_error([&] { load_model(e); }, Code::kDataLoss, {"saved_model.pb"});

  // A manifest from a newer kiln.
  io::SavedModelManifest m = io::decode_saved_model(pb, "test");
  m.format_version = 99;
  io::write_file_atomic(e + "/saved_model.pb", io::encode_saved_model(m));
  expect_error([&] { load_model(e); }, Code::kUnimplemented, {"has format version 99"});
  // A class nobody registered.
  m.format_version = 1;
  io::SavedModelManifest unknown = m;
  Config cfg = unknown.model_config;
  cfg.set("class_name", std::string("NoSuchModel"));
  unknown.model_config = cfg;
  io::write_file_atomic(e + "/saved_model.pb", io::encode_saved_model(unknown));
  expect_error([&] { load_model(e); }, Code::kNotFound, {"NoSuchModel"});
  // A variables prefix that leaves the directory.
  io::SavedModelManifest escape = m;
  escape.variables_prefix = "../elsewhere/variables";
  io::write_file_atomic(e + "/saved_model.pb", io::encode_saved_model(escape));
  expect_error([&] { load_model(e); }, Code::kDataLoss, {"is not a path inside the export directory"});

  // Truncated variables: DATA_LOSS naming the data file.
  io::write_file_atomic(e + "/saved_model.pb", pb);
  const std::string data = e + "/variables/variables.data-00000-of-00001";
  const std::string bytes = io::read_file(data);
  io::write_file_atomic(data, bytes.substr(0, bytes.size() / 2));
  expect_error([&] { load_model(e); }, Code::kDataLoss, {"variables.data-00000-of-00001"});
  std::filesystem::remove(e + "/variables/variables.index");
  expect_error([&] { load_model(e); }, Code::kDataLoss, {"has no variables"});
}

// A bad-input sweep through the whole loader: manifests whose model config, build shapes,
// signatures or compile config are wrong in one place each must fail with a kiln::Error, never
// crash, and never leave a half-made model behind (load_model returns nothing).
TEST(SavedModel, BadManifestsAreErrorsNotCrashes) {
  testing::TempDir dir;
  const LayerPtr m = small_model();
  compile_adam(m);
  save_model(m, dir / "export");
  const std::string e = dir / "export";
  const std::string good = io::read_file(e + "/saved_model.pb");
  std::filesystem::remove(e + "/fingerprint.pb");  // the manifests below are edited on purpose
  const io::SavedModelManifest base = io::decode_saved_model(good, "test");

  std::vector<std::pair<std::string, std::function<void(io::SavedModelManifest &)>>> cases;
  auto dense_key = [](const std::string &key, Config::Json value) {
    return [key, value](io::SavedModelManifest &x) {
      Config::Json j = x.model_config.json();
      j["config"]["layers"][0]["config"][key] = value;
      x.model_config = Config::from_value(j, "test");
    };
  };
  cases.emplace_back("units -1", dense_key("units", -1));
  cases.emplace_back("units 0.5", dense_key("units", 0.5));
  cases.emplace_back("units text", dense_key("units", "eight"));
  cases.emplace_back("units null", dense_key("units", nullptr));
  cases.emplace_back("units 9 (variables hold 8)", dense_key("units", 9));
  cases.emplace_back("activation unknown", dense_key("activation", "nope"));
  cases.emplace_back("activation number", dense_key("activation", 7));
  cases.emplace_back("kernel_initializer garbage",
                     dense_key("kernel_initializer", Config::Json::array({1, 2})));
  cases.emplace_back("dtype garbage", dense_key("dtype", "float17"));
  cases.emplace_back("layers not a list", [](io::SavedModelManifest &x) {
    Config::Json j = x.model_config.json();
    j["config"]["layers"] = 3;
    x.model_config = Config::from_value(j, "test");
  });
  cases.emplace_back("layer without class", [](io::SavedModelManifest &x) {
    Config::Json j = x.model_config.json();
    j["config"]["layers"][1].erase("class_name");
    x.model_config = Config::from_value(j, "test");
  });
  cases.emplace_back("a layer that is a number", [](io::SavedModelManifest &x) {
    Config::Json j = x.model_config.json();
    j["config"]["layers"][1] = 5;
    x.model_config = Config::from_value(j, "test");
  });
  cases.emplace_back("build shape of rank 3", [](io::SavedModelManifest &x) {
    x.build_inputs[0].dims = {-1, 5, 2};
  });
  cases.emplace_back("build shape 6 wide", [](io::SavedModelManifest &x) {
    x.build_inputs[0].dims = {-1, 6};
  });
  cases.emplace_back("two build shapes",
                     [](io::SavedModelManifest &x) { x.build_inputs.push_back(x.build_inputs[0]); });
  cases.emplace_back("optimizer unknown", [](io::SavedModelManifest &x) {
    Config::Json j = x.compile_config->json();
    j["optimizer"]["class_name"] = "NoSuchOptimizer";
    x.compile_config = Config::from_value(j, "test");
  });
  cases.emplace_back("loss not a list", [](io::SavedModelManifest &x) {
    Config::Json j = x.compile_config->json();
    j["loss"] = 1.5;
    x.compile_config = Config::from_value(j, "test");
  });
  cases.emplace_back("metric unknown", [](io::SavedModelManifest &x) {
    Config::Json j = x.compile_config->json();
    j["metrics"] = Config::Json::array({"no_such_metric"});
    x.compile_config = Config::from_value(j, "test");
  });
  cases.emplace_back("learning rate text", [](io::SavedModelManifest &x) {
    Config::Json j = x.compile_config->json();
    j["optimizer"]["config"]["learning_rate"] = "fast";
    x.compile_config = Config::from_value(j, "test");
  });
  cases.emplace_back("variables elsewhere",
                     [](io::SavedModelManifest &x) { x.variables_prefix = "variables/other"; });

  for (const auto &[name, edit] : cases) {
    io::SavedModelManifest bad = base;
    edit(bad);
    io::write_file_atomic(e + "/saved_model.pb", io::encode_saved_model(bad));
    try {
      (void)load_model(e);
      ADD_FAILURE() << name << ": loaded";
    } catch (const Error &err) {
      EXPECT_NE(std::string(err.what()).find("load_model"), std::string::npos) << name << ": " << err.what();
    }
  }
  io::write_file_atomic(e + "/saved_model.pb", good);
  expect_same_weights(m, load_model(e));  // the directory itself was never harmed
}

}  // namespace
}  // namespace kiln::train
