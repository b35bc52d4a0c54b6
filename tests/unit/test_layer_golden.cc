// Every built-in layer against golden values from PyTorch (tests/golden/layers_golden.json, made
// by tests/golden/make_layer_golden.py): forward outputs, the gradients of sum(output * upstream)
// with respect to the inputs and every trainable weight, and the variables after the call
// (BatchNormalization's moving statistics). One loop over the file's cases; a case whose class
// lands on another branch ("pending") is skipped, and named, while its class is not registered.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "autodiff/tape.h"
#include "core/config.h"
#include "layers/layer.h"
#include "test_util.h"

namespace kiln::layers {
namespace {

using Json = nlohmann::ordered_json;

// The golden file, or null (with a failure that names the file and the parse error).
Json load_golden() {
  const std::string path = testing::source_dir() + "/tests/golden/layers_golden.json";
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path;
    return Json();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) {
    ADD_FAILURE() << path << " is not valid JSON";
    return Json();
  }
  return j;
}

Tensor tensor_from(const Json &t) {
  const std::vector<int64_t> shape = t.at("shape").get<std::vector<int64_t>>();
  const std::string dtype = t.at("dtype").get<std::string>();
  if (dtype == "int32")
    return testing::make_typed<int32_t>(Shape(shape), t.at("data").get<std::vector<int32_t>>());
  if (dtype != "float32") throw std::runtime_error("golden: unknown dtype " + dtype);
  // JSON numbers are doubles; each is the shortest decimal of a float32, so the cast is exact.
  std::vector<float> v;
  for (const Json &x : t.at("data")) v.push_back(static_cast<float>(x.get<double>()));
  return testing::make(Shape(shape), v);
}

struct Tolerance {
  double rtol, atol;
};

// The worst value of one case, and of the whole run, for the report.
struct Worst {
  double ratio = 0;  // |diff| / (atol + rtol |want|): above 1 fails
  double abs_diff = 0;
  double rel_diff = 0;  // |diff| / |want| where want != 0
  std::string where;
  void merge(const Worst &o) {
    if (o.ratio > ratio) {
      ratio = o.ratio;
      where = o.where;
    }
    abs_diff = std::max(abs_diff, o.abs_diff);
    rel_diff = std::max(rel_diff, o.rel_diff);
  }
};

void compare(const Tensor &got, const Json &want_json, const Tolerance &tol, const std::string &what,
             Worst &worst) {
  const Tensor want = tensor_from(want_json);
  ASSERT_TRUE(got.defined()) << what << ": no value";
  ASSERT_EQ(got.dtype(), DType::kFloat32) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const float *g = got.data<float>();
  const float *w = want.data<float>();
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double d = std::fabs(static_cast<double>(g[i]) - w[i]);
    const double bound = tol.atol + tol.rtol * std::fabs(w[i]);
    const double ratio = bound > 0 ? d / bound : (d > 0 ? HUGE_VAL : 0);
    if (ratio > worst.ratio) {
      worst.ratio = ratio;
      worst.where = what + "[" + std::to_string(i) + "]";
    }
    worst.abs_diff = std::max(worst.abs_diff, d);
    if (w[i] != 0) worst.rel_diff = std::max(worst.rel_diff, d / std::fabs(w[i]));
    EXPECT_LE(d, bound) << what << " element " << i << ": kiln " << g[i] << ", golden " << w[i];
  }
}

void run_case(const Json &c, Worst &worst) {
  const std::string name = c.at("name").get<std::string>();
  const Tolerance tol{c.at("tolerance").at("rtol").get<double>(), c.at("tolerance").at("atol").get<double>()};
  LayerPtr layer =
      create_layer(c.at("class_name").get<std::string>(), Config::from_value(c.at("config"), name));

  std::vector<Tensor> inputs;
  std::vector<PartialShape> shapes;
  for (const Json &t : c.at("inputs")) {
    inputs.push_back(tensor_from(t));
    shapes.push_back(partial_shape_of(inputs.back().shape()));
  }
  layer->build(shapes);
  const std::vector<VariablePtr> vars = layer->variables();
  const Json &weights = c.at("weights");
  const Json &weight_grads = c.at("weight_grads");
  ASSERT_EQ(vars.size(), weights.size()) << name << ": variables";
  ASSERT_EQ(vars.size(), weight_grads.size()) << name << ": weight_grads";
  for (size_t i = 0; i < vars.size(); ++i) {
    vars[i]->assign(tensor_from(weights[i]));
    // A golden gradient exactly for the trainable variables.
    EXPECT_EQ(vars[i]->trainable(), !weight_grads[i].is_null()) << name << ": " << vars[i]->name();
  }

  Worst w;
  CallContext ctx;
  ctx.training = c.at("training").get<bool>();
  autodiff::Tape tape(false, true);
  autodiff::GradientSources sources;
  for (const Tensor &x : inputs)
    if (x.dtype() == DType::kFloat32) {
      tape.watch(x);
      sources.push_back(x);
    }
  for (size_t i = 0; i < vars.size(); ++i)
    if (!weight_grads[i].is_null()) sources.push_back(*vars[i]);
  const std::vector<Tensor> outputs = (*layer)(inputs, ctx);
  tape.stop_recording();

  const Json &want_out = c.at("outputs");
  ASSERT_EQ(outputs.size(), want_out.size()) << name << ": outputs";
  for (size_t k = 0; k < outputs.size(); ++k) compare(outputs[k], want_out[k], tol, name + " output", w);

  std::vector<Tensor> upstream;
  for (const Json &u : c.at("upstream")) upstream.push_back(tensor_from(u));
  const std::vector<Tensor> grads =
      sources.empty() ? std::vector<Tensor>{}
                      : tape.gradient(outputs, sources, autodiff::Unconnected::kZero, upstream);
  size_t g = 0;
  const Json &input_grads = c.at("input_grads");
  ASSERT_EQ(input_grads.size(), inputs.size()) << name << ": input_grads";
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (inputs[k].dtype() != DType::kFloat32) {
      EXPECT_TRUE(input_grads[k].is_null()) << name << ": integer input " << k << " has a golden gradient";
      continue;
    }
    compare(grads.at(g++), input_grads[k], tol, name + " d/dinput" + std::to_string(k), w);
  }
  for (size_t i = 0; i < vars.size(); ++i)
    if (!weight_grads[i].is_null())
      compare(grads.at(g++), weight_grads[i], tol, name + " d/d" + vars[i]->name(), w);

  if (c.at("extra").contains("weights_after")) {
    const Json &after = c.at("extra").at("weights_after");
    ASSERT_EQ(after.size(), vars.size()) << name << ": weights_after";
    for (size_t i = 0; i < vars.size(); ++i)
      if (!after[i].is_null())
        compare(vars[i]->peek(), after[i], tol, name + " " + vars[i]->name() + " after", w);
  }
  std::printf(
      "[ golden   ] %-44s max |diff| %.3g, max rel %.3g, worst %.3g of tolerance (rtol %g, atol %g)\n",
      name.c_str(), w.abs_diff, w.rel_diff, w.ratio, tol.rtol, tol.atol);
  worst.merge(w);
}

TEST(LayerGolden, EveryCaseMatchesPyTorch) {
  const Json golden = load_golden();
  ASSERT_TRUE(golden.is_object());
  ASSERT_EQ(golden.at("format").get<std::string>(), "kiln.layer_golden");
  ASSERT_EQ(golden.at("version").get<int>(), 1);
  const Json &cases = golden.at("cases");
  ASSERT_GT(cases.size(), 0u);
  Worst worst;
  std::vector<std::string> skipped;
  size_t ran = 0;
  for (const Json &c : cases) {
    const std::string name = c.at("name").get<std::string>();
    const std::string cls = c.at("class_name").get<std::string>();
    SCOPED_TRACE(name);
    if (!layer_registered(cls)) {
      // Only a class promised by another branch may be missing; anything else is a broken row.
      EXPECT_TRUE(c.contains("pending")) << name << ": class " << cls << " is not registered";
      skipped.push_back(name + " (" + cls + ", branch " + c.value("pending", std::string("?")) + ")");
      continue;
    }
    run_case(c, worst);
    ++ran;
  }
  std::printf(
      "[ golden   ] %zu cases run; worst %s at %.3g of its tolerance; max |diff| %.3g, max rel %.3g\n", ran,
      worst.where.c_str(), worst.ratio, worst.abs_diff, worst.rel_diff);
  if (!skipped.empty()) {
    std::printf("[ golden   ] %zu cases skipped, class not registered yet:\n", skipped.size());
    for (const std::string &s : skipped) std::printf("[ golden   ]   %s\n", s.c_str());
  }
}

}  // namespace
}  // namespace kiln::layers
