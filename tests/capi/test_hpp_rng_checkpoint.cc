// The global random state in checkpoints from kiln.hpp (kiln::train::get_global_generator()): a
// Checkpoint of {"rng", get_global_generator()} gives back the draws that followed its save; a
// shuffled fit with Dropout, saved with the model (and its optimizer) and the random state,
// continues bit for bit in fresh objects after another seed.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Dims;
using kiln::Tensor;
using kiln::testing::TempDir;
using kiln::train::Checkpoint;

bool same_bits(const Tensor &a, const Tensor &b) {
  return a.dtype() == b.dtype() && a.byte_size() == b.byte_size() &&
         std::memcmp(kiln_tensor_get_data(a.get()), kiln_tensor_get_data(b.get()), a.byte_size()) == 0;
}

std::vector<Tensor> draws() {
  const Tensor ones = Tensor::from_vector(std::vector<float>(16, 1.0f), {16});
  return {kiln::random_uniform(Dims{16}), kiln::random_normal(Dims{16}, 0, 1, 5),
          kiln::dropout(ones, 0.5f, true), kiln::dropout(ones, 0.5f, true, 9)};
}

void expect_same(const std::vector<Tensor> &a, const std::vector<Tensor> &b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same_bits(a[i], b[i])) << i;
}

std::vector<Tensor> values(const std::vector<kiln::Variable> &vars) {
  std::vector<Tensor> out;
  for (const kiln::Variable &v : vars) out.push_back(v.value());
  return out;
}

kiln::Sequential dropout_model() {
  kiln::layers::DropoutOptions seeded;
  seeded.seed = 11;
  kiln::Sequential m({kiln::layers::Dense(8, "relu"), kiln::layers::Dropout(0.3),
                      kiln::layers::Dropout(0.25, seeded), kiln::layers::Dense(3, "softmax")});
  m.build_for(Dims{-1, 5});
  m.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy");
  return m;
}

TEST(HppGlobalRngCheckpoint, DrawsAfterARestoreAreTheDrawsAfterTheSave) {
  TempDir dir("kiln_hpp_rng_ckpt");
  kiln::set_seed(31);
  draws();
  Checkpoint ckpt({{"rng", kiln::train::get_global_generator()}});
  const std::string path = ckpt.write(dir / "w");
  const std::vector<Tensor> want = draws();
  kiln::set_seed(2);
  draws();
  ckpt.read(path).assert_consumed();
  expect_same(draws(), want);
  // The key names the two op seeds used (5 and 9).
  EXPECT_TRUE(kiln::train::CheckpointReader(path).has_tensor("rng/_state-2/.ATTRIBUTES/VARIABLE_VALUE"));
}

TEST(HppGlobalRngCheckpoint, ShuffledDropoutFitResumesBitForBit) {
  TempDir dir("kiln_hpp_rng_ckpt");
  std::vector<float> x(40 * 5);
  std::vector<int64_t> y(40);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7) % 17) / 17.0f - 0.5f;
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>((i * 5) % 3);
  const Tensor xt = Tensor::from_vector(x, {40, 5}), yt = Tensor::from_vector(y, {40});
  const kiln::FitOptions fo =
      kiln::FitOptions().with_epochs(2).with_batch_size(8).with_shuffle(true).with_verbose(0);

  kiln::set_seed(3);
  kiln::Sequential a = dropout_model();
  a.fit(xt, yt, fo);
  Checkpoint ckpt_a({{"model", a}, {"rng", kiln::train::get_global_generator()}});
  ckpt_a.save(dir / "ckpt");
  a.fit(xt, yt, fo);

  kiln::set_seed(777);  // another seed, other initial weights: as a fresh process
  kiln::Sequential b = dropout_model();
  Checkpoint ckpt_b;
  ckpt_b.track("model", b);
  ckpt_b.track("rng", kiln::train::get_global_generator());
  kiln::train::LoadStatus status = ckpt_b.restore(dir.path());
  status.assert_existing_objects_matched();
  b.fit(xt, yt, fo);
  status.assert_consumed();
  expect_same(values(b.variables()), values(a.variables()));
  expect_same(values(b.optimizer().variables()), values(a.optimizer().variables()));
  EXPECT_EQ(b.optimizer().iterations(), 20);
}

}  // namespace
