// Helpers shared by the files of built-in layers: input-count checks, and the kernel/bias
// settings (initializers, regularizers, constraints) every Keras weight layer reads and writes.
#pragma once

#include <initializer_list>
#include <vector>

#include "core/config.h"
#include "layers/layer.h"

namespace kiln::layers::internal {

// The only input, or INVALID_ARGUMENT naming the layer and the count it got.
const PartialShape &single_input(const Layer &l, const std::vector<PartialShape> &shapes);
const Tensor &single_input(const Layer &l, const std::vector<Tensor> &inputs);

// The initializer under key (a name or a serialized initializer), or `def` when absent.
InitializerPtr initializer_or(const Config &config, ConfigReader &r, const char *key, const char *def);
// Writes a regularizer, or null for none.
void set_regularizer(Config &c, const char *key, const RegularizerPtr &r);
// Keys every Keras weight layer writes and kiln accepts only as null (constraints are not
// implemented yet: a non-null value is an error rather than silently ignored).
void reject_constraints(ConfigReader &r, std::initializer_list<const char *> keys);

// Keras's kernel_initializer, bias_initializer, kernel/bias/activity_regularizer and
// kernel/bias_constraint keys (Dense, MultiHeadAttention, ...), read and written in that order.
struct KernelBiasSettings {
  InitializerPtr kernel_init, bias_init;
  RegularizerPtr kernel_reg, bias_reg, activity_reg;

  static KernelBiasSettings read(const Config &config, ConfigReader &r);
  void write(Config &c) const;
};

}  // namespace kiln::layers::internal
