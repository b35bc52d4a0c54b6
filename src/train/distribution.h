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

class CollectiveWorker;

class Communicator {
 public:
  Communicator();
  virtual ~Communicator();
  Communicator(const Communicator &) = delete;
  Communicator &operator=(const Communicator &) = delete;
  // This process's index in [0, size()) and the number of processes.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank calls each collective in the same order with the same count and dtype.
  // The element-wise sum over the ranks of count elements of dtype (float32, float64, bfloat16,
  // int32 or int64) at data, left in data on every rank.
  virtual void allreduce_sum(void *data, size_t count, DType dtype) = 0;
  // Root's bytes at data copied to data on every other rank.
  virtual void broadcast(void *data, size_t bytes, int root) = 0;
  // The background thread the overlapped gradient reductions on this communicator run their
  // collectives on (one per communicator, so they keep one order; every tape and optimizer
  // using the communicator shares it), started on first use.
  CollectiveWorker &background();

  // A 64-byte aligned, uninitialised byte buffer.
  struct FreeBytes {
    void operator()(unsigned char *p) const;
  };
  class Buffer {
   public:
    Buffer() = default;
    Buffer(unsigned char *p, size_t size) : data_(p), size_(size) {}
    unsigned char *data() const { return data_.get(); }
    size_t size() const { return data_ ? size_ : 0; }

   private:
    std::unique_ptr<unsigned char, FreeBytes> data_;
    size_t size_ = 0;
  };
  // The fusion buffer of a reduction, at least bytes long: the one given back last (the same size
  // every step) when it is big enough. give_buffer keeps the larger of it and the one kept.
  Buffer take_buffer(size_t bytes);
  void give_buffer(Buffer b);

 private:
  std::mutex background_mu_;
  std::unique_ptr<CollectiveWorker> background_;
  Buffer spare_;
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
// early), and the communicator's background thread sums the buckets in layout order, each once
// the walk has finished all of its gradients and the buckets before it have started. The sums
// are reduce(tape.gradient(...))'s (to the bit with a communicator that sums in a fixed order;
// MPI may choose another summation order for another message size on 3 or more ranks).
class GradientAllreduce {
 public:
  GradientAllreduce(CommunicatorPtr comm, bool average, size_t fusion_threshold_bytes, bool overlap = true);
  GradientAllreduce(const GradientAllreduce &) = delete;
  GradientAllreduce &operator=(const GradientAllreduce &) = delete;
  const CommunicatorPtr &communicator() const { return comm_; }
  bool average() const { return average_; }
  size_t fusion_threshold_bytes() const { return threshold_; }
  // Whether gradient() sums on the background thread during the walk (otherwise on the calling
  // thread after it).
  bool overlap() const { return overlap_; }
  // The scale of the next reductions (fit: local rows / global rows); cleared by clear_scale.
  void set_scale(double scale);
  void clear_scale();
  std::vector<Tensor> reduce(const std::vector<Tensor> &grads);
  // tape.gradient(targets, sources, ...) summed over the ranks as above. Floating sources must be
  // float32 or float64 (checked before the tape is used); integer ones keep their local (undefined
  // or zero) gradient. A gradient defined on some ranks but not on all fails on every rank
  // (FailedPrecondition), found by one more small collective per call.
  std::vector<Tensor> gradient(autodiff::Tape &tape, const std::vector<Tensor> &targets,
                               const autodiff::GradientSources &sources, autodiff::Unconnected unconnected,
                               const std::vector<Tensor> &target_grads = {});

  static constexpr size_t kFirstBucketBytes = size_t{1} << 20;

 private:
  class Step;
  double scale_locked() const;
  CommunicatorPtr comm_;
  bool average_;
  size_t threshold_;
  bool overlap_;
  std::mutex mu_;  // one reduction at a time
  bool has_scale_ = false;
  double scale_ = 1.0;
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
