// Built-in layers registered by register_conv_layers().
#include "layers/builtins.h"
#include "layers/layer.h"

namespace kiln::layers {

void register_conv_layers() {}

}  // namespace kiln::layers
