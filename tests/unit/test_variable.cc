// Variable identity, copy-on-write updates and how tapes differentiate with respect to variables.
#include <cstring>

#include "autodiff/autocast.h"
#include "autodiff/tape.h"
#include "autodiff/variable.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using autodiff::Tape;
using autodiff::Unconnected;
using autodiff::Variable;
using testing::expect_error;
using testing::expect_near;
using testing::make;

Tensor scaled_sum(const Tensor &x, float k) { return ops::sum(ops::mul(x, ops::fill(Shape{}, k))); }

TEST(Variable, CopiesItsInitialValueAndHasItsOwnId) {
  Tensor t = make(Shape{2}, {1, 2});
  Variable v1("v1", t, true), v2("v2", t, true);
  EXPECT_NE(v1.id(), v2.id());
  EXPECT_NE(v1.id(), t.id());
  EXPECT_NE(v1.peek().raw_data(), t.raw_data());
  const uint64_t id = v1.id();
  v1.assign_add(make(Shape{2}, {1, 1}));
  v1.assign(make(Shape{2}, {7, 7}));
  EXPECT_EQ(v1.id(), id);  // stable for the variable's whole life
  expect_near(t, {1, 2});
  expect_near(v2.peek(), {1, 2});
  // Two variables from one tensor are independent sources.
  Tape tape(false, true);
  Tensor loss = ops::add(scaled_sum(v1.value(), 3), scaled_sum(v2.value(), 5));
  auto g = tape.gradient(loss, {v1, v2}, Unconnected::kNone);
  expect_near(g[0], {3, 3});
  expect_near(g[1], {5, 5});
}

TEST(Variable, NeverWritesIntoAnAdoptedBuffer) {
  float user[3] = {1, 2, 3};
  Tensor adopted =
      Tensor::from_storage(DType::kFloat32, Shape{3}, Storage::adopt(user, sizeof user, nullptr, nullptr));
  {
    Variable v("v", adopted, true);
    adopted = Tensor();  // the variable is now the only thing that knew the buffer
    v.assign_add(make(Shape{3}, {1, 1, 1}));
    v.assign(make(Shape{3}, {9, 9, 9}));
    v.assign_sub(make(Shape{3}, {1, 1, 1}));
    expect_near(v.peek(), {8, 8, 8});
  }
  EXPECT_EQ(user[0], 1.0f);
  EXPECT_EQ(user[1], 2.0f);
  EXPECT_EQ(user[2], 3.0f);
}

TEST(Variable, OtherDtypesAddOnCopyOrInPlace) {
  Variable v("i", testing::make_typed<int32_t>(Shape{2}, {1, 2}), false);
  Tensor before = v.peek();
  v.assign_add(testing::make_typed<int32_t>(Shape{2}, {10, 20}));
  EXPECT_EQ(testing::values<int32_t>(before), (std::vector<int32_t>{1, 2}));
  before = Tensor();
  v.assign_sub(testing::make_typed<int32_t>(Shape{2}, {1, 1}));
  EXPECT_EQ(testing::values<int32_t>(v.peek()), (std::vector<int32_t>{10, 21}));
  Variable b("b", testing::make_bool(Shape{1}, {1}), false);
  expect_error([&] { b.assign_add(testing::make_bool(Shape{1}, {1})); }, Code::kInvalidArgument,
               {"'b'", "bool"});
}

// TF differentiates a variable through the values read while recording, whatever was assigned since.
TEST(Variable, GradientIsTakenThroughTheReadsRecorded) {
  Variable v("v", make(Shape{1}, {3}), true);
  Tape tape(true, true);
  Tensor a = v.value();
  Tensor y = ops::mul(a, a);  // 2 * 3 = 6
  v.assign(make(Shape{1}, {10}));
  Tensor z = ops::add(y, v.value());  // + 1 through the second read
  tape.stop_recording();
  expect_near(tape.gradient(y, {v}, Unconnected::kNone)[0], {6});
  expect_near(tape.gradient(z, {v}, Unconnected::kNone)[0], {7});
  // The value read is a source too, like any watched tensor.
  expect_near(tape.gradient(z, {a}, Unconnected::kNone)[0], {6});
  // A variable never read gets no gradient, or zeros.
  Variable u("u", make(Shape{2}, {1, 1}), true);
  EXPECT_FALSE(tape.gradient(z, {u}, Unconnected::kNone)[0].defined());
  expect_near(tape.gradient(z, {u}, Unconnected::kZero)[0], {0, 0});
}

TEST(Variable, ExplicitWatchOfANonTrainableVariable) {
  Variable f("f", make(Shape{2}, {2, 3}), false);
  Tape tape(false, true);
  tape.watch(f);
  Tensor y = scaled_sum(f.value(), 4);
  tape.stop_recording();
  expect_near(tape.gradient(y, {f}, Unconnected::kNone)[0], {4, 4});
  Variable i("i", testing::make_typed<int32_t>(Shape{1}, {1}), true);
  Tape t2(false, true);
  expect_error([&] { t2.watch(i); }, Code::kInvalidArgument, {"'i'", "int32"});
}

TEST(Variable, SecondOrderThroughNestedTapes) {
  Variable v("v", make(Shape{1}, {2}), true);
  Tape outer(false, true);
  Tensor g;
  {
    Tape inner(false, true);
    Tensor x = v.value();
    Tensor y = ops::mul(ops::mul(x, x), x);             // x^3
    g = inner.gradient(y, {v}, Unconnected::kNone)[0];  // 3x^2 = 12
  }
  expect_near(g, {12});
  expect_near(outer.gradient(g, {v}, Unconnected::kNone)[0], {12});  // 6x
}

// The canonical loop: tape, gradient, assign_sub while the tape is still alive. A non-persistent tape
// lets go of the variable's reads in gradient(), so the update happens in the variable's buffer.
TEST(Variable, CanonicalLoopUpdatesInPlace) {
  Variable w("w", make(Shape{4}, {1, 2, 3, 4}), true);
  const void *buffer = w.peek().raw_data();
  for (int step = 0; step < 3; ++step) {
    Tape tape(false, true);
    Tensor loss = ops::sum(ops::mul(w.value(), w.value()));
    std::vector<Tensor> g = tape.gradient(loss, {w}, Unconnected::kNone);
    w.assign_sub(ops::mul(g[0], ops::fill(Shape{}, 0.25)));
    EXPECT_EQ(w.peek().raw_data(), buffer) << "step " << step;
  }
  expect_near(w.peek(), {0.125f, 0.25f, 0.375f, 0.5f});
  // A persistent tape keeps its reads, so the update copies and the reads stay as they were.
  Tape keep(true, true);
  Tensor loss = ops::sum(ops::mul(w.value(), w.value()));  // mul's rule keeps its inputs
  keep.gradient(loss, {w}, Unconnected::kNone);
  w.assign_sub(make(Shape{4}, {1, 1, 1, 1}));
  EXPECT_NE(w.peek().raw_data(), buffer);
}

// read_for_op: with no tape on the thread, reads of one buffer share a tensor and allocate
// nothing; writes stay in place unless a read is still held, and a held read never changes.
TEST(Variable, ReadForOpSharesOneTensorUntilAWrite) {
  Variable w("w", make(Shape{2}, {1, 2}), true);
  const void *buffer = w.peek().raw_data();
  Tensor a = w.read_for_op(), b = w.read_for_op();
  EXPECT_EQ(a.id(), b.id());
  EXPECT_EQ(a.raw_data(), buffer);
  // A held read: the write goes to a new buffer and the read keeps the old value.
  w.assign(make(Shape{2}, {5, 6}));
  expect_near(a, {1, 2});
  expect_near(w.read_for_op(), {5, 6});
  EXPECT_NE(w.read_for_op().id(), a.id());
  EXPECT_NE(w.read_for_op().raw_data(), buffer);
  // Nothing held but the variable's own tensor: every write is in place, and the next read
  // sees it.
  a = b = Tensor();
  const void *current = w.read_for_op().raw_data();
  for (int step = 0; step < 3; ++step) {
    w.assign_add(make(Shape{2}, {1, 1}));
    EXPECT_EQ(w.read_for_op().raw_data(), current) << "step " << step;
  }
  expect_near(w.read_for_op(), {8, 9});
  std::vector<Variable *> one = {&w};
  Variable::update_in_place(one.data(), 1, [](void *const *dst, const void *const *) {
    static_cast<float *>(dst[0])[0] = -1;
    static_cast<float *>(dst[0])[1] = -2;
  });
  expect_near(w.read_for_op(), {-1, -2});
  EXPECT_EQ(w.read_for_op().raw_data(), current);
}

TEST(Variable, ReadForOpUnderATapeOrAutocastIsValue) {
  Variable w("w", make(Shape{2}, {1, 2}), true);
  {
    Tape tape(false, true);
    Tensor a = w.read_for_op(), b = w.read_for_op();
    EXPECT_NE(a.id(), b.id());  // a tape tells reads apart by id
    Tensor loss = ops::add(scaled_sum(a, 3), scaled_sum(b, 5));
    auto g = tape.gradient(loss, {w}, Unconnected::kNone);
    expect_near(g[0], {8, 8});
  }
  {
    autodiff::AutocastScope scope(DType::kBFloat16);
    EXPECT_EQ(w.read_for_op().dtype(), DType::kBFloat16);
  }
  EXPECT_EQ(w.read_for_op().dtype(), DType::kFloat32);
}

TEST(Tape, RejectedGradientLeavesTheTapeUsable) {
  Tensor x = make(Shape{2}, {1, 2});
  Tape tape(false, true);
  tape.watch(x);
  Tensor y = ops::mul(x, x);
  tape.stop_recording();
  expect_error(
      [&] {
        tape.gradient(y, {x}, Unconnected::kNone, testing::make_typed<int32_t>(Shape{2}, {1, 1}));
      },
      Code::kInvalidArgument, {"output gradient", "int32[2]"});
  expect_error(
      [&] {
        tape.gradient(y, {x}, Unconnected::kNone, make(Shape{3}, {1, 1, 1}));
      },
      Code::kInvalidArgument, {"output gradient", "float32[3]"});
  expect_error([&] { tape.gradient(y, {Tensor()}, Unconnected::kNone); }, Code::kInvalidArgument,
               {"source 0"});
  expect_error(
      [&] {
        tape.gradient(std::vector<Tensor>{y, Tensor()}, {x}, Unconnected::kNone);
      },
      Code::kInvalidArgument, {"target 1"});
  expect_error(
      [&] {
        tape.gradient(std::vector<Tensor>{y}, {x}, Unconnected::kNone, {y, y});
      },
      Code::kInvalidArgument, {"2 output gradients for 1 targets"});
  expect_near(tape.gradient(y, {x}, Unconnected::kNone)[0], {2, 4});
  expect_error([&] { tape.gradient(y, {x}, Unconnected::kNone); }, Code::kFailedPrecondition, {"once"});
}

TEST(Tape, ListOfTargetsSumsTheirGradients) {
  Tensor x = make(Shape{2}, {1, 2});
  Variable v("v", make(Shape{2}, {3, 4}), true);
  Tape tape(true, true);
  tape.watch(x);
  Tensor l1 = ops::sum(ops::mul(x, x));  // 2x
  Tensor l2 = ops::mul(x, v.value());    // elementwise: v for x, x for v
  tape.stop_recording();
  auto g = tape.gradient(std::vector<Tensor>{l1, l2}, {x, v}, Unconnected::kNone);
  expect_near(g[0], {2 + 3, 4 + 4});
  expect_near(g[1], {1, 2});
  // One output gradient per target; an undefined one means ones.
  g = tape.gradient(std::vector<Tensor>{l1, l2}, {x, v}, Unconnected::kNone,
                    {Tensor(), make(Shape{2}, {2, 0})});
  expect_near(g[0], {2 + 6, 4 + 0});
  expect_near(g[1], {2, 0});
  // The same target twice counts twice; no targets gives no gradients.
  expect_near(tape.gradient(std::vector<Tensor>{l1, l1}, {x}, Unconnected::kNone)[0], {4, 8});
  EXPECT_FALSE(tape.gradient(std::vector<Tensor>{}, {x}, Unconnected::kNone)[0].defined());
}

}  // namespace
}  // namespace kiln
