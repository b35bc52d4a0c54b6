// Convolution and pooling layers in the C++ core: Keras's configs and defaults, outputs against
// reference loops written here, compute_output_shape against real outputs, gradients through a
// tape against central differences, errors naming the layer, and a small CNN as Keras counts it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autodiff/tape.h"
#include "conv_test_util.h"
#include "core/error.h"
#include "layers/layer.h"
#include "layers/sequential.h"
#include "ops/conv3d.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln::layers {
namespace {

using ops::Padding;
using testing::expect_error;
using testing::random_tensor;
using testing::values;

LayerPtr make_layer(const std::string &cls, const std::string &json) {
  return create_layer(cls, Config::from_json(json));
}

// Gives every variable of a built layer random values (biases too, so that they are checked).
void randomize(const Layer &l, unsigned seed) {
  for (const VariablePtr &v : l.variables()) v->assign(random_tensor(v->shape(), seed++));
}

// x [N, H, W, C] at (n, y, x, c), or 0 outside (padding).
float at(const Tensor &x, int64_t n, int64_t y, int64_t xx, int64_t c) {
  const Shape &s = x.shape();
  if (y < 0 || y >= s[1] || xx < 0 || xx >= s[2]) return 0;
  return x.data<float>()[((n * s[1] + y) * s[2] + xx) * s[3] + c];
}

struct Window {
  int64_t kh, kw, sh, sw, dh, dw;
  Padding p;
};

// Reference conv2d (depthwise: filter [KH, KW, C, M], output channel c * M + m), TF's padding.
std::vector<float> ref_conv(const Tensor &x, const Tensor &f, const Window &w, bool depthwise,
                            Shape *out_shape) {
  const Shape &s = x.shape();
  const auto ay = testing::window_axis(s[1], w.kh, w.sh, w.dh, w.p),
             ax = testing::window_axis(s[2], w.kw, w.sw, w.dw, w.p);
  const int64_t ci = s[3], m = f.shape()[3], co = depthwise ? ci * m : m;
  *out_shape = Shape({s[0], ay.out, ax.out, co});
  std::vector<float> y;
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t oy = 0; oy < ay.out; ++oy)
      for (int64_t ox = 0; ox < ax.out; ++ox)
        for (int64_t o = 0; o < co; ++o) {
          double acc = 0;
          for (int64_t ky = 0; ky < w.kh; ++ky)
            for (int64_t kx = 0; kx < w.kw; ++kx) {
              const int64_t iy = oy * w.sh - ay.before + ky * w.dh, ix = ox * w.sw - ax.before + kx * w.dw;
              for (int64_t c = 0; c < ci; ++c) {
                if (depthwise && c != o / m) continue;
                const int64_t fo = depthwise ? o % m : o;
                acc += double(at(x, n, iy, ix, c)) * f.data<float>()[((ky * w.kw + kx) * ci + c) * m + fo];
              }
            }
          y.push_back(float(acc));
        }
  return y;
}

// Reference conv2d_transpose: every input cell scatters its filter window into y [N, OH, OW, O].
std::vector<float> ref_conv_transpose(const Tensor &x, const Tensor &f, const Window &w, int64_t oh,
                                      int64_t ow) {
  const Shape &s = x.shape();
  const int64_t o_ch = f.shape()[2], ci = s[3];
  const int64_t top = testing::window_axis(oh, w.kh, w.sh, w.dh, w.p).before;
  const int64_t left = testing::window_axis(ow, w.kw, w.sw, w.dw, w.p).before;
  std::vector<double> y(size_t(s[0] * oh * ow * o_ch), 0.0);
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t iy = 0; iy < s[1]; ++iy)
      for (int64_t ix = 0; ix < s[2]; ++ix)
        for (int64_t ky = 0; ky < w.kh; ++ky)
          for (int64_t kx = 0; kx < w.kw; ++kx) {
            const int64_t oy = iy * w.sh - top + ky * w.dh, ox = ix * w.sw - left + kx * w.dw;
            if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
            for (int64_t o = 0; o < o_ch; ++o)
              for (int64_t c = 0; c < ci; ++c)
                y[size_t(((n * oh + oy) * ow + ox) * o_ch + o)] +=
                    double(at(x, n, iy, ix, c)) * f.data<float>()[((ky * w.kw + kx) * o_ch + o) * ci + c];
          }
  return std::vector<float>(y.begin(), y.end());
}

// Reference pooling over the cells inside the input (TF: padding is not averaged in).
std::vector<float> ref_pool(const Tensor &x, const Window &w, bool max, Shape *out_shape) {
  const Shape &s = x.shape();
  const auto ay = testing::window_axis(s[1], w.kh, w.sh, 1, w.p),
             ax = testing::window_axis(s[2], w.kw, w.sw, 1, w.p);
  *out_shape = Shape({s[0], ay.out, ax.out, s[3]});
  std::vector<float> y;
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t oy = 0; oy < ay.out; ++oy)
      for (int64_t ox = 0; ox < ax.out; ++ox)
        for (int64_t c = 0; c < s[3]; ++c) {
          double acc = max ? -std::numeric_limits<double>::infinity() : 0;
          int64_t cells = 0;
          for (int64_t ky = 0; ky < w.kh; ++ky)
            for (int64_t kx = 0; kx < w.kw; ++kx) {
              const int64_t iy = oy * w.sh - ay.before + ky, ix = ox * w.sw - ax.before + kx;
              if (iy < 0 || iy >= s[1] || ix < 0 || ix >= s[2]) continue;
              const double v = at(x, n, iy, ix, c);
              acc = max ? std::max(acc, v) : acc + v;
              ++cells;
            }
          y.push_back(float(max ? acc : acc / double(cells)));
        }
  return y;
}

std::vector<float> relu(std::vector<float> v) {
  for (float &x : v) x = std::max(x, 0.0f);
  return v;
}

// Adds bias [C] along the last axis.
std::vector<float> plus_bias(std::vector<float> v, const Tensor &bias) {
  const int64_t c = bias.num_elements();
  for (size_t i = 0; i < v.size(); ++i) v[i] += bias.data<float>()[int64_t(i) % c];
  return v;
}

// The layer's output for x, its compute_output_shape for x's shape and for x's shape with the
// batch unknown must agree.
void expect_shapes_agree(Layer &l, const Tensor &y, const Shape &x_shape) {
  PartialShape xs = partial_shape_of(x_shape), want = partial_shape_of(y.shape());
  EXPECT_EQ(l.compute_output_shape({xs}), std::vector<PartialShape>{want}) << l.name();
  xs[0] = want[0] = kUnknownDim;
  EXPECT_EQ(l.compute_output_shape({xs}), std::vector<PartialShape>{want}) << l.name();
}

// layer(x) must have want_shape and want's values, and compute_output_shape must agree with it.
void expect_output(Layer &l, const Tensor &x, const Shape &want_shape, const std::vector<float> &want,
                   const std::string &what, float tol = 1e-4f) {
  const Tensor y = l(x);
  ASSERT_EQ(y.shape(), want_shape) << what;
  testing::expect_near(y, want, tol, what);
  expect_shapes_agree(l, y, x.shape());
}

// The tape's gradients of sum(layer(x) * w) with respect to x and every trainable variable,
// against central differences.
void check_layer_gradients(Layer &l, const Tensor &x) {
  const std::vector<VariablePtr> vars = l.trainable_variables();
  Tensor w;
  std::vector<Tensor> grads;
  {
    autodiff::Tape tape(false, true);
    tape.watch(x);
    const Tensor y = l(x);
    w = random_tensor(y.shape(), 77u);
    autodiff::GradientSources sources{x};
    for (const VariablePtr &v : vars) sources.push_back(*v);
    grads = tape.gradient(y, sources, autodiff::Unconnected::kZero, w);
  }
  auto objective = [&](const Tensor &xi) {
    const Tensor y = l(xi);
    double s = 0;
    for (int64_t i = 0; i < y.num_elements(); ++i) s += double(y.data<float>()[i]) * w.data<float>()[i];
    return s;
  };
  const float eps = 1e-2f;
  auto check = [&](const Tensor &g, const std::vector<float> &base,
                   const std::function<void(const std::vector<float> &)> &set,
                   const std::function<double()> &f, const std::string &what) {
    ASSERT_TRUE(g.defined()) << what;
    for (size_t i = 0; i < base.size(); ++i) {
      std::vector<float> v = base;
      v[i] = base[i] + eps;
      set(v);
      const double up = f();
      v[i] = base[i] - eps;
      set(v);
      const double down = f();
      const double numeric = (up - down) / (2.0 * eps);
      EXPECT_NEAR(g.data<float>()[i], numeric, 3e-3 + 2e-2 * std::fabs(numeric)) << what << " element " << i;
    }
    set(base);
  };
  Tensor xi = x;
  check(
      grads[0], values(x), [&](const std::vector<float> &v) { xi = testing::make(x.shape(), v); },
      [&] { return objective(xi); }, l.name() + " d/dx");
  for (size_t k = 0; k < vars.size(); ++k) {
    const VariablePtr &v = vars[k];
    check(
        grads[k + 1], values(v->peek()),
        [&](const std::vector<float> &vals) { v->assign(testing::make(v->shape(), vals)); },
        [&] { return objective(x); }, v->name());
  }
}

class ConvLayersTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_session(); }
};

TEST_F(ConvLayersTest, ConfigsHoldKerasKeysAndDefaults) {
  LayerPtr conv = make_layer("Conv2D", R"({"filters": 4, "kernel_size": 3})");
  EXPECT_EQ(
      conv->get_config().to_json(),
      R"({"name":"conv2d","trainable":true,"dtype":"float32","filters":4,"kernel_size":[3,3],"strides":[1,1],)"
      R"("padding":"valid","data_format":"channels_last","dilation_rate":[1,1],"groups":1,"activation":"linear",)"
      R"("use_bias":true,"kernel_initializer":{"class_name":"GlorotUniform","config":{"seed":null}},)"
      R"("bias_initializer":{"class_name":"Zeros","config":{}},"kernel_regularizer":null,"bias_regularizer":null,)"
      R"("activity_regularizer":null,"kernel_constraint":null,"bias_constraint":null})");
  LayerPtr dw = make_layer("DepthwiseConv2D", R"({"kernel_size": [3, 2], "padding": "SAME"})");
  const Config dc = dw->get_config();
  EXPECT_EQ(dc.keys(),
            (std::vector<std::string>{"name", "trainable", "dtype", "depth_multiplier", "kernel_size",
                                      "strides", "padding", "data_format", "dilation_rate", "activation",
                                      "use_bias", "depthwise_initializer", "bias_initializer",
                                      "depthwise_regularizer", "bias_regularizer", "activity_regularizer",
                                      "depthwise_constraint", "bias_constraint"}));
  EXPECT_EQ(dc.get_int("depth_multiplier"), 1);
  EXPECT_EQ(dc.get_string("padding"), "same");  // lower-cased, as Keras
  EXPECT_EQ(dc.get_int_list("kernel_size"), (std::vector<int64_t>{3, 2}));
  const Config tc =
      make_layer("Conv2DTranspose", R"({"filters": 2, "kernel_size": 3, "strides": 2})")->get_config();
  EXPECT_EQ(tc.get_int_list("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_TRUE(tc.is_null("output_padding"));
  EXPECT_FALSE(tc.has("groups"));
  EXPECT_EQ(
      make_layer("Conv1D", R"({"filters": 2, "kernel_size": 5})")->get_config().get_int_list("kernel_size"),
      (std::vector<int64_t>{5}));
  EXPECT_EQ(
      make_layer("MaxPooling2D", "{}")->get_config().to_json(),
      R"({"name":"max_pooling2d","trainable":true,"dtype":"float32","pool_size":[2,2],"padding":"valid",)"
      R"("strides":[2,2],"data_format":"channels_last"})");
  EXPECT_EQ(make_layer("AveragePooling2D", R"({"pool_size": 3, "strides": 1})")
                ->get_config()
                .get_int_list("strides"),
            (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(
      make_layer("GlobalAveragePooling2D", "{}")->get_config().to_json(),
      R"({"name":"global_average_pooling2d","trainable":true,"dtype":"float32","data_format":"channels_last",)"
      R"("keepdims":false})");
  // Every class and alias round-trips through the registry; aliases make the class itself.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Conv1D", R"({"filters": 3, "kernel_size": 2, "padding": "causal", "dilation_rate": 2})"},
      {"Convolution1D", R"({"filters": 3, "kernel_size": 2})"},
      {"Conv2D",
       R"({"filters": 3, "kernel_size": [1, 3], "strides": [2, 1], "activation": "relu", "use_bias": false})"},
      {"Convolution2D", R"({"filters": 3, "kernel_size": 2, "kernel_regularizer": "l2"})"},
      {"DepthwiseConv2D",
       R"({"kernel_size": 3, "depth_multiplier": 2, "depthwise_initializer": "he_normal"})"},
      {"Conv2DTranspose", R"({"filters": 3, "kernel_size": 3, "strides": 2, "output_padding": 1})"},
      {"Convolution2DTranspose", R"({"filters": 3, "kernel_size": 3})"},
      {"SeparableConv2D",
       R"({"filters": 3, "kernel_size": 3, "depth_multiplier": 2, "pointwise_regularizer": "l2"})"},
      {"SeparableConvolution1D", R"({"filters": 2, "kernel_size": 2, "pointwise_initializer": "he_normal"})"},
      {"MaxPooling1D", "{}"},
      {"MaxPool1D", R"({"pool_size": 3})"},
      {"MaxPool2D", R"({"padding": "same"})"},
      {"AveragePooling1D", "{}"},
      {"AvgPool1D", "{}"},
      {"AvgPool2D", R"({"pool_size": [2, 3], "strides": [1, 2]})"},
      {"GlobalAveragePooling1D", "{}"},
      {"GlobalAvgPool1D", "{}"},
      {"GlobalAvgPool2D", R"({"keepdims": true})"},
      {"GlobalMaxPooling1D", "{}"},
      {"GlobalMaxPool1D", "{}"},
      {"GlobalMaxPooling2D", "{}"},
      {"GlobalMaxPool2D", "{}"}};
  for (const auto &[cls, json] : cases) {
    LayerPtr l = make_layer(cls, json);
    const Config c = l->get_config();
    LayerPtr back = deserialize_layer(serialize_layer(*l));
    EXPECT_EQ(back->class_name(), l->class_name()) << cls;
    EXPECT_EQ(back->get_config(), c) << cls;
  }
  EXPECT_EQ(make_layer("MaxPool2D", "{}")->class_name(), "MaxPooling2D");
  EXPECT_EQ(make_layer("GlobalAvgPool2D", "{}")->name(), "global_average_pooling2d_2");
  EXPECT_EQ(make_layer("Convolution2DTranspose", R"({"filters": 1, "kernel_size": 1})")->name(),
            "conv2d_transpose_3");
}

TEST_F(ConvLayersTest, Conv2DMatchesAReferenceLoop) {
  struct Case {
    Shape x;
    int64_t filters;
    std::string json;  // the layer's config beyond filters
    Window w;
  };
  const std::vector<Case> cases = {
      {{2, 5, 7, 3}, 4, R"("kernel_size": 3)", {3, 3, 1, 1, 1, 1, Padding::kValid}},
      {{1, 6, 5, 2},
       3,
       R"("kernel_size": [2, 3], "strides": [2, 1], "padding": "same")",
       {2, 3, 2, 1, 1, 1, Padding::kSame}},
      {{2, 7, 7, 1},
       2,
       R"("kernel_size": 3, "dilation_rate": 2, "padding": "same")",
       {3, 3, 1, 1, 2, 2, Padding::kSame}},
      {{1, 9, 8, 3}, 5, R"("kernel_size": [3, 1], "strides": 3)", {3, 1, 3, 3, 1, 1, Padding::kValid}},
  };
  unsigned seed = 1;
  for (const Case &k : cases) {
    LayerPtr l = make_layer("Conv2D", R"({"filters": )" + std::to_string(k.filters) + ", " + k.json +
                                          R"(, "activation": "relu"})");
    const Tensor x = random_tensor(k.x, seed++);
    l->build({partial_shape_of(k.x)});
    ASSERT_EQ(l->variables().size(), 2u);
    EXPECT_EQ(l->variables()[0]->shape(), Shape({k.w.kh, k.w.kw, k.x[3], k.filters}));
    EXPECT_EQ(l->variables()[0]->name(), l->name() + "/kernel");
    randomize(*l, seed++);
    Shape s;
    const std::vector<float> want =
        relu(plus_bias(ref_conv(x, l->variables()[0]->peek(), k.w, false, &s), l->variables()[1]->peek()));
    expect_output(*l, x, s, want, k.json);
  }
}

TEST_F(ConvLayersTest, Conv1DMatchesAReferenceLoopIncludingCausalPadding) {
  const Tensor x = random_tensor({2, 9, 3}, 3);
  const Tensor x4 = ops::expand_dims(x, 1);  // [N, 1, W, C]: the reference's 2-D layout
  struct Case {
    std::string json;
    Window w;
  };
  for (const Case &k :
       std::vector<Case>{{R"("kernel_size": 3, "strides": 2)", {1, 3, 1, 2, 1, 1, Padding::kValid}},
                         {R"("kernel_size": 4, "padding": "same")", {1, 4, 1, 1, 1, 1, Padding::kSame}},
                         {R"("kernel_size": 2, "dilation_rate": 3)", {1, 2, 1, 1, 1, 3, Padding::kValid}}}) {
    LayerPtr l = make_layer("Conv1D", R"({"filters": 4, )" + k.json + "}");
    l->build({{kUnknownDim, 9, 3}});
    randomize(*l, 5);
    ASSERT_EQ(l->variables()[0]->shape(), Shape({k.w.kw, 3, 4}));
    Shape s;
    const Tensor f4 = ops::expand_dims(l->variables()[0]->peek(), 0);
    const std::vector<float> want = plus_bias(ref_conv(x4, f4, k.w, false, &s), l->variables()[1]->peek());
    expect_output(*l, x, Shape({s[0], s[2], s[3]}), want, k.json);
  }
  // Causal: output t sees inputs <= t only, i.e. a valid convolution of x padded on the left.
  LayerPtr causal =
      make_layer("Conv1D", R"({"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "causal"})");
  causal->build({{kUnknownDim, 9, 3}});
  randomize(*causal, 9);
  const Tensor padded = ops::expand_dims(ops::pad(x, {0, 0, 4, 0, 0, 0}), 1);
  Shape s;
  const std::vector<float> want =
      plus_bias(ref_conv(padded, ops::expand_dims(causal->variables()[0]->peek(), 0),
                         {1, 3, 1, 1, 1, 2, Padding::kValid}, false, &s),
                causal->variables()[1]->peek());
  expect_output(*causal, x, Shape({2, 9, 2}), want, "causal");
}

TEST_F(ConvLayersTest, DepthwiseConv2DMatchesAReferenceLoop) {
  const Tensor x = random_tensor({2, 6, 5, 3}, 11);
  for (const std::string padding : {"valid", "same"}) {
    LayerPtr l =
        make_layer("DepthwiseConv2D",
                   R"({"kernel_size": [3, 2], "depth_multiplier": 2, "strides": [1, 2], "padding": ")" +
                       padding + R"("})");
    l->build({{kUnknownDim, 6, 5, 3}});
    ASSERT_EQ(l->variables().size(), 2u);
    EXPECT_EQ(l->variables()[0]->name(), l->name() + "/depthwise_kernel");
    EXPECT_EQ(l->variables()[0]->shape(), Shape({3, 2, 3, 2}));
    EXPECT_EQ(l->variables()[1]->shape(), Shape({6}));
    randomize(*l, 12);
    Shape s;
    const Window w{3, 2, 1, 2, 1, 1, padding == "same" ? Padding::kSame : Padding::kValid};
    const std::vector<float> want =
        plus_bias(ref_conv(x, l->variables()[0]->peek(), w, true, &s), l->variables()[1]->peek());
    expect_output(*l, x, s, want, padding);
  }
}

TEST_F(ConvLayersTest, Conv2DTransposeMatchesAReferenceLoop) {
  const Tensor x = random_tensor({2, 3, 4, 3}, 21);
  struct Case {
    std::string json;
    Window w;
    int64_t oh, ow;  // Keras's deconv_output_length
  };
  const std::vector<Case> cases = {
      {R"("kernel_size": 3, "strides": 2)", {3, 3, 2, 2, 1, 1, Padding::kValid}, 7, 9},
      {R"("kernel_size": 3, "strides": 2, "padding": "same")", {3, 3, 2, 2, 1, 1, Padding::kSame}, 6, 8},
      {R"("kernel_size": [2, 3], "strides": [1, 2])", {2, 3, 1, 2, 1, 1, Padding::kValid}, 4, 9},
      {R"("kernel_size": 3, "strides": 2, "output_padding": 1)", {3, 3, 2, 2, 1, 1, Padding::kValid}, 8, 10},
      {R"("kernel_size": 3, "strides": 3, "padding": "same", "output_padding": [2, 0])",
       {3, 3, 3, 3, 1, 1, Padding::kSame},
       9,
       10},
      {R"("kernel_size": 2, "dilation_rate": 2)", {2, 2, 1, 1, 2, 2, Padding::kValid}, 5, 6},
  };
  for (const Case &k : cases) {
    LayerPtr l = make_layer("Conv2DTranspose", R"({"filters": 2, )" + k.json + "}");
    l->build({partial_shape_of(x.shape())});
    EXPECT_EQ(l->variables()[0]->shape(), Shape({k.w.kh, k.w.kw, 2, 3}));  // [kh, kw, filters, in], as TF
    randomize(*l, 22);
    const std::vector<float> want = plus_bias(
        ref_conv_transpose(x, l->variables()[0]->peek(), k.w, k.oh, k.ow), l->variables()[1]->peek());
    expect_output(*l, x, Shape({2, k.oh, k.ow, 2}), want, k.json);
  }
}

// DepthwiseConv1D and Conv1DTranspose against the 2-D reference loops over a height of 1 (x [N, 1, W,
// C], the kernel with a leading 1), with Keras's output lengths.
TEST_F(ConvLayersTest, DepthwiseConv1DAndConv1DTransposeMatchReferenceLoops) {
  const Tensor x = random_tensor({2, 7, 3}, 23);
  const Tensor x4 = ops::reshape(x, {2, 1, 7, 3});
  for (const std::string padding : {"valid", "same"}) {
    for (int64_t stride : {1, 2}) {
      const std::string dw = R"({"kernel_size": 3, "depth_multiplier": 2, "strides": )" +
                             std::to_string(stride) + R"(, "padding": ")" + padding + R"("})";
      LayerPtr l = make_layer("DepthwiseConv1D", dw);
      l->build({partial_shape_of(x.shape())});
      EXPECT_EQ(l->variables()[0]->shape(), Shape({3, 3, 2}));  // [kw, C, depth_multiplier]
      randomize(*l, 24);
      Shape s;
      const Padding p = padding == "same" ? Padding::kSame : Padding::kValid;
      const Tensor k4 = ops::reshape(l->variables()[0]->peek(), {1, 3, 3, 2});
      const std::vector<float> want =
          plus_bias(ref_conv(x4, k4, {1, 3, 1, stride, 1, 1, p}, true, &s), l->variables()[1]->peek());
      expect_output(*l, x, Shape({2, s[2], 6}), want, dw);

      const std::string tj = R"({"filters": 2, "kernel_size": 3, "strides": )" + std::to_string(stride) +
                             R"(, "padding": ")" + padding + R"(", "dilation_rate": )" +
                             (stride == 1 ? "2" : "1") + "}";
      LayerPtr t = make_layer("Conv1DTranspose", tj);
      t->build({partial_shape_of(x.shape())});
      EXPECT_EQ(t->variables()[0]->shape(), Shape({3, 2, 3}));  // [kw, filters, C], as TF
      randomize(*t, 25);
      const int64_t dil = stride == 1 ? 2 : 1, span = (3 - 1) * dil + 1;
      const int64_t ow = padding == "same" ? 7 * stride : 7 * stride + std::max<int64_t>(span - stride, 0);
      const Tensor tk4 = ops::reshape(t->variables()[0]->peek(), {1, 3, 2, 3});
      const std::vector<float> want_t = plus_bias(
          ref_conv_transpose(x4, tk4, {1, 3, 1, stride, 1, dil, p}, 1, ow), t->variables()[1]->peek());
      expect_output(*t, x, Shape({2, ow, 2}), want_t, tj);
    }
  }
  // output_padding lengthens the output by its amount (Keras's deconv_output_length): 7 * 2 + 1 + 1
  LayerPtr op =
      make_layer("Conv1DTranspose", R"({"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1})");
  EXPECT_EQ((*op)(x, false).shape(), Shape({2, 16, 2}));
  EXPECT_EQ(op->compute_output_shape({{kUnknownDim, 7, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, 16, 2}}));
}

TEST_F(ConvLayersTest, PoolingMatchesReferenceLoops) {
  const Tensor x = random_tensor({2, 7, 6, 3}, 31);
  struct Case {
    std::string json;
    Window w;
  };
  const std::vector<Case> cases = {
      {"{}", {2, 2, 2, 2, 1, 1, Padding::kValid}},
      {R"({"pool_size": 3, "strides": 2, "padding": "same"})", {3, 3, 2, 2, 1, 1, Padding::kSame}},
      {R"({"pool_size": [2, 3], "strides": 1})", {2, 3, 1, 1, 1, 1, Padding::kValid}},
      {R"({"pool_size": 2, "padding": "same"})", {2, 2, 2, 2, 1, 1, Padding::kSame}},
  };
  for (const bool max : {true, false})
    for (const Case &k : cases) {
      LayerPtr l = make_layer(max ? "MaxPooling2D" : "AveragePooling2D", k.json);
      Shape s;
      const std::vector<float> want = ref_pool(x, k.w, max, &s);
      expect_output(*l, x, s, want, l->name() + " " + k.json, 1e-5f);
      EXPECT_TRUE(l->variables().empty());
    }
  // 1-D pooling is 2-D pooling over a height of 1.
  const Tensor x3 = random_tensor({2, 9, 4}, 32);
  for (const bool max : {true, false}) {
    LayerPtr l = make_layer(max ? "MaxPooling1D" : "AveragePooling1D",
                            R"({"pool_size": 3, "strides": 2, "padding": "same"})");
    Shape s;
    const std::vector<float> want =
        ref_pool(ops::expand_dims(x3, 1), {1, 3, 1, 2, 1, 1, Padding::kSame}, max, &s);
    expect_output(*l, x3, Shape({2, 5, 4}), want, l->name(), 1e-5f);
  }
}

TEST_F(ConvLayersTest, GlobalPoolingReducesTheSpatialAxes) {
  const Tensor x = random_tensor({2, 3, 4, 5}, 41);
  for (const bool max : {true, false})
    for (const bool keepdims : {false, true}) {
      LayerPtr l = make_layer(max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D",
                              std::string(R"({"keepdims": )") + (keepdims ? "true" : "false") + "}");
      std::vector<float> want;
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t c = 0; c < 5; ++c) {
          double acc = max ? -1e30 : 0;
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 4; ++j)
              acc = max ? std::max(acc, double(at(x, n, i, j, c))) : acc + at(x, n, i, j, c);
          want.push_back(float(max ? acc : acc / 12));
        }
      expect_output(*l, x, keepdims ? Shape({2, 1, 1, 5}) : Shape({2, 5}), want, l->name(), 1e-5f);
    }
  const Tensor x3 = random_tensor({2, 6, 3}, 42);
  LayerPtr avg1 = make_layer("GlobalAveragePooling1D", "{}");
  testing::expect_near((*avg1)(x3), values(ops::mean(x3, {1})), 1e-6f);
  LayerPtr max1 = make_layer("GlobalMaxPooling1D", R"({"keepdims": true})");
  EXPECT_EQ((*max1)(x3).shape(), Shape({2, 1, 3}));
  expect_error([&] { (*avg1)(x); }, Code::kInvalidArgument,
               {"layer 'global_average_pooling1d' (GlobalAveragePooling1D)", "expected rank 3"});
}

TEST_F(ConvLayersTest, UnknownDimsStayUnknownInComputeOutputShape) {
  LayerPtr conv = make_layer("Conv2D", R"({"filters": 8, "kernel_size": 3, "strides": 2})");
  EXPECT_EQ(conv->compute_output_shape({{kUnknownDim, kUnknownDim, 9, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, kUnknownDim, 4, 8}}));
  LayerPtr up =
      make_layer("Conv2DTranspose", R"({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"})");
  EXPECT_EQ(up->compute_output_shape({{kUnknownDim, 5, kUnknownDim, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, 10, kUnknownDim, 2}}));
  LayerPtr pool = make_layer("MaxPooling2D", "{}");
  EXPECT_EQ(pool->compute_output_shape({{kUnknownDim, kUnknownDim, kUnknownDim, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, kUnknownDim, kUnknownDim, 3}}));
  LayerPtr gap = make_layer("GlobalAveragePooling2D", "{}");
  EXPECT_EQ(gap->compute_output_shape({{kUnknownDim, 7, 7, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, 3}}));
}

TEST_F(ConvLayersTest, GradientsThroughATapeMatchCentralDifferences) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Conv2D",
       R"({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "tanh"})"},
      {"Conv1D", R"({"filters": 2, "kernel_size": 2, "padding": "causal"})"},
      {"DepthwiseConv2D", R"({"kernel_size": 2, "depth_multiplier": 2})"},
      {"SeparableConv2D", R"({"filters": 3, "kernel_size": 2, "depth_multiplier": 2, "activation": "tanh"})"},
      {"SeparableConv1D", R"({"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"})"},
      {"Conv2DTranspose", R"({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"})"},
      {"Conv1DTranspose", R"({"filters": 2, "kernel_size": 3, "strides": 2})"},
      {"DepthwiseConv1D", R"({"kernel_size": 2, "depth_multiplier": 2, "strides": 2, "padding": "same"})"},
      {"MaxPooling2D", R"({"pool_size": 2, "strides": 1})"},
      {"AveragePooling2D", R"({"pool_size": 3, "strides": 2, "padding": "same"})"},
      {"GlobalAveragePooling2D", "{}"},
      {"GlobalMaxPooling1D", "{}"}};
  for (const auto &[cls, json] : cases) {
    LayerPtr l = make_layer(cls, json);
    const Tensor x =
        random_tensor(cls.find("1D") != std::string::npos ? Shape({2, 5, 2}) : Shape({1, 4, 5, 2}), 51);
    l->build({partial_shape_of(x.shape())});
    randomize(*l, 52);
    check_layer_gradients(*l, x);
  }
}

TEST_F(ConvLayersTest, ErrorsNameTheLayerOrTheClass) {
  LayerPtr conv = make_layer("Conv2D", R"({"filters": 2, "kernel_size": 3})");
  expect_error(
      [&] {
        (*conv)(random_tensor({2, 5, 5}, 1));
      },
      Code::kInvalidArgument, {"layer 'conv2d' (Conv2D)", "expected rank 4"});
  (*conv)(random_tensor({1, 5, 5, 3}, 1));
  expect_error(
      [&] {
        (*conv)(random_tensor({1, 5, 5, 2}, 1));
      },
      Code::kInvalidArgument, {"layer 'conv2d' (Conv2D)", "expected the last axis to be 3"});
  expect_error(
      [&] {
        conv->compute_output_shape({{kUnknownDim, 5, 5, 2}});
      },
      Code::kInvalidArgument, {"layer 'conv2d' (Conv2D)", "has 2 channels; the layer was built for 3"});
  LayerPtr big = make_layer("Conv2D", R"({"filters": 2, "kernel_size": 5})");
  expect_error(
      [&] {
        big->build({{kUnknownDim, 4, 9, 1}}), big->compute_output_shape({{kUnknownDim, 4, 9, 1}});
      },
      Code::kInvalidArgument, {"layer 'conv2d_1' (Conv2D)", "too small for a window of 5"});
  expect_error(
      [&] { make_layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "data_format": "channels_first"})"); },
      Code::kUnimplemented, {"Conv2D: data_format 'channels_first'"});
  expect_error([&] { make_layer("MaxPooling2D", R"({"data_format": "nhwc"})"); }, Code::kInvalidArgument,
               {"MaxPooling2D: data_format 'nhwc'"});
  expect_error([&] { make_layer("Conv2D", R"({"filters": 2})"); }, Code::kInvalidArgument,
               {"Conv2D: config key 'kernel_size' is required"});
  expect_error([&] { make_layer("Conv2D", R"({"filters": 0, "kernel_size": 3})"); }, Code::kInvalidArgument,
               {"Conv2D: filters must be positive"});
  expect_error([&] { make_layer("Conv2D", R"({"filters": 2, "kernel_size": [3, 3, 3]})"); },
               Code::kInvalidArgument,
               {"Conv2D: kernel_size must be an int or a tuple of 2 ints", "(3, 3, 3)"});
  expect_error([&] { make_layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "padding": "causal"})"); },
               Code::kInvalidArgument, {"Conv2D: padding 'causal' must be 'valid' or 'same'"});
  expect_error(
      [&] { make_layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2})"); },
      Code::kInvalidArgument, {"Conv2D: strides (2, 2) > 1 together with dilation_rate (2, 2)"});
  expect_error([&] { make_layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "groups": 2})"); },
               Code::kUnimplemented, {"Conv2D: groups 2"});
  expect_error(
      [&] { make_layer("Conv2DTranspose", R"({"filters": 2, "kernel_size": 3, "output_padding": 1})"); },
      Code::kInvalidArgument, {"output_padding (1, 1) must be smaller than strides (1, 1)"});
  expect_error(
      [&] { make_layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "kernel_constraint": "non_neg"})"); },
      Code::kUnimplemented, {"kernel_constraint"});
  expect_error([&] { make_layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "dtype": "float64"})"); },
               Code::kUnimplemented, {"Conv2D: dtype float64"});
  expect_error([&] { make_layer("MaxPooling2D", R"({"pool_size": 0})"); }, Code::kInvalidArgument,
               {"MaxPooling2D: pool_size values must be >= 1"});
  expect_error([&] { make_layer("DepthwiseConv2D", R"({"kernel_size": 3, "filters": 2})"); },
               Code::kInvalidArgument, {"filters"});  // not a DepthwiseConv2D key
  LayerPtr pool = make_layer("MaxPooling2D", "{}");
  expect_error(
      [&] {
        pool->compute_output_shape({{kUnknownDim, 4, 4}});
      },
      Code::kInvalidArgument, {"layer 'max_pooling2d_2' (MaxPooling2D)", "expected rank 4"});
}

// The small CNN of the Keras guides: shapes, parameter counts and summary as Keras gives them,
// and one gradient step that lowers the loss.
TEST_F(ConvLayersTest, SmallCnnBuildsCountsAndTrainsOneStep) {
  auto seq = std::dynamic_pointer_cast<Sequential>(create_layer("Sequential", Config()));
  ASSERT_TRUE(seq);
  seq->add(make_layer("Conv2D", R"({"filters": 8, "kernel_size": 3, "activation": "relu"})"));
  seq->add(make_layer("MaxPooling2D", "{}"));
  seq->add(make_layer("Conv2D", R"({"filters": 16, "kernel_size": 3, "activation": "relu"})"));
  seq->add(make_layer("GlobalAveragePooling2D", "{}"));
  seq->add(make_layer("Dense", R"({"units": 10})"));
  seq->build({{kUnknownDim, 28, 28, 1}});
  const std::vector<int64_t> params = {80, 0, 1168, 0, 170};
  const std::vector<PartialShape> shapes = {{kUnknownDim, 26, 26, 8},
                                            {kUnknownDim, 13, 13, 8},
                                            {kUnknownDim, 11, 11, 16},
                                            {kUnknownDim, 16},
                                            {kUnknownDim, 10}};
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(seq->layers()[i]->count_params(), params[i]) << i;
    EXPECT_EQ(seq->layers()[i]->output_shapes(), std::vector<PartialShape>{shapes[i]}) << i;
  }
  EXPECT_EQ(seq->count_params(), 1418);
  const std::string s = summary(*seq);
  EXPECT_NE(s.find(" conv2d (Conv2D)             (None, 26, 26, 8)         80        \n"), std::string::npos)
      << s;
  // Long names wrap as in Keras's print_row.
  EXPECT_NE(s.find(" max_pooling2d (MaxPooling2D  (None, 13, 13, 8)        0         \n"
                   " )                                                               \n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("Total params: 1418 (5.54 KB)"), std::string::npos) << s;

  const Tensor x = random_tensor({4, 28, 28, 1}, 61, 0.0f, 1.0f);
  const Tensor labels = testing::make_typed<int32_t>({4}, {1, 7, 3, 0});
  const auto vars = seq->trainable_variables();
  ASSERT_EQ(vars.size(), 6u);
  auto loss_of = [&] {
    return ops::mean(ops::sparse_softmax_cross_entropy_with_logits(labels, (*seq)(x, true)));
  };
  std::vector<Tensor> grads;
  float before = 0;
  {
    autodiff::Tape tape(false, true);
    const Tensor loss = loss_of();
    before = loss.data<float>()[0];
    autodiff::GradientSources sources;
    for (const VariablePtr &v : vars) sources.push_back(*v);
    grads = tape.gradient(loss, sources, autodiff::Unconnected::kNone);
  }
  for (size_t i = 0; i < vars.size(); ++i) {
    ASSERT_TRUE(grads[i].defined()) << vars[i]->name();
    EXPECT_EQ(grads[i].shape(), vars[i]->shape());
    vars[i]->assign_sub(ops::mul(grads[i], ops::fill(Shape({}), 0.05)));
  }
  EXPECT_LT(loss_of().data<float>()[0], before);
}

// ------------------------------------------------------------------ 3-D layers

// A 3-D window: sizes, strides and dilations along depth, height and width.
struct Window3 {
  std::vector<int64_t> k, s, d;
  Padding p;
};

// x [N, D, H, W, C] at (n, z, y, x, c), or 0 outside (padding); inside reports whether it is inside.
float at5(const Tensor &x, int64_t n, const int64_t (&pos)[3], int64_t c, bool *inside = nullptr) {
  const Shape &s = x.shape();
  for (int a = 0; a < 3; ++a)
    if (pos[a] < 0 || pos[a] >= s[a + 1]) {
      if (inside) *inside = false;
      return 0;
    }
  if (inside) *inside = true;
  return x.data<float>()[(((n * s[1] + pos[0]) * s[2] + pos[1]) * s[3] + pos[2]) * s[4] + c];
}

// Calls f(n, out position, window tap) for every output cell of x's window op and every tap.
template <typename F>
void for_each_tap(const Shape &xs, const Window3 &w, int64_t outs[3], int64_t before[3], F f) {
  for (int a = 0; a < 3; ++a) {
    const auto ax = testing::window_axis(xs[a + 1], w.k[size_t(a)], w.s[size_t(a)], w.d[size_t(a)], w.p);
    outs[a] = ax.out;
    before[a] = ax.before;
  }
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t o0 = 0; o0 < outs[0]; ++o0)
      for (int64_t o1 = 0; o1 < outs[1]; ++o1)
        for (int64_t o2 = 0; o2 < outs[2]; ++o2)
          for (int64_t k0 = 0; k0 < w.k[0]; ++k0)
            for (int64_t k1 = 0; k1 < w.k[1]; ++k1)
              for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
                const int64_t o[3] = {o0, o1, o2}, k[3] = {k0, k1, k2};
                int64_t in[3];
                for (int a = 0; a < 3; ++a) in[a] = o[a] * w.s[size_t(a)] - before[a] + k[a] * w.d[size_t(a)];
                f(n, o, k, in);
              }
}

// Reference conv3d, filter [KD, KH, KW, C, O], in double.
std::vector<float> ref_conv3d(const Tensor &x, const Tensor &f, const Window3 &w, Shape *out_shape) {
  const Shape &xs = x.shape();
  const int64_t ci = xs[4], co = f.shape()[4];
  int64_t outs[3], before[3];
  std::vector<double> y;
  for_each_tap(xs, w, outs, before, [](int64_t, const int64_t *, const int64_t *, const int64_t *) {});
  *out_shape = Shape({xs[0], outs[0], outs[1], outs[2], co});
  y.assign(size_t(out_shape->num_elements()), 0.0);
  for_each_tap(xs, w, outs, before, [&](int64_t n, const int64_t *o, const int64_t *k, const int64_t *in) {
    const int64_t pos[3] = {in[0], in[1], in[2]};
    const int64_t cell = (((n * outs[0] + o[0]) * outs[1] + o[1]) * outs[2] + o[2]) * co;
    const int64_t tap = ((k[0] * w.k[1] + k[1]) * w.k[2] + k[2]) * ci;
    for (int64_t c = 0; c < ci; ++c) {
      const double v = at5(x, n, pos, c);
      for (int64_t oc = 0; oc < co; ++oc) y[size_t(cell + oc)] += v * f.data<float>()[(tap + c) * co + oc];
    }
  });
  return std::vector<float>(y.begin(), y.end());
}

// Reference conv3d_transpose into y of out_shape: every cell of x scatters its filter window (the
// adjoint of ref_conv3d from out_shape), filter [KD, KH, KW, O, C].
std::vector<float> ref_conv3d_transpose(const Tensor &x, const Tensor &f, const Window3 &w,
                                        const Shape &out_shape) {
  const Shape &xs = x.shape();
  const int64_t ci = xs[4], co = out_shape[4];
  std::vector<double> y(size_t(out_shape.num_elements()), 0.0);
  int64_t outs[3], before[3];
  // Walk the forward convolution from out_shape: its output cells are x's cells.
  const Shape fwd_in({out_shape[0], out_shape[1], out_shape[2], out_shape[3], 1});
  for_each_tap(fwd_in, w, outs, before,
               [&](int64_t n, const int64_t *o, const int64_t *k, const int64_t *in) {
                 for (int a = 0; a < 3; ++a)
                   if (in[a] < 0 || in[a] >= out_shape[a + 1]) return;
                 const int64_t src[3] = {o[0], o[1], o[2]};
                 const int64_t cell =
                     (((n * out_shape[1] + in[0]) * out_shape[2] + in[1]) * out_shape[3] + in[2]) * co;
                 const int64_t tap = ((k[0] * w.k[1] + k[1]) * w.k[2] + k[2]) * co;
                 for (int64_t oc = 0; oc < co; ++oc)
                   for (int64_t c = 0; c < ci; ++c)
                     y[size_t(cell + oc)] += double(at5(x, n, src, c)) * f.data<float>()[(tap + oc) * ci + c];
               });
  return std::vector<float>(y.begin(), y.end());
}

// Reference 3-D pooling over the cells inside the input.
std::vector<float> ref_pool3d(const Tensor &x, const Window3 &w, bool max, Shape *out_shape) {
  const Shape &xs = x.shape();
  const int64_t c_n = xs[4];
  int64_t outs[3], before[3];
  for_each_tap(xs, w, outs, before, [](int64_t, const int64_t *, const int64_t *, const int64_t *) {});
  *out_shape = Shape({xs[0], outs[0], outs[1], outs[2], c_n});
  const size_t cells = size_t(out_shape->num_elements() / c_n);
  std::vector<double> acc(cells * size_t(c_n), max ? -std::numeric_limits<double>::infinity() : 0.0);
  std::vector<int64_t> count(cells, 0);
  for_each_tap(xs, w, outs, before, [&](int64_t n, const int64_t *o, const int64_t *, const int64_t *in) {
    const int64_t pos[3] = {in[0], in[1], in[2]};
    bool inside = false;
    at5(x, n, pos, 0, &inside);
    if (!inside) return;
    const size_t cell = size_t(((n * outs[0] + o[0]) * outs[1] + o[1]) * outs[2] + o[2]);
    ++count[cell];
    for (int64_t c = 0; c < c_n; ++c) {
      const double v = at5(x, n, pos, c);
      double &a = acc[cell * size_t(c_n) + size_t(c)];
      a = max ? std::max(a, v) : a + v;
    }
  });
  std::vector<float> y;
  for (size_t i = 0; i < acc.size(); ++i)
    y.push_back(float(max ? acc[i] : acc[i] / double(count[i / size_t(c_n)])));
  return y;
}

TEST_F(ConvLayersTest, Conv3DMatchesAReferenceLoop) {
  const Tensor x = random_tensor({2, 5, 4, 6, 3}, 71);
  const std::vector<std::pair<std::string, Window3>> cases = {
      {R"("kernel_size": 3)", {{3, 3, 3}, {1, 1, 1}, {1, 1, 1}, Padding::kValid}},
      {R"("kernel_size": [2, 3, 1], "strides": [2, 1, 3], "padding": "same")",
       {{2, 3, 1}, {2, 1, 3}, {1, 1, 1}, Padding::kSame}},
      {R"("kernel_size": [3, 2, 2], "strides": 2)", {{3, 2, 2}, {2, 2, 2}, {1, 1, 1}, Padding::kValid}},
      {R"("kernel_size": 2, "dilation_rate": [2, 1, 2], "padding": "same")",
       {{2, 2, 2}, {1, 1, 1}, {2, 1, 2}, Padding::kSame}},
      {R"("kernel_size": [1, 2, 3], "strides": [1, 3, 2], "padding": "same")",
       {{1, 2, 3}, {1, 3, 2}, {1, 1, 1}, Padding::kSame}},
  };
  for (const auto &[json, w] : cases) {
    LayerPtr l = make_layer("Conv3D", R"({"filters": 2, )" + json + "}");
    l->build({partial_shape_of(x.shape())});
    EXPECT_EQ(l->variables()[0]->shape(),
              Shape({w.k[0], w.k[1], w.k[2], 3, 2}));  // [kd, kh, kw, in, filters]
    randomize(*l, 72);
    Shape s;
    const std::vector<float> want =
        plus_bias(ref_conv3d(x, l->variables()[0]->peek(), w, &s), l->variables()[1]->peek());
    expect_output(*l, x, s, want, json);
  }
}

TEST_F(ConvLayersTest, Conv3DTransposeMatchesAReferenceLoop) {
  const Tensor x = random_tensor({2, 3, 2, 4, 3}, 73);
  struct Case {
    std::string json;
    Window3 w;
    Shape out;  // Keras's deconv_output_length on every axis
  };
  const std::vector<Case> cases = {
      {R"("kernel_size": 3, "strides": 2)",
       {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}, Padding::kValid},
       Shape({2, 7, 5, 9, 2})},
      {R"("kernel_size": [3, 2, 3], "strides": [2, 1, 3], "padding": "same")",
       {{3, 2, 3}, {2, 1, 3}, {1, 1, 1}, Padding::kSame},
       Shape({2, 6, 2, 12, 2})},
      {R"("kernel_size": [2, 3, 3], "strides": [3, 2, 2], "output_padding": [2, 1, 0])",
       {{2, 3, 3}, {3, 2, 2}, {1, 1, 1}, Padding::kValid},
       Shape({2, 10, 6, 9, 2})},
      {R"("kernel_size": [3, 1, 3], "strides": [2, 3, 2], "padding": "same", "output_padding": [1, 2, 1])",
       {{3, 1, 3}, {2, 3, 2}, {1, 1, 1}, Padding::kSame},
       Shape({2, 6, 6, 8, 2})},
      {R"("kernel_size": 2, "dilation_rate": [2, 1, 3])",
       {{2, 2, 2}, {1, 1, 1}, {2, 1, 3}, Padding::kValid},
       Shape({2, 5, 3, 7, 2})},
  };
  for (const Case &k : cases) {
    LayerPtr l = make_layer("Conv3DTranspose", R"({"filters": 2, )" + k.json + "}");
    l->build({partial_shape_of(x.shape())});
    EXPECT_EQ(l->variables()[0]->shape(), Shape({k.w.k[0], k.w.k[1], k.w.k[2], 2, 3}));  // [.., filters, in]
    randomize(*l, 74);
    const std::vector<float> want =
        plus_bias(ref_conv3d_transpose(x, l->variables()[0]->peek(), k.w, k.out), l->variables()[1]->peek());
    expect_output(*l, x, k.out, want, k.json);
  }
}

TEST_F(ConvLayersTest, Pooling3DMatchesReferenceLoops) {
  const Tensor x = random_tensor({2, 5, 4, 7, 3}, 75);
  const std::vector<std::pair<std::string, Window3>> cases = {
      {"{}", {{2, 2, 2}, {2, 2, 2}, {1, 1, 1}, Padding::kValid}},
      {R"({"pool_size": 3, "strides": 2, "padding": "same"})",
       {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}, Padding::kSame}},
      {R"({"pool_size": [3, 1, 2], "strides": [1, 2, 3]})",
       {{3, 1, 2}, {1, 2, 3}, {1, 1, 1}, Padding::kValid}},
      {R"({"pool_size": [2, 3, 4], "strides": [3, 1, 2], "padding": "same"})",
       {{2, 3, 4}, {3, 1, 2}, {1, 1, 1}, Padding::kSame}},
      {R"({"pool_size": [4, 2, 2], "strides": 1, "padding": "same"})",
       {{4, 2, 2}, {1, 1, 1}, {1, 1, 1}, Padding::kSame}},
  };
  for (const bool max : {true, false})
    for (const auto &[json, w] : cases) {
      LayerPtr l = make_layer(max ? "MaxPooling3D" : "AveragePooling3D", json);
      Shape s;
      const std::vector<float> want = ref_pool3d(x, w, max, &s);
      expect_output(*l, x, s, want, l->name() + " " + json, 1e-5f);
    }
  for (const bool max : {true, false}) {
    LayerPtr g = make_layer(max ? "GlobalMaxPooling3D" : "GlobalAveragePooling3D", R"({"keepdims": true})");
    const Tensor want = max ? ops::max(x, {1, 2, 3}, true) : ops::mean(x, {1, 2, 3}, true);
    EXPECT_EQ((*g)(x).shape(), Shape({2, 1, 1, 1, 3}));
    testing::expect_near((*g)(x), values(want), 1e-6f);
  }
}

// MaxPooling3D's gradient goes to the first maximum of each window in (depth, height, width) order,
// as TF's MaxPool3DGrad: a window of equal values passes its whole gradient to its first cell.
TEST_F(ConvLayersTest, MaxPooling3DRoutesTiesToTheFirstCell) {
  LayerPtr l = make_layer("MaxPooling3D", R"({"pool_size": 2, "padding": "same"})");
  const Tensor x = ops::fill(Shape({1, 3, 2, 2, 1}), 1.5);
  Tensor g;
  {
    autodiff::Tape tape(false, true);
    tape.watch(x);
    const Tensor y = (*l)(x);
    g = tape.gradient(y, {x}, autodiff::Unconnected::kZero)[0];
  }
  // Windows: depth {0, 1} and {2}: their first cells (0, 0, 0) and (2, 0, 0).
  EXPECT_EQ(values(g), (std::vector<float>{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST_F(ConvLayersTest, Layers3DGradientsConfigsAndErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Conv3D",
       R"({"filters": 2, "kernel_size": 2, "strides": [2, 1, 1], "padding": "same", "activation": "tanh"})"},
      {"Conv3D", R"({"filters": 2, "kernel_size": [2, 1, 2], "dilation_rate": [2, 1, 1]})"},
      {"Conv3DTranspose", R"({"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"})"},
      {"Conv3DTranspose",
       R"({"filters": 1, "kernel_size": [3, 2, 1], "strides": [2, 1, 1], "output_padding": [1, 0, 0]})"},
      {"MaxPooling3D", R"({"pool_size": 2, "strides": 1})"},
      {"AveragePooling3D", R"({"pool_size": [3, 2, 2], "strides": 2, "padding": "same"})"},
      {"GlobalMaxPooling3D", "{}"},
      {"GlobalAveragePooling3D", "{}"}};
  for (const auto &[cls, json] : cases) {
    LayerPtr l = make_layer(cls, json);
    const Tensor x = random_tensor({1, 3, 3, 2, 2}, 76);
    l->build({partial_shape_of(x.shape())});
    randomize(*l, 77);
    check_layer_gradients(*l, x);
  }
  // Keras's names, aliases and configs.
  clear_session();
  LayerPtr conv = make_layer("Convolution3D", R"({"filters": 4, "kernel_size": 3})");
  EXPECT_EQ(conv->class_name(), "Conv3D");
  EXPECT_EQ(conv->name(), "conv3d");
  const Config cc = conv->get_config();
  EXPECT_EQ(cc.get_int_list("kernel_size"), (std::vector<int64_t>{3, 3, 3}));
  EXPECT_EQ(cc.get_int_list("strides"), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(cc.get_int_list("dilation_rate"), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(cc.get_int("groups"), 1);
  EXPECT_EQ(make_layer("Conv3DTranspose", R"({"filters": 2, "kernel_size": 2})")->name(), "conv3d_transpose");
  EXPECT_EQ(
      make_layer("MaxPooling3D", "{}")->get_config().to_json(),
      R"({"name":"max_pooling3d","trainable":true,"dtype":"float32","pool_size":[2,2,2],"padding":"valid",)"
      R"("strides":[2,2,2],"data_format":"channels_last"})");
  EXPECT_EQ(make_layer("AvgPool3D", "{}")->class_name(), "AveragePooling3D");
  EXPECT_EQ(make_layer("GlobalAvgPool3D", "{}")->class_name(), "GlobalAveragePooling3D");
  EXPECT_EQ(make_layer("GlobalMaxPool3D", "{}")->class_name(), "GlobalMaxPooling3D");
  EXPECT_EQ(make_layer("MaxPool3D", "{}")->name(), "max_pooling3d_1");
  // Unknown dims stay unknown.
  LayerPtr up =
      make_layer("Conv3DTranspose", R"({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"})");
  EXPECT_EQ(up->compute_output_shape({{kUnknownDim, 5, kUnknownDim, 4, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, 10, kUnknownDim, 8, 2}}));
  EXPECT_EQ(make_layer("MaxPooling3D", "{}")->compute_output_shape({{kUnknownDim, 5, kUnknownDim, 4, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, 2, kUnknownDim, 2, 3}}));
  // Errors name the layer and what was expected.
  expect_error(
      [&] {
        (*conv)(random_tensor({2, 5, 5, 3}, 1));
      },
      Code::kInvalidArgument, {"layer 'conv3d' (Conv3D)", "expected rank 5"});
  (*conv)(random_tensor({1, 3, 4, 5, 2}, 1));
  expect_error(
      [&] {
        (*conv)(random_tensor({1, 3, 4, 5, 3}, 1));
      },
      Code::kInvalidArgument, {"layer 'conv3d' (Conv3D)", "expected the last axis to be 2"});
  expect_error(
      [&] {
        (*conv)(random_tensor({1, 2, 4, 5, 2}, 1));
      },
      Code::kInvalidArgument,
      {"layer 'conv3d' (Conv3D): input shape (1, 2, 4, 5, 2) is too small for a window of 3"});
  expect_error([&] { make_layer("Conv3D", R"({"filters": 2, "kernel_size": [3, 3]})"); },
               Code::kInvalidArgument, {"Conv3D: kernel_size must be an int or a tuple of 3 ints"});
  expect_error(
      [&] { make_layer("Conv3D", R"({"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2})"); },
      Code::kInvalidArgument, {"Conv3D: strides (2, 2, 2) > 1 together with dilation_rate (2, 2, 2)"});
  LayerPtr avg = make_layer("AveragePooling3D", R"({"pool_size": [3, 2, 2]})");
  expect_error(
      [&] {
        (*avg)(random_tensor({1, 2, 4, 4, 1}, 1));
      },
      Code::kInvalidArgument,
      {"(AveragePooling3D): input shape (1, 2, 4, 4, 1) is too small for a window of 3"});
  // Undefined operands are errors naming the op, never a crash.
  const Tensor f5 = random_tensor({1, 1, 1, 2, 1}, 2);
  expect_error(
      [&] {
        ops::conv3d(Tensor(), f5, {1, 1, 1}, {1, 1, 1}, Padding::kValid);
      },
      Code::kInvalidArgument, {"conv3d"});
  expect_error(
      [&] {
        ops::conv3d_transpose(Tensor(), f5, {1, 1, 1, 1, 1}, {1, 1, 1}, {1, 1, 1}, Padding::kValid);
      },
      Code::kInvalidArgument, {"conv3d_transpose"});
  expect_error(
      [&] {
        ops::avg_pool3d(Tensor(), {1, 1, 1}, {1, 1, 1}, Padding::kValid);
      },
      Code::kInvalidArgument, {"avg_pool3d"});
  expect_error([&] { make_layer("MaxPooling3D", R"({"pool_size": [2, 0, 2]})"); }, Code::kInvalidArgument,
               {"MaxPooling3D: pool_size values must be >= 1"});
  expect_error(
      [&] {
        ops::conv3d(random_tensor({1, 2, 2, 2, 1}, 1), random_tensor({1, 1, 1, 2, 1}, 2), {1, 1, 1},
                    {1, 1, 1}, Padding::kValid);
      },
      Code::kInvalidArgument, {"conv3d: filter of shape [1, 1, 1, 2, 1] is for 2 channels"});
  expect_error(
      [&] {
        ops::max_pool3d(random_tensor({1, 2, 2, 2, 1}, 1), {2, 2}, {1, 1, 1}, Padding::kValid);
      },
      Code::kInvalidArgument, {"max_pool3d: ksize is [2, 2]; expected 3 positive values"});
}

}  // namespace
}  // namespace kiln::layers
