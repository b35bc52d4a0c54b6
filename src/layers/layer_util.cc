#include "layers/layer_util.h"

#include "core/error.h"

namespace kiln::layers {

int64_t known_dim(const Layer &l, const PartialShape &s, size_t axis, const char *what) {
  if (axis >= s.size() || s[axis] < 0)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): input shape ",
         partial_shape_string(s), " needs a known ", what);
  return s[axis];
}

const PartialShape &single_input(const Layer &l, const std::vector<PartialShape> &shapes) {
  if (shapes.size() != 1)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): got ", shapes.size(),
         " inputs; expected 1");
  return shapes[0];
}

const Tensor &single_input(const Layer &l, const std::vector<Tensor> &inputs) {
  if (inputs.size() != 1)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): got ", inputs.size(),
         " inputs; expected 1");
  return inputs[0];
}

InitializerPtr initializer_or(const Config &config, ConfigReader &r, const char *key, const char *def) {
  return r.has(key) ? initializer_from_value(config, key) : get_initializer(def);
}

void set_regularizer(Config &c, const char *key, const RegularizerPtr &r) {
  if (r)
    c.set(key, serialize_regularizer(*r));
  else
    c.set_null(key);
}

void reject_constraints(ConfigReader &r, std::initializer_list<const char *> keys) {
  for (const char *k : keys)
    if (r.has(k))
      fail(Code::kUnimplemented, r.owner(), ": '", k, "' (weight constraints) is not supported yet");
}

}  // namespace kiln::layers
