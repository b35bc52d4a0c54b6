// Data-parallel training over a Communicator (Horovod's and tf.distribute's model): every process
// holds the whole model, takes its share of each global batch, and the gradients are summed over
// the processes before the update, so all of them take the same step.
//
// The core never talks to MPI. A Communicator is the handful of collectives training needs; the
// C ABI makes one from a callback table (kiln_communicator_create), and libkiln_mpi.so
// (src/distributed/) fills that table with MPI. Everything here works with any implementation,
// the in-process one of the unit tests included.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "autodiff/tape.h"
#include "autodiff/variable.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace kiln::train {

class Communicator {
 public:
  virtual ~Communicator() = default;
  // This process's index in [0, size()) and the number of processes.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank calls each collective in the same order with the same count and dtype.
  // The element-wise sum over the ranks of count elements of dtype (float32, float64, bfloat16,
  // int32 or int64) at data, left in data on every rank.
  virtual void allreduce_sum(void *data, size_t count, DType dtype) = 0;
  // Root's bytes at data copied to data on every other rank.
  virtual void broadcast(void *data, size_t bytes, int root) = 0;
};
using CommunicatorPtr = std::shared_ptr<Communicator>;

// Horovod's default tensor-fusion threshold: gradients are packed into buffers of up to this many
// bytes and each buffer is summed in one collective.
constexpr size_t kDefaultFusionThresholdBytes = size_t{64} << 20;

// The gradient step of a distributed optimizer: the sum over the ranks of scale * gradient for
// every defined gradient (undefined ones stay undefined; every rank must have the same ones),
// packed into fusion buffers of up to fusion_threshold_bytes (0: one collective per gradient).
// scale is 1/size for "mean" and 1 for "sum" unless fit sets the step's own (its share of the
// global batch). float32 and float64 gradients.
//
// gradient() overlaps the sums with the backward pass (Horovod's and PyTorch DDP's buckets): the
// gradients are laid out in buckets in reverse source order (the order a backward walk usually
// finishes them; the first bucket at most kFirstBucketBytes, so the first collective starts
// early) and a background thread sums each bucket as soon as the walk has finished all of its
// gradients, in bucket order on every rank. The result is reduce(tape.gradient(...))'s.
class GradientAllreduce {
 public:
  GradientAllreduce(CommunicatorPtr comm, bool average, size_t fusion_threshold_bytes, bool overlap = true);
  ~GradientAllreduce();
  GradientAllreduce(const GradientAllreduce &) = delete;
  GradientAllreduce &operator=(const GradientAllreduce &) = delete;
  const CommunicatorPtr &communicator() const { return comm_; }
  bool average() const { return average_; }
  size_t fusion_threshold_bytes() const { return threshold_; }
  // Whether gradient() sums on a background thread during the walk (otherwise after it).
  bool overlap() const { return overlap_; }
  // The scale of the next reductions (fit: local rows / global rows); cleared by clear_scale.
  void set_scale(double scale);
  void clear_scale();
  std::vector<Tensor> reduce(const std::vector<Tensor> &grads);
  // tape.gradient(targets, sources, ...) summed over the ranks as above. Sources must be float32
  // or float64 (checked before the tape is used).
  std::vector<Tensor> gradient(autodiff::Tape &tape, const std::vector<Tensor> &targets,
                               const autodiff::GradientSources &sources, autodiff::Unconnected unconnected,
                               const std::vector<Tensor> &target_grads = {});

  static constexpr size_t kFirstBucketBytes = size_t{1} << 20;

 private:
  class Step;
  class Worker;
  double scale_locked() const;
  CommunicatorPtr comm_;
  bool average_;
  size_t threshold_;
  bool overlap_;
  std::mutex mu_;  // one reduction at a time
  bool has_scale_ = false;
  double scale_ = 1.0;
  std::vector<unsigned char> buffer_;  // the fusion buffers, kept between steps
  std::unique_ptr<Worker> worker_;     // started by the first overlapped gradient()
};
using GradientAllreducePtr = std::shared_ptr<GradientAllreduce>;

// Horovod's broadcast_variables: root's values of vars assigned on every other rank, in one fused
// broadcast. The ranks first agree that they hold the same number of variables with the same
// dtypes and shapes; when they do not, every rank fails with InvalidArgument (none is changed).
void broadcast_variables(Communicator &comm, const std::vector<std::shared_ptr<autodiff::Variable>> &vars,
                         int root);

// The element-wise sums over the ranks of tensors (any shapes; float, integer or bool dtypes,
// summed in float64 and given back in each tensor's dtype), in one collective.
std::vector<Tensor> allreduce_sum_tensors(Communicator &comm, const std::vector<Tensor> &tensors);

// The element-wise sum over the ranks of the doubles in values, in place.
void allreduce_sum_doubles(Communicator &comm, std::vector<double> *values);

}  // namespace kiln::train
