/*
 * kiln/layers.h — Keras layers and models: built-in layers by class name, Sequential, custom
 * layers and models through a callback table, weights, configs and summaries.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * One handle type, kiln_layer, for every layer; Sequential and models are layers (as in
 * Keras 3). A handle owns one reference to a shared layer object: getters that return
 * sub-layers or variables give new handles, and kiln_layer_get_id tells when two handles
 * name one object. Settings travel as a kiln_config (kiln/config.h).
 *
 *   kiln_config *c = NULL;
 *   kiln_layer *dense = NULL;
 *   kiln_tensor *y = NULL;
 *   kiln_config_create(&c);
 *   kiln_config_set_int(c, "units", 64);
 *   kiln_config_set_string(c, "activation", "relu");
 *   kiln_layer_create(&dense, "Dense", c);            // Dense(64, activation="relu")
 *   kiln_layer_call_tensor(&y, dense, x, false);      // builds from x's shape, then calls
 */
#ifndef KILN_LAYERS_H
#define KILN_LAYERS_H

#include "kiln/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- tensor lists */

/* A list slot may be empty (no tensor): masks use it for "this input/output has no mask".
 * Functions that need tensors (a layer's inputs, a custom layer's outputs) reject an empty slot
 * with INVALID_ARGUMENT naming its index. */

/// A new empty list of tensors (the inputs and outputs of layers with several).
/// Ownership: *out is new, free with kiln_tensor_list_free. Thread-safety: one thread at a time.
KILN_API kiln_status *kiln_tensor_list_create(kiln_tensor_list **out);
/// Frees a list (the tensors live on while other handles hold them). Accepts NULL.
KILN_API void kiln_tensor_list_free(kiln_tensor_list *list);
/// Appends tensor (shared, not copied: tensors are immutable), or an empty slot when tensor is
/// NULL (a mask list's "no mask here"). Ownership: the caller keeps its handle.
/// Thread-safety: one thread at a time per list.
KILN_API kiln_status *kiln_tensor_list_append(kiln_tensor_list *list, const kiln_tensor *tensor);
/// The number of slots (tensors and empty slots); 0 for NULL.
KILN_API size_t kiln_tensor_list_get_size(const kiln_tensor_list *list);
/// The tensor at index; *out = NULL for an empty slot. Ownership: *out is a new handle (or NULL).
/// OUT_OF_RANGE for a bad index. Thread-safety: safe while no thread changes the list.
KILN_API kiln_status *kiln_tensor_list_get(kiln_tensor **out, const kiln_tensor_list *list, size_t index);

/* ------------------------------------------------------------------- layers */

/// Which variables kiln_layer_get_variables lists. Explicit values; append only.
typedef enum kiln_variables_kind {
  KILN_VARIABLES_ALL = 0,           /**< layer.variables / weights */
  KILN_VARIABLES_TRAINABLE = 1,     /**< layer.trainable_variables */
  KILN_VARIABLES_NON_TRAINABLE = 2, /**< layer.non_trainable_variables */
  KILN_VARIABLES_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value */
  KILN_VARIABLES_MAX_ENUM = 0x7FFFFFFF       /**< not a value */
} kiln_variables_kind;

/// A built-in layer (or a class registered by a binding) from its Keras class name and config:
/// "Dense", "Activation", "Dropout", "Flatten", "Reshape", "Embedding", "LayerNormalization",
/// "BatchNormalization", "Sequential" (config "layers": serialized layers). config may be NULL
/// (defaults). Unknown classes are NOT_FOUND; unknown or ill-typed keys INVALID_ARGUMENT naming
/// the key. Ownership: *out is new, free with kiln_layer_free; config stays the caller's.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_layer_create(kiln_layer **out, const char *class_name, const kiln_config *config);
/// A built-in layer made around the layer objects given, not copies of them, as Keras's RNN(cell)
/// holds the cell it is given: "RNN" (one cell; several are stacked in a StackedRNNCells) and
/// "StackedRNNCells" (its cells). A cell is a built-in cell ("SimpleRNNCell", "GRUCell",
/// "LSTMCell", "StackedRNNCells") or any layer with a state size (kiln_layer_set_state_size) whose
/// call takes [input, states...] and returns [output, new states...]. config holds the class's
/// other keys (RNN: return_sequences, return_state, go_backwards, zero_output_for_mask, name ...)
/// or is NULL. Other classes, NULL or no layers are INVALID_ARGUMENT. Ownership: *out is new; the
/// layers stay the caller's handles (the new layer holds the objects too). Thread-safety: safe.
KILN_API kiln_status *kiln_layer_create_around(kiln_layer **out, const char *class_name,
                                               const kiln_config *config, kiln_layer *const *layers,
                                               size_t num_layers);
/// A layer from Keras's serialized form {"class_name": ..., "config": {...}} (Keras
/// deserialize / from_config). Ownership: *out is new.
KILN_API kiln_status *kiln_layer_deserialize(kiln_layer **out, const kiln_config *serialized);
/// The serialized form {"class_name": ..., "config": get_config()}. Ownership: *out is new.
KILN_API kiln_status *kiln_layer_serialize(kiln_config **out, const kiln_layer *layer);
/// get_config: name, trainable, dtype, then the class's own keys. Ownership: *out is new.
KILN_API kiln_status *kiln_layer_get_config(kiln_config **out, const kiln_layer *layer);
/// A new handle to the same layer. Ownership: *out is new.
KILN_API kiln_status *kiln_layer_clone(kiln_layer **out, const kiln_layer *layer);
/// A weak handle to the same layer: it does not keep the layer alive, and calls through it fail
/// with FAILED_PRECONDITION once the layer is gone (getters without a status give 0/NULL/false).
/// For bindings whose object is owned by the layer it drives (a custom layer made by a class
/// factory, kiln_layer_register_class), which would otherwise keep itself alive.
/// Ownership: *out is new, free with kiln_layer_free. Thread-safety: safe.
KILN_API kiln_status *kiln_layer_clone_weak(kiln_layer **out, const kiln_layer *layer);
/// Frees a handle; the layer lives on while other handles or parent layers hold it. Accepts NULL.
KILN_API void kiln_layer_free(kiln_layer *layer);

/// The layer's identity, fixed for its life and never reused; 0 for NULL.
KILN_API uint64_t kiln_layer_get_id(const kiln_layer *layer);
/// The name ("dense", "dense_1", ... unless given). Lifetime: borrowed, valid while the layer
/// lives; NULL for NULL.
KILN_API const char *kiln_layer_get_name(const kiln_layer *layer);
/// The Keras class name ("Dense"). Lifetime: as kiln_layer_get_name.
KILN_API const char *kiln_layer_get_class_name(const kiln_layer *layer);
/// Whether build has run. false for NULL.
KILN_API bool kiln_layer_get_built(const kiln_layer *layer);
/// Whether the layer is a model (Sequential, custom models). false for NULL.
KILN_API bool kiln_layer_is_model(const kiln_layer *layer);
/// The trainable switch. false for NULL.
KILN_API bool kiln_layer_get_trainable(const kiln_layer *layer);
/// Freezes (false) or unfreezes the layer, its variables and all its sub-layers (Keras's
/// layer.trainable = ...). Thread-safety: not while the layer runs on another thread.
KILN_API kiln_status *kiln_layer_set_trainable(kiln_layer *layer, bool trainable);

/// Builds the layer for inputs of the given shapes (Keras build / model.build((None, 784))).
/// dims holds every input's dims one after the other, ranks[i] how many are input i's; -1 is
/// an unknown dim (None). A built layer is left as it is.
KILN_API kiln_status *kiln_layer_build(kiln_layer *layer, const int64_t *dims, const size_t *ranks,
                                       size_t num_inputs);
/// Calls the layer on a list of inputs (building it from their shapes first if needed).
/// training: Dropout drops, BatchNormalization uses and updates batch statistics. It is also
/// the training of the calls made inside this one that leave it to the context
/// (kiln_layer_call_options.training_from_context), as Keras's call context.
/// Multi-input built-ins: the merge layers (Add ... Concatenate) take the tensors to merge;
/// MultiHeadAttention takes query, value, then optionally key and attention_mask, then
/// optionally scalar bool flags return_attention_scores and use_causal_mask (Keras's call
/// arguments in order; pass value as the key to give a mask alone), and gives the output, then
/// the attention scores [B, heads, T, S] when return_attention_scores is true. Attention and
/// AdditiveAttention take query, value, then optionally key, then the same two flags (which must
/// be bool), and give the output [B, Tq, dim], then the attention weights [B, Tq, Tv]; their masks
/// are the query's (zeroes masked output rows) and the value's (masked steps get no weight).
/// SimpleRNN, GRU and
/// LSTM take the sequences [B, T, F], then optionally the initial states [B, units] (h; LSTM h, c:
/// Keras's initial_state), and give the output, then the final states when return_state is true.
/// ConvLSTM1D/2D/3D likewise take sequences [B, T, spatial..., C], then optionally h and c
/// [B, out spatial..., filters].
/// Ownership: *out is a new list. Thread-safety: a built layer may be called from several
/// threads at once (training=false); building is serialised.
KILN_API kiln_status *kiln_layer_call(kiln_tensor_list **out, kiln_layer *layer, const kiln_tensor_list *inputs,
                                      bool training);
/// As kiln_layer_call for one input and one output. Ownership: *out is new.
KILN_API kiln_status *kiln_layer_call_tensor(kiln_tensor **out, kiln_layer *layer, const kiln_tensor *input,
                                             bool training);
/// Options of kiln_layer_call_with_options. Fill with kiln_layer_call_options_init first.
typedef struct kiln_layer_call_options {
  size_t struct_size;            /**< sizeof(kiln_layer_call_options) */
  bool training;                 /**< default false; as kiln_layer_call's training */
  const kiln_tensor_list *masks; /**< the inputs' masks (Keras's mask= argument): NULL (default)
                                      for none, or one slot per input, empty where an input has
                                      none; each mask has its input's leading dims ([B, T] for a
                                      [B, T, F] input), bool or numeric (nonzero = valid) */
  bool training_from_context;    /**< default false. true: the caller gives no training (Keras's
                                      training=None): a call made inside another layer's call on
                                      this thread (from a custom layer's call callback) takes that
                                      call's training, as Keras's call context does, and a call
                                      outside any takes `training`. Read only when struct_size
                                      covers it (an older struct: false) */
} kiln_layer_call_options;

/// Fills options with the defaults (training false, no masks, training_from_context false). struct_size:
/// sizeof(kiln_layer_call_options) as the caller compiled it.
/// Ownership: the caller's struct. Thread-safety: safe.
KILN_API kiln_status *kiln_layer_call_options_init(kiln_layer_call_options *options, size_t struct_size);
/// Keras's __call__ with masks: calls the layer as kiln_layer_call, passing options->masks to it,
/// and gives the outputs' masks (Keras's output._keras_mask): Embedding(mask_zero) makes a mask,
/// mask-transparent layers (kiln_layer_get_supports_masking) pass it on, Sequential carries it
/// from layer to layer, MultiHeadAttention turns the query/value/key masks into its attention
/// mask (AND'ed with attention_mask and the causal mask), GlobalAveragePooling1D averages the
/// valid steps. A mask list of the wrong length, or a mask whose shape is not its input's leading
/// dims, is INVALID_ARGUMENT naming the layer and both shapes. options may be NULL (defaults).
/// Ownership: *out is a new list of outputs; *out_masks (when out_masks is not NULL) a new list
/// with one slot per output, empty where an output has no mask; inputs and options stay the
/// caller's. Thread-safety: as kiln_layer_call (masks are per call, not layer state).
KILN_API kiln_status *kiln_layer_call_with_options(kiln_tensor_list **out, kiln_tensor_list **out_masks,
                                                   kiln_layer *layer, const kiln_tensor_list *inputs,
                                                   const kiln_layer_call_options *options);
/// Keras compute_mask: the masks the layer would give its outputs for these inputs and their
/// masks (NULL, or one slot per input, empty for none). An empty list means no masks; a
/// Sequential runs its layers to find them. Ownership: *out is a new list (slots may be empty).
/// Thread-safety: as kiln_layer_call.
KILN_API kiln_status *kiln_layer_compute_mask(kiln_tensor_list **out, kiln_layer *layer,
                                              const kiln_tensor_list *inputs, const kiln_tensor_list *masks);
/// Keras's supports_masking: whether the layer passes its input's mask on to its output (Dense,
/// Dropout, LayerNormalization, merge layers, MultiHeadAttention, Embedding(mask_zero) ...).
/// false for NULL. Lifetime: a value. Thread-safety: safe.
KILN_API bool kiln_layer_get_supports_masking(const kiln_layer *layer);
/// Sets supports_masking (Keras's layer.supports_masking = ...): a layer that supports masking
/// and computes no mask of its own passes its inputs' masks on. Ownership: nothing changes hands.
/// Thread-safety: safe; calls already running see either value.
KILN_API kiln_status *kiln_layer_set_supports_masking(kiln_layer *layer, bool supports_masking);
/// Keras's cell state_size: the sizes of the states a cell's call takes after its input and returns
/// after its output (each state [batch, size]). Built-in cells report their own; a custom layer
/// reports what kiln_layer_set_state_size gave it; other layers none. Writes the sizes to
/// out[0..capacity) and their number to *out_count (0: not a cell); capacity 0 learns the count.
/// Ownership: the caller's array. Thread-safety: safe.
KILN_API kiln_status *kiln_layer_get_state_size(int64_t *out, size_t capacity, size_t *out_count,
                                                const kiln_layer *layer);
/// Makes a custom layer a recurrent cell with states of these sizes (Keras's `self.state_size =
/// ...`), so RNN can run it; count 0 makes it no cell. A size <= 0, or a layer that is not custom
/// (kiln_layer_create_custom), is INVALID_ARGUMENT. Set it before an RNN is made around the layer.
/// Ownership: sizes stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_layer_set_state_size(kiln_layer *layer, const int64_t *sizes, size_t count);
/// compute_output_shape for one input: writes the output's dims (-1 for unknown) to
/// out_dims[0..capacity) and its rank to *out_rank.
KILN_API kiln_status *kiln_layer_compute_output_shape(int64_t *out_dims, size_t capacity, size_t *out_rank,
                                                      kiln_layer *layer, const int64_t *dims, size_t rank);
/// compute_output_shape for any number of inputs and outputs (merges, attention, recurrent layers
/// with states): the inputs' dims one after the other, ranks[i] of them for input i (as
/// kiln_layer_build; -1 unknown). Writes every output's dims one after the other to
/// out_dims[0..dims_capacity) and each output's rank to out_ranks[0..ranks_capacity), and the number
/// of outputs and of dims in all to *out_count and *out_num_dims: call with capacities 0 to learn
/// them. Ownership: the caller's arrays. Thread-safety: as kiln_layer_build (it may build the layer).
KILN_API kiln_status *kiln_layer_compute_output_shapes(int64_t *out_dims, size_t dims_capacity,
                                                       size_t *out_ranks, size_t ranks_capacity,
                                                       size_t *out_count, size_t *out_num_dims,
                                                       kiln_layer *layer, const int64_t *dims,
                                                       const size_t *ranks, size_t num_inputs);

/// The layer's variables (depth first, creation order: a Sequential of Dense layers gives
/// kernel0, bias0, kernel1, bias1). Writes new handles to out[0..min(capacity, count)) and the
/// count to *out_count; call with capacity 0 to learn the count. Ownership: each out[i] is new.
KILN_API kiln_status *kiln_layer_get_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                                               const kiln_layer *layer, kiln_variables_kind kind);
/// The total number of elements of the layer's variables.
KILN_API kiln_status *kiln_layer_count_params(int64_t *out, const kiln_layer *layer);
/// The losses of the last call (add_loss, activity regularizers) and the weight regularizers'
/// terms computed from the current values (recorded by a tape watching the variables).
/// Ownership: *out is a new list.
KILN_API kiln_status *kiln_layer_get_losses(kiln_tensor_list **out, const kiln_layer *layer);
/// The number of direct sub-layers (model.layers); 0 for NULL.
KILN_API size_t kiln_layer_get_num_layers(const kiln_layer *layer);
/// The sub-layer at index (creation order). Ownership: *out is a new handle.
KILN_API kiln_status *kiln_layer_get_layer(kiln_layer **out, const kiln_layer *layer, size_t index);
/// The direct sub-layer named name (model.get_layer(name)); NOT_FOUND naming the layers there are.
KILN_API kiln_status *kiln_layer_get_layer_by_name(kiln_layer **out, const kiln_layer *layer, const char *name);
/// model.summary(): the Keras table. line_length 0 means Keras's default (65).
/// Ownership: *out is a new string, free with kiln_string_free.
KILN_API kiln_status *kiln_layer_summary(char **out, const kiln_layer *layer, int line_length);

/// Sequential.add: appends a layer (the model builds again on its next call).
KILN_API kiln_status *kiln_sequential_add(kiln_layer *sequential, kiln_layer *layer);
/// Sequential.pop: removes the last layer.
KILN_API kiln_status *kiln_sequential_pop(kiln_layer *sequential);

/// keras.backend.clear_session(): layer name counters start again ("dense" is free again).
KILN_API void kiln_clear_session(void);

/// Runs an initializer (keras.initializers): a new tensor of shape dims and a float dtype.
/// initializer is Keras's serialized form {"class_name": "GlorotUniform", "config": {...}} (the
/// class name may be a Keras alias: "glorot_uniform", "zeros", ...). Seeded initializers give the
/// same values on every call; unseeded ones the next values of the global sequence.
/// Ownership: *out is new.
KILN_API kiln_status *kiln_initializer_call(kiln_tensor **out, const kiln_config *initializer, const int64_t *dims,
                                            size_t rank, kiln_dtype dtype);

/* ----------------------------------------------------- custom layers: state */

/// Options of kiln_layer_add_weight. Fill with kiln_add_weight_options_init first.
typedef struct kiln_add_weight_options {
  size_t struct_size;                      /**< sizeof(kiln_add_weight_options) */
  kiln_dtype dtype;                        /**< default: the layer's dtype (float32) */
  const char *initializer;                 /**< a Keras name; default "glorot_uniform" */
  const kiln_config *initializer_config;   /**< or a serialized initializer (wins when set) */
  bool trainable;                          /**< default true */
  const char *regularizer;                 /**< "l1", "l2", "l1_l2" or NULL (none) */
  const kiln_config *regularizer_config;   /**< or a serialized regularizer (wins when set) */
} kiln_add_weight_options;

/// Fills options with the defaults. struct_size: sizeof(kiln_add_weight_options) as the caller
/// compiled it.
KILN_API kiln_status *kiln_add_weight_options_init(kiln_add_weight_options *options, size_t struct_size);
/// Keras add_weight: a new variable named <layer path>/<name> of shape dims, initialised by the
/// options' initializer, tracked by the layer in creation order. Allowed before and during
/// build; after build FAILED_PRECONDITION; a duplicate name INVALID_ARGUMENT. options may be
/// NULL (defaults). Ownership: *out is a new handle (the layer holds the variable too).
KILN_API kiln_status *kiln_layer_add_weight(kiln_variable **out, kiln_layer *layer, const char *name,
                                            const int64_t *dims, size_t rank,
                                            const kiln_add_weight_options *options);
/// Tracks a variable made elsewhere (kiln_variable_create) as one of layer's weights under name, as
/// Keras tracks `self.w = tf.Variable(...)` in a subclassed layer: it is then among the layer's
/// (trainable) variables, which fit and the optimizers train, and goes by name in checkpoints.
/// Trainable as the variable is. Allowed when kiln_layer_add_weight is (before and during build,
/// else FAILED_PRECONDITION); name: non-empty, without '/'. The name given again replaces that
/// weight; a variable already among layer's weights is not added again.
KILN_API kiln_status *kiln_layer_track_variable(kiln_layer *layer, kiln_variable *variable, const char *name);
/// Tracks child as a sub-layer of layer (creation order; its weights are named under layer's
/// path). Allowed until layer is built.
KILN_API kiln_status *kiln_layer_track(kiln_layer *layer, kiln_layer *child);
/// kiln_layer_track for a sub-layer a subclassed layer or model keeps in an attribute: the
/// attribute names it in checkpoints and SavedModels, as Keras's subclassed models key their
/// sub-layers (`dense1/kernel/.ATTRIBUTES/VARIABLE_VALUE`). attribute: "dense1", or for an element
/// of a list or dict attribute "blocks/0" / "heads/a" (each '/'-separated part one edge of the
/// object graph); not empty, UTF-8, no empty part. A layer may have several attributes; an
/// attribute given again names the new child, and paths under it or above it are dropped; a child
/// they named that no attribute names any more, and that was never tracked with kiln_layer_track,
/// is no longer a sub-layer (Python's reassignment). Allowed until layer is built. Sub-layers
/// tracked without an attribute keep the positional names `layer-<i>` / `layer_with_weights-<k>`.
KILN_API kiln_status *kiln_layer_track_as(kiln_layer *layer, kiln_layer *child, const char *attribute);
/// add_loss: adds a loss term for the current call.
KILN_API kiln_status *kiln_layer_add_loss(kiln_layer *layer, const kiln_tensor *loss);

/* ---------------------------------------------- preprocessing: adapt */

/// Keras's layer.adapt(data) of a preprocessing layer ("Normalization", "Discretization",
/// "IntegerLookup"):
/// computes the layer's state from data and sets it at once; an error leaves the state as it was.
/// Normalization: the mean and variance over every axis but the kept ones. Discretization (made
/// with num_bins): num_bins - 1 bin boundaries at the data's approximate quantiles, as Keras
/// computes them (they are in its config then). IntegerLookup: the vocabulary of the most
/// frequent tokens, as Keras learns it (a 1-D data array is a column of one-token samples; a
/// dataset's 1-D batch is one sample), with IDF weights for "tf_idf". data is one array, read as
/// one batch. A
/// Normalization not yet built builds from data's shape (its first axis unknown, unless kept).
/// Errors: INVALID_ARGUMENT for a layer whose class has no adapt, data whose shape differs
/// from the built one on a kept axis or in rank, or NaN data for a Discretization;
/// FAILED_PRECONDITION for a Normalization given mean and variance, a Discretization given
/// bin_boundaries or an IntegerLookup made with a vocabulary. Thread-safety: adapts of one layer run one at a
/// time; a call of the layer on another thread meanwhile may see the state before or after.
KILN_API kiln_status *kiln_layer_adapt(kiln_layer *layer, const kiln_tensor *data);
/// kiln_layer_adapt over a dataset of batches (Keras: "it must be batched"), in one pass: each
/// element's first component is a batch (the x of (x, y) elements). A dataset with no elements
/// is INVALID_ARGUMENT; an error reading it leaves the layer's state as it was.
KILN_API kiln_status *kiln_layer_adapt_dataset(kiln_layer *layer, const kiln_dataset *dataset);

/* ---------------------------------------------- preprocessing: vocabularies */

/// Keras's layer.get_vocabulary(include_special_tokens) of a lookup layer ("IntegerLookup"): a
/// new 1-D int64 tensor of every token by index. With include_special_tokens (Keras's default
/// true) the mask token (output_mode "int" only) and the OOV tokens come first, so a token's
/// position is the index a call gives it, and the length is Keras's vocabulary_size(); without,
/// only the vocabulary's own tokens. Errors: INVALID_ARGUMENT for a layer whose class has no
/// vocabulary. Thread-safety: may run beside calls, adapts and kiln_layer_set_vocabulary.
KILN_API kiln_status *kiln_layer_get_vocabulary(kiln_tensor **out, const kiln_layer *layer,
                                                bool include_special_tokens);
/// Keras's layer.set_vocabulary(vocabulary, idf_weights=None): replaces the vocabulary of a lookup
/// layer with vocabulary (1-D integer tokens, each once; the mask and OOV tokens left out, or first
/// in Keras's order: mask, then num_oov_indices OOV tokens). idf_weights (1-D float, as long as
/// vocabulary) is required with output_mode "tf_idf" and NULL otherwise; without the special
/// tokens in front, their weights are the mean weight. Errors: INVALID_ARGUMENT for a layer with
/// no vocabulary, an empty or repeating vocabulary, the mask token (or, inverted, the OOV token)
/// elsewhere in it, more than max_tokens indices, idf_weights missing, unwanted or of another
/// length; FAILED_PRECONDITION when output_mode is not "int", pad_to_max_tokens is false and the
/// size differs from the vocabulary's before (Keras fixes it once set). An error changes nothing.
KILN_API kiln_status *kiln_layer_set_vocabulary(kiln_layer *layer, const kiln_tensor *vocabulary,
                                                const kiln_tensor *idf_weights);

/* ---------------------------------------------- custom layers: the callbacks */

/// A custom layer's behaviour. NULL entries mean "default". Callbacks return NULL for success
/// or a status (kiln_status_create) that the calling kiln function returns, with its code.
/// `self` is borrowed: valid during the callback only (kiln_layer_clone it to keep it).
typedef struct kiln_layer_callbacks {
  size_t struct_size; /**< sizeof(kiln_layer_callbacks) */
  /// Creates the weights (kiln_layer_add_weight on self) for inputs of the given shapes (laid
  /// out as in kiln_layer_build). Runs once, on the thread of the first call. Default: nothing.
  kiln_status *(*build)(kiln_layer *self, const int64_t *dims, const size_t *ranks, size_t num_inputs,
                        void *user_data);
  /// Required unless call_with_mask is set. Computes outputs (an empty list to append to) from
  /// inputs. Runs on the caller's thread; may run on several threads at once for a built layer
  /// called concurrently.
  kiln_status *(*call)(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                       bool training, void *user_data);
  /// Adds the layer's own keys to config (which already holds name, trainable, dtype).
  /// Default: none.
  kiln_status *(*get_config)(kiln_config *config, const kiln_layer *self, void *user_data);
  /// Frees user_data when the layer object dies (its last handle or parent goes). May run on
  /// any thread. Default: nothing.
  void (*destroy)(void *user_data);
  /* Masking (read only when struct_size covers these fields; an older table means: no
   * masking, as before). */
  /// Keras's supports_masking: the layer passes its inputs' masks on to its outputs unless
  /// compute_mask says otherwise. Default false.
  bool supports_masking;
  /// Used instead of call when set (call may then be NULL): as call, plus masks, one slot per
  /// input, empty where an input has none (borrowed, valid during the callback). Runs where
  /// call runs, on the caller's thread, possibly on several threads at once.
  kiln_status *(*call_with_mask)(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                                 const kiln_tensor_list *masks, bool training, void *user_data);
  /// Keras compute_mask: appends the outputs' masks to out_masks (an empty list), one per
  /// output, an empty slot (kiln_tensor_list_append(out_masks, NULL)) where an output has none;
  /// leaving it empty means no masks. inputs and masks (one slot per input, empty for none) are
  /// borrowed for the callback. Runs after call on the caller's thread, or from
  /// kiln_layer_compute_mask. Default: the input masks when supports_masking, else none.
  kiln_status *(*compute_mask)(kiln_tensor_list *out_masks, kiln_layer *self, const kiln_tensor_list *inputs,
                               const kiln_tensor_list *masks, void *user_data);
} kiln_layer_callbacks;

/// A custom layer of class class_name driven by callbacks (the trampoline under kiln.hpp's and
/// Python's Layer subclasses). base_config may hold name, trainable, dtype (or be NULL).
/// callbacks is copied; user_data is passed to every callback. Ownership: *out is new; on
/// failure destroy is not called (user_data stays the caller's).
KILN_API kiln_status *kiln_layer_create_custom(kiln_layer **out, const char *class_name,
                                               const kiln_config *base_config,
                                               const kiln_layer_callbacks *callbacks, void *user_data);
/// As kiln_layer_create_custom, for a model (a Model subclass: summary says "Model").
KILN_API kiln_status *kiln_model_create_custom(kiln_layer **out, const char *class_name,
                                               const kiln_config *base_config,
                                               const kiln_layer_callbacks *callbacks, void *user_data);

/* ------------------------------------------------- custom classes: the registry */

/// How to make a custom layer class from its config, so that kiln_layer_create,
/// kiln_layer_deserialize (a Sequential holding the class) and the SavedModel can make it by
/// name, as Keras's registered custom objects. Callbacks return NULL for success or a status.
typedef struct kiln_layer_class_callbacks {
  size_t struct_size; /**< sizeof(kiln_layer_class_callbacks) */
  /// Required. A new layer of the class from config (what the class's get_config wrote: name,
  /// trainable, dtype and its own keys). *out is a new handle that kiln takes. Runs on the thread
  /// that asked for the layer; may run on several threads at once.
  kiln_status *(*from_config)(kiln_layer **out, const kiln_config *config, void *user_data);
  /// Frees user_data when the registration ends (kiln_layer_unregister_class, or a new
  /// registration of the name) and no from_config still runs; never at process exit.
  /// May run on any thread. Default: nothing.
  void (*destroy)(void *user_data);
} kiln_layer_class_callbacks;

/// Registers the custom layer class class_name (Keras's registered name, e.g. "MyPackage>MyDense";
/// a layer made with kiln_layer_create_custom(&l, "MyPackage>MyDense", ...) has class name
/// "MyDense" and serializes with that registered name). A new registration of a name replaces
/// the old one. A built-in class name is INVALID_ARGUMENT. callbacks is copied. On failure
/// destroy is not called (user_data stays the caller's). Thread-safety: safe.
KILN_API kiln_status *kiln_layer_register_class(const char *class_name, const kiln_layer_class_callbacks *callbacks,
                                                void *user_data);
/// Ends the registration of a custom class: NOT_FOUND when none has that name, INVALID_ARGUMENT
/// for a built-in class. Layers already made live on. Thread-safety: safe.
KILN_API kiln_status *kiln_layer_unregister_class(const char *class_name);
/// Whether class_name is registered (built-in or custom); false for NULL. Thread-safety: safe.
KILN_API bool kiln_layer_class_is_registered(const char *class_name);

/* ---- Mixed precision (Keras's dtype policies, keras.mixed_precision) ----
 * A policy names a layer's compute dtype and variable dtype: "float32", "float64" and "bfloat16"
 * use one dtype for both; "mixed_bfloat16" computes in bfloat16 and keeps variables (so
 * gradients and optimizer state) in float32. A layer made without a "dtype" config key takes the
 * global policy in force when it is made; its "dtype" key takes a policy name (or Keras 3's
 * serialized {"class_name": "DTypePolicy", "config": {"name": ...}}). A call casts floating inputs
 * to the compute dtype and reads variables cast to it; normalization layers compute in float32.
 * bfloat16 runs natively where the CPU has it (AVX512-BF16, AMX) and is emulated (exactly, only
 * slower) elsewhere. "float16" and "mixed_float16" are UNIMPLEMENTED (kiln has no float16). */

/// keras.DTypePolicy(name): the compute and variable dtypes of the policy called name
/// ("mixed_bfloat16" -> BFLOAT16, FLOAT32). INVALID_ARGUMENT listing the known policies for an
/// unknown name, UNIMPLEMENTED for "float16"/"mixed_float16"; the outs are then untouched.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_dtype_policy_get_dtypes(kiln_dtype *out_compute, kiln_dtype *out_variable,
                                                   const char *name);
/// keras.mixed_precision.set_global_policy(name): the policy layers made from now on take when
/// their config has no dtype. An unknown name is INVALID_ARGUMENT listing the known policies;
/// the global policy is then unchanged. Thread-safety: safe (process-wide, as tf.keras).
KILN_API kiln_status *kiln_set_global_dtype_policy(const char *name);
/// keras.mixed_precision.global_policy().name ("float32" until set).
/// Ownership: *out is a new string, free with kiln_string_free. Thread-safety: safe.
KILN_API kiln_status *kiln_get_global_dtype_policy(char **out);
/// The layer's policy name (layer.dtype_policy.name: "float32", "mixed_bfloat16", ...).
/// Lifetime: borrowed, valid while the layer lives; NULL for NULL.
KILN_API const char *kiln_layer_get_dtype_policy(const kiln_layer *layer);
/// layer.compute_dtype: the dtype its call computes in and outputs. Returns 0 for NULL.
KILN_API kiln_dtype kiln_layer_get_compute_dtype(const kiln_layer *layer);
/// layer.variable_dtype (Keras's layer.dtype): the dtype of the weights it creates. 0 for NULL.
KILN_API kiln_dtype kiln_layer_get_variable_dtype(const kiln_layer *layer);

#ifdef __cplusplus
}
#endif

#endif /* KILN_LAYERS_H */
