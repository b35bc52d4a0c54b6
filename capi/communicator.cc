// Data-parallel training's entry points: communicators over a foreign callback table, the
// distributed optimizer and broadcast of variables (train/distribution.h).
#include <cstddef>
#include <cstring>
#include <string>

#include "capi/communicator_handle.h"
#include "capi/handles.h"
#include "capi/optimizer_handle.h"
#include "core/config.h"

using kiln::Code;
using kiln::DType;
using kiln::fail;
using kiln::capi::check_foreign;
using kiln::capi::element_of;
using kiln::capi::require_array_fits;
using kiln::capi::require_not_null;

namespace {

// The trampoline: the core's collectives are the foreign table's; a status becomes an error.
class ForeignCommunicator final : public kiln::train::Communicator {
 public:
  ForeignCommunicator(int rank, int size, const kiln_communicator_table &table, void *user_data)
      : rank_(rank), size_(size), table_(table), user_data_(user_data) {}
  ~ForeignCommunicator() override {
    if (table_.destroy) table_.destroy(user_data_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(void *data, size_t count, DType dtype) override {
    check_foreign(table_.allreduce_sum(data, count, static_cast<kiln_dtype>(dtype), user_data_),
                  "communicator allreduce_sum");
  }
  void broadcast(void *data, size_t bytes, int root) override {
    check_foreign(table_.broadcast(data, bytes, root, user_data_), "communicator broadcast");
  }

 private:
  int rank_, size_;
  kiln_communicator_table table_;
  void *user_data_;
};

const std::shared_ptr<kiln::train::Communicator> &comm_of(const kiln_communicator *c, const char *fn) {
  require_not_null(c, fn, "communicator");
  return c->comm;
}

// The gradient allreduce of kiln_optimizer_set_distributed and kiln_tape_set_distributed (null for
// a NULL communicator), from their options.
std::shared_ptr<kiln::train::GradientAllreduce> gradient_allreduce(kiln_communicator *communicator,
                                                                   const kiln_config *options,
                                                                   const char *fn) {
  kiln::ConfigReader r(kiln::capi::config_or_empty(options), std::string(fn) + " options");
  const std::string op = r.get_string("op", "mean");
  const int64_t threshold =
      r.get_int("fusion_threshold_bytes", static_cast<int64_t>(kiln::train::kDefaultFusionThresholdBytes));
  const bool overlap = r.get_bool("overlap", true);
  r.finish();
  if (op != "mean" && op != "sum")
    fail(Code::kInvalidArgument, fn, ": op is '", op, "'; expected \"mean\" or \"sum\"");
  if (threshold < 0)
    fail(Code::kInvalidArgument, fn, ": fusion_threshold_bytes is ", threshold, "; expected >= 0");
  if (!communicator) return nullptr;
  return std::make_shared<kiln::train::GradientAllreduce>(communicator->comm, op == "mean",
                                                          static_cast<size_t>(threshold), overlap);
}

}  // namespace

kiln_status *kiln_communicator_create(kiln_communicator **out, int rank, int size,
                                      const kiln_communicator_table *table, void *user_data) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(table, __func__, "table");
  const size_t v1 = offsetof(kiln_communicator_table, destroy) + sizeof(table->destroy);
  if (table->struct_size < v1)
    fail(Code::kInvalidArgument, __func__, ": table->struct_size is ", table->struct_size,
         "; expected at least ", v1, " (sizeof(kiln_communicator_table))");
  kiln_communicator_table t{};
  std::memcpy(static_cast<void *>(&t), table, std::min(table->struct_size, sizeof t));
  if (!t.allreduce_sum || !t.broadcast)
    fail(Code::kInvalidArgument, __func__, ": table->", !t.allreduce_sum ? "allreduce_sum" : "broadcast",
         " is NULL; a communicator needs both collectives");
  if (size < 1 || rank < 0 || rank >= size)
    fail(Code::kInvalidArgument, __func__, ": rank ", rank, " of size ", size,
         "; expected size >= 1 and 0 <= rank < size");
  *out = new kiln_communicator(std::make_shared<ForeignCommunicator>(rank, size, t, user_data));
  KILN_CAPI_END
}

kiln_status *kiln_communicator_clone(kiln_communicator **out, const kiln_communicator *communicator) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_communicator(comm_of(communicator, __func__));
  KILN_CAPI_END
}

void kiln_communicator_free(kiln_communicator *communicator) { delete communicator; }

int kiln_communicator_get_rank(const kiln_communicator *communicator) {
  return communicator ? communicator->comm->rank() : -1;
}

int kiln_communicator_get_size(const kiln_communicator *communicator) {
  return communicator ? communicator->comm->size() : -1;
}

kiln_status *kiln_communicator_broadcast_variables(kiln_communicator *communicator,
                                                   kiln_variable *const *variables, size_t n, int root) {
  KILN_CAPI_BEGIN
  const auto &comm = comm_of(communicator, __func__);
  require_array_fits(n, sizeof(kiln_variable *), __func__, "n");
  if (n) require_not_null(variables, __func__, "variables");
  std::vector<std::shared_ptr<kiln::autodiff::Variable>> vars;
  for (size_t i = 0; i < n; ++i) vars.push_back(element_of(variables, i, __func__, "variables")->variable);
  kiln::train::broadcast_variables(*comm, vars, root);
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_set_distributed(kiln_optimizer *optimizer, kiln_communicator *communicator,
                                            const kiln_config *options) {
  KILN_CAPI_BEGIN
  require_not_null(optimizer, __func__, "optimizer");
  optimizer->optimizer->set_gradient_allreduce(gradient_allreduce(communicator, options, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_tape_set_distributed(kiln_tape *tape, kiln_communicator *communicator,
                                       const kiln_config *options) {
  KILN_CAPI_BEGIN
  require_not_null(tape, __func__, "tape");
  tape->tape->check_thread("set_distributed");
  tape->allreduce = gradient_allreduce(communicator, options, __func__);
  KILN_CAPI_END
}

kiln_status *kiln_optimizer_get_distributed(kiln_communicator **out, const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(optimizer, __func__, "optimizer");
  const auto a = optimizer->optimizer->gradient_allreduce();
  *out = a ? new kiln_communicator(a->communicator()) : nullptr;
  KILN_CAPI_END
}
