// GradientTape and Variable semantics (independent of any one op family's details).
#include <thread>

#include "autodiff/tape.h"
#include "autodiff/variable.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using autodiff::GradientSource;
using autodiff::Tape;
using autodiff::Unconnected;
using autodiff::Variable;
using testing::expect_error;
using testing::expect_near;
using testing::make;

TEST(Tape, RecordsOnlyWatched) {
  Tensor x = make(Shape{2}, {1, 2});
  Tensor c = make(Shape{2}, {3, 4});
  Tape tape(false, true);
  Tensor unwatched = ops::mul(c, c);
  tape.watch(x);
  Tensor y = ops::mul(x, c);
  tape.stop_recording();
  auto g = tape.gradient(y, {x, c, unwatched}, Unconnected::kNone);
  expect_near(g[0], {3, 4});
  EXPECT_FALSE(g[1].defined());  // c was never watched
  EXPECT_FALSE(g[2].defined());
}

// Each source's gradient reaches the hook once, as soon as the walk has passed every op reading
// it (the last-used first), with the value gradient() returns.
TEST(Tape, ReadyHookHearsOfEachGradientWhenComplete) {
  struct Heard final : autodiff::GradientReadyHook {
    std::vector<size_t> order;
    std::vector<Tensor> grads = std::vector<Tensor>(5);
    void ready(size_t i, const Tensor &g) override {
      order.push_back(i);
      grads[i] = g;
    }
  };
  for (Unconnected u : {Unconnected::kNone, Unconnected::kZero}) {
    Tensor x = make(Shape{2}, {1, 2}), w1 = make(Shape{2}, {3, -1}), w2 = make(Shape{2}, {0.5f, 2});
    Tensor w3 = make(Shape{2}, {1, 1}), unused = make(Shape{1}, {7});
    Tape tape(false, true);
    for (const Tensor &t : {w1, w2, w3, unused}) tape.watch(t);
    Tensor a = ops::mul(x, w1);  // record 0
    Tensor b = ops::mul(a, w2);  // record 1
    Tensor c = ops::mul(b, w1);  // record 2: w1 is read again
    Tensor y = ops::add(c, w3);  // record 3
    tape.stop_recording();
    Heard heard;
    auto g = tape.gradient({y}, {w1, w2, w3, unused, w2}, u, {}, &heard);
    EXPECT_EQ(heard.order, (std::vector<size_t>{3, 2, 1, 4, 0}));
    for (size_t i = 0; i < 5; ++i) {
      ASSERT_EQ(heard.grads[i].defined(), g[i].defined()) << i;
      if (g[i].defined())
        expect_near(heard.grads[i],
                    std::vector<float>(g[i].data<float>(), g[i].data<float>() + g[i].num_elements()));
    }
    // y = x w1^2 w2 + w3: dw1 = 2 x w1 w2, dw2 = x w1^2, dw3 = 1.
    expect_near(g[0], {3, -8});
    expect_near(g[1], {9, 2});
    expect_near(g[2], {1, 1});
    EXPECT_EQ(g[3].defined(), u == Unconnected::kZero);
  }
}

TEST(Tape, SumsOverAllPaths) {
  Tensor x = make(Shape{2}, {1, 2});
  Tape tape(false, true);
  tape.watch(x);
  Tensor y = ops::add(ops::mul(x, x), ops::add(x, x));  // x^2 + 2x -> 2x + 2
  tape.stop_recording();
  expect_near(tape.gradient(y, {x}, Unconnected::kNone)[0], {4, 6});
}

TEST(Tape, SecondOrder) {
  Tensor x = make(Shape{3}, {-1, 0.5f, 2});
  Tape outer(false, true);
  outer.watch(x);
  Tape inner(false, true);
  inner.watch(x);
  Tensor y = ops::mul(ops::mul(x, x), x);
  inner.stop_recording();
  Tensor dy = inner.gradient(y, {x}, Unconnected::kNone)[0];
  outer.stop_recording();
  Tensor d2y = outer.gradient(dy, {x}, Unconnected::kNone)[0];
  expect_near(dy, {3, 0.75f, 12});
  expect_near(d2y, {-6, 3, 12});
}

TEST(Tape, PersistentAndOnce) {
  Tensor x = make(Shape{1}, {3});
  Tape p(true, true);
  p.watch(x);
  Tensor y = ops::mul(x, x);
  p.stop_recording();
  expect_near(p.gradient(y, {x}, Unconnected::kNone)[0], {6});
  expect_near(p.gradient(y, {x}, Unconnected::kNone)[0], {6});
  Tape once(false, true);
  once.watch(x);
  Tensor z = ops::mul(x, x);
  once.stop_recording();
  (void)once.gradient(z, {x}, Unconnected::kNone);
  expect_error([&] { once.gradient(z, {x}, Unconnected::kNone); }, Code::kFailedPrecondition,
               {"only be called once", "persistent"});
}

TEST(Tape, UnconnectedZeroAndStopGradient) {
  Tensor x = make(Shape{2}, {1, 2});
  Tensor u = make(Shape{3}, {1, 1, 1});
  Tape tape(true, true);
  tape.watch(x);
  tape.watch(u);
  Tensor y = ops::mul(x, ops::stop_gradient(x));
  tape.stop_recording();
  auto g = tape.gradient(y, {x, u}, Unconnected::kZero);
  expect_near(g[0], {1, 2});
  expect_near(g[1], {0, 0, 0});
  EXPECT_FALSE(tape.gradient(y, {u}, Unconnected::kNone)[0].defined());
}

TEST(Tape, OutputGradientWeightsTheTarget) {
  Tensor x = make(Shape{2}, {1, 2});
  Tape tape(false, true);
  tape.watch(x);
  Tensor y = ops::mul(x, x);
  tape.stop_recording();
  expect_near(tape.gradient(y, {x}, Unconnected::kNone, make(Shape{2}, {10, -1}))[0], {20, -4});
}

TEST(Tape, StoppedTapeRecordsNothing) {
  Tensor x = make(Shape{1}, {2});
  Tape tape(false, true);
  tape.watch(x);
  tape.stop_recording();
  Tensor y = ops::mul(x, x);
  EXPECT_FALSE(tape.gradient(y, {x}, Unconnected::kNone)[0].defined());
}

// J[i, j] = d y[i] / d x[j] for y = A x (J = A) and y = x * x (J = diag(2x)); a variable source;
// an unconnected source; the result's shape is target.shape + source.shape.
TEST(Tape, Jacobian) {
  Tensor x = make(Shape{3}, {1, -2, 0.5f});
  Tensor a = make(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor u = make(Shape{2}, {1, 1});
  Variable v("v", make(Shape{2, 1}, {3, -1}), true);
  Tape tape(false, true);
  tape.watch(x);
  tape.watch(u);
  Tensor y = ops::add(ops::reshape(ops::matmul(a, ops::reshape(x, {3, 1})), {2, 1}), v.value());
  tape.stop_recording();
  auto j = tape.jacobian(y, {GradientSource(x), GradientSource(u), GradientSource(v)}, Unconnected::kNone);
  ASSERT_TRUE(j[0].defined() && j[2].defined());
  EXPECT_EQ(j[0].shape(), (Shape{2, 1, 3}));
  expect_near(j[0], {1, 2, 3, 4, 5, 6});
  EXPECT_FALSE(j[1].defined());
  EXPECT_EQ(j[2].shape(), (Shape{2, 1, 2, 1}));
  expect_near(j[2], {1, 0, 0, 1});
  // A non-persistent tape allows one call, as gradient.
  expect_error([&] { tape.jacobian(y, {x}, Unconnected::kNone); }, Code::kFailedPrecondition,
               {"only be called once"});

  Tape p(true, true);
  p.watch(x);
  p.watch(u);
  Tensor sq = ops::mul(x, x);
  Tensor total = ops::sum(sq);
  p.stop_recording();
  for (int k = 0; k < 2; ++k) {
    auto d = p.jacobian(sq, {x, u}, Unconnected::kZero);
    ASSERT_TRUE(d[0].defined() && d[1].defined());
    EXPECT_EQ(d[0].shape(), (Shape{3, 3}));
    expect_near(d[0], {2, 0, 0, 0, -4, 0, 0, 0, 1});
    EXPECT_EQ(d[1].shape(), (Shape{3, 2}));
    expect_near(d[1], {0, 0, 0, 0, 0, 0});
  }
  // A scalar target gives the gradient; an empty one, zeros of shape [0] + source.shape.
  const Tensor g = p.jacobian(total, {x}, Unconnected::kNone)[0];
  ASSERT_TRUE(g.defined());
  EXPECT_EQ(g.shape(), (Shape{3}));
  expect_near(g, {2, -4, 1});
  EXPECT_EQ(p.jacobian(ops::zeros(Shape{0, 2}), {x}, Unconnected::kNone)[0].shape(), (Shape{0, 2, 3}));
  expect_error([&] { p.jacobian(Tensor(), {x}, Unconnected::kNone); }, Code::kInvalidArgument, {"target"});
  expect_error(
      [&] {
        p.jacobian(ops::zeros(Shape{1, 1, 1, 1, 1}), {ops::zeros(Shape{1, 1, 1, 1})}, Unconnected::kNone);
      },
      Code::kInvalidArgument, {"jacobian", "rank 9", "at most 8"});
}

// J[b, i, j] = d y[b, i] / d x[b, j], one walk per element of a row.
TEST(Tape, BatchJacobian) {
  Tensor x = make(Shape{2, 2}, {1, 2, 3, 4});
  Tensor w = make(Shape{2, 3}, {1, 0, 2, 0, 1, -1});
  Tape tape(false, true);
  tape.watch(x);
  Tensor y = ops::mul(ops::matmul(x, w), ops::matmul(x, w));  // [2, 3]: (x w)^2
  tape.stop_recording();
  const Tensor j = tape.batch_jacobian(y, x, Unconnected::kNone);
  ASSERT_TRUE(j.defined());
  EXPECT_EQ(j.shape(), (Shape{2, 3, 2}));
  // d (x w)_i^2 / d x_k = 2 (x w)_i w[k, i]; x w = [1, 2, 0], [3, 4, 2]
  expect_near(j, {2, 0, 0, 4, 0, 0, 6, 0, 0, 8, 8, -4});
  Tape p(true, true);
  p.watch(x);
  Tensor z = ops::mul(x, x);
  p.stop_recording();
  expect_error(
      [&] {
        p.batch_jacobian(z, make(Shape{3}, {1, 2, 3}), Unconnected::kNone);
      },
      Code::kInvalidArgument, {"batch_jacobian", "first (batch) dimension"});
  expect_near(p.batch_jacobian(z, make(Shape{2, 1}, {1, 2}), Unconnected::kZero), {0, 0, 0, 0});
  EXPECT_FALSE(p.batch_jacobian(z, make(Shape{2, 1}, {1, 2}), Unconnected::kNone).defined());
}

TEST(Tape, ResetForgetsRecordsAndWatches) {
  Tensor x = make(Shape{1}, {3});
  Tape tape(false, true);
  tape.watch(x);
  Tensor before = ops::mul(x, x);
  tape.reset();
  EXPECT_TRUE(tape.recording());
  EXPECT_FALSE(tape.gradient(before, {x}, Unconnected::kNone)[0].defined());  // watch forgotten too
  tape.reset();  // a used non-persistent tape can be used again after reset
  tape.watch(x);
  Tensor after = ops::mul(x, ops::mul(x, x));
  tape.stop_recording();
  expect_near(tape.gradient(after, {x}, Unconnected::kNone)[0], {27});
  tape.reset();
  EXPECT_FALSE(tape.recording());
}

TEST(Tape, WatchedVariablesInTheOrderWatchedWhileAlive) {
  auto a = std::make_shared<Variable>("a", make(Shape{1}, {1}), true);
  auto b = std::make_shared<Variable>("b", make(Shape{1}, {2}), true);
  auto frozen = std::make_shared<Variable>("frozen", make(Shape{1}, {3}), false);
  auto c = std::make_shared<Variable>("c", make(Shape{1}, {4}), true);
  Variable on_stack("on_stack", make(Shape{1}, {5}), true);  // no shared_ptr owns it: never listed
  Tape tape(true, true);
  tape.watch(*b);                          // explicitly first
  (void)ops::mul(a->value(), b->value());  // a read while recording: watched second
  (void)frozen->value();                   // not trainable: not watched by a read
  tape.watch(*frozen);                     // but explicitly
  (void)on_stack.value();
  (void)c->value();
  (void)a->value();  // once only
  tape.stop_recording();
  (void)c->value();
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto &v : tape.watched_variables()) out.push_back(v->name());
    return out;
  };
  EXPECT_EQ(names(), (std::vector<std::string>{"b", "a", "frozen", "c"}));
  EXPECT_EQ(tape.watched_variables()[0].get(), b.get());  // the variables themselves
  EXPECT_EQ(Variable::find(on_stack.id()), nullptr);
  const uint64_t c_id = c->id();
  c.reset();  // a tape does not keep a variable alive
  EXPECT_EQ(Variable::find(c_id), nullptr);
  EXPECT_EQ(names(), (std::vector<std::string>{"b", "a", "frozen"}));
  tape.reset();
  EXPECT_TRUE(tape.watched_variables().empty());
  // Without watch_accessed_variables only explicit watches count.
  Tape explicit_only(false, false);
  (void)a->value();
  explicit_only.watch(*b);
  ASSERT_EQ(explicit_only.watched_variables().size(), 1u);
  EXPECT_EQ(explicit_only.watched_variables()[0]->name(), "b");
}

TEST(Tape, BadArguments) {
  Tape tape(false, true);
  expect_error([&] { tape.watch(Tensor()); }, Code::kInvalidArgument, {"watch"});
  Tensor i = Tensor::scalar<int32_t>(3);
  expect_error([&] { tape.watch(i); }, Code::kInvalidArgument, {"int32", "floating"});
  expect_error([&] { tape.gradient(Tensor(), {}, Unconnected::kNone); }, Code::kInvalidArgument, {"target"});
}

TEST(Tape, BelongsToItsThread) {
  Tape tape(false, true);
  Tensor x = make(Shape{1}, {1});
  bool ok = false;
  std::thread t([&] {
    try {
      tape.watch(x);
    } catch (const Error &e) {
      ok = e.code() == Code::kFailedPrecondition;
    }
  });
  t.join();
  EXPECT_TRUE(ok);
}

TEST(Tape, OtherThreadsDoNotRecordOnIt) {
  Tensor x = make(Shape{1}, {2});
  Tape tape(false, true);
  tape.watch(x);
  Tensor y;
  std::thread t([&] { y = ops::mul(x, x); });
  t.join();
  tape.stop_recording();
  EXPECT_FALSE(tape.gradient(y, {x}, Unconnected::kNone)[0].defined());
}

TEST(Variable, TrainableReadsAreWatched) {
  Variable w("w", make(Shape{2}, {1, 2}), true);
  Variable frozen("f", make(Shape{2}, {5, 5}), false);
  Tape tape(false, true);
  Tensor y = ops::mul(w.value(), frozen.value());
  tape.stop_recording();
  auto g = tape.gradient(y, {w, frozen}, Unconnected::kNone);
  expect_near(g[0], {5, 5});
  EXPECT_FALSE(g[1].defined());
  ASSERT_EQ(tape.watched_variable_ids().size(), 1u);
  EXPECT_EQ(tape.watched_variable_ids()[0], w.id());
}

TEST(Variable, NoAutoWatchWhenDisabled) {
  Variable w("w", make(Shape{1}, {3}), true);
  Tape tape(false, false);
  Tensor y = ops::mul(w.value(), w.value());
  tape.stop_recording();
  EXPECT_FALSE(tape.gradient(y, {w}, Unconnected::kNone)[0].defined());
}

TEST(Variable, AssignKeepsEarlierReadsAndUpdatesInPlace) {
  Variable v("v", make(Shape{3}, {1, 2, 3}), true);
  Tensor before = v.value();
  v.assign_add(make(Shape{3}, {1, 1, 1}));  // copy: `before` still holds the old value
  expect_near(before, {1, 2, 3});
  expect_near(v.peek(), {2, 3, 4});
  const void *storage = v.peek().raw_data();
  uint64_t id = v.peek().id();
  v.assign_sub(make(Shape{3}, {0.5f, 0.5f, 0.5f}));  // nobody else holds it: in place
  EXPECT_EQ(v.peek().raw_data(), storage);
  EXPECT_NE(v.peek().id(), id);
  expect_near(v.peek(), {1.5f, 2.5f, 3.5f});
  v.assign(make(Shape{3}, {0, 0, 0}));
  expect_near(v.peek(), {0, 0, 0});
  expect_error([&] { v.assign(make(Shape{2}, {0, 0})); }, Code::kInvalidArgument, {"'v'", "float32[2]", "[3]"});
}

}  // namespace
}  // namespace kiln
