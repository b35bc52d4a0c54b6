/* Custom layer classes registered from C (kiln_layer_register_class): a Sequential holding one
 * serializes and deserializes through the class's from_config; registration errors; weak
 * handles (kiln_layer_clone_weak). Links only libkiln.so. */
#include "capi_test_util.h"

#define OK(call) EXPECT_OK(call)

/* The layer: y = x * scale, scale read from the config. */
typedef struct scale_state {
  double scale;
} scale_state;

static int g_layers_destroyed = 0, g_classes_destroyed = 0;

static kiln_status *scale_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                               bool training, void *user_data) {
  const scale_state *s = (const scale_state *)user_data;
  kiln_tensor *x = NULL, *k = NULL, *y = NULL;
  kiln_status *st;
  float scale = (float)s->scale;
  (void)self;
  (void)training;
  if ((st = kiln_tensor_list_get(&x, inputs, 0))) return st;
  if ((st = kiln_tensor_create(&k, KILN_DTYPE_FLOAT32, NULL, 0, &scale, sizeof scale)) == NULL &&
      (st = kiln_mul(&y, x, k)) == NULL)
    st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(x);
  kiln_tensor_free(k);
  kiln_tensor_free(y);
  return st;
}

static kiln_status *scale_get_config(kiln_config *config, const kiln_layer *self, void *user_data) {
  (void)self;
  return kiln_config_set_float(config, "scale", ((const scale_state *)user_data)->scale);
}

static void scale_destroy(void *user_data) {
  free(user_data);
  ++g_layers_destroyed;
}

static kiln_status *make_scale(kiln_layer **out, const char *class_name, double scale, const char *name) {
  kiln_layer_callbacks cb;
  kiln_config *base = NULL;
  kiln_status *st;
  scale_state *s = (scale_state *)malloc(sizeof *s);
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = scale_call;
  cb.get_config = scale_get_config;
  cb.destroy = scale_destroy;
  s->scale = scale;
  if ((st = kiln_config_create(&base))) {
    free(s);
    return st;
  }
  if (name) kiln_config_set_string(base, "name", name);
  st = kiln_layer_create_custom(out, class_name, base, &cb, s);
  kiln_config_free(base);
  if (st) free(s); /* not handed over on failure */
  return st;
}

/* The class's from_config: the base keys (name) and scale. user_data counts the calls. */
static kiln_status *scale_from_config(kiln_layer **out, const kiln_config *config, void *user_data) {
  double scale = 0;
  const char *name = NULL;
  kiln_status *st = kiln_config_get_float(&scale, config, "scale");
  if (st) return st;
  if (kiln_config_has(config, "name") && (st = kiln_config_get_string(&name, config, "name"))) return st;
  ++*(int *)user_data;
  return make_scale(out, "CTest>Scale", scale, name);
}

static void class_destroy(void *user_data) {
  (void)user_data;
  ++g_classes_destroyed;
}

static kiln_status *failing_from_config(kiln_layer **out, const kiln_config *config, void *user_data) {
  (void)out;
  (void)config;
  (void)user_data;
  return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "no such scale");
}

static void test_round_trip(void) {
  static const int64_t xd[2] = {2, 3};
  static const float xv[6] = {1, 2, 3, -4, 5, -6};
  static int made = 0;
  kiln_layer_class_callbacks cls;
  kiln_layer *seq = NULL, *scale = NULL, *clone = NULL, *inner = NULL;
  kiln_config *serialized = NULL, *cfg = NULL;
  kiln_tensor *x = f32(2, xd, xv), *y1 = NULL, *y2 = NULL;
  const char *s = NULL;
  int i;
  memset(&cls, 0, sizeof cls);
  cls.struct_size = sizeof cls;
  cls.from_config = scale_from_config;
  cls.destroy = class_destroy;
  kiln_clear_session();
  CHECK(!kiln_layer_class_is_registered("CTest>Scale"));
  OK(kiln_layer_register_class("CTest>Scale", &cls, &made));
  CHECK(kiln_layer_class_is_registered("CTest>Scale"));
  CHECK(kiln_layer_class_is_registered("Dense"));
  CHECK(!kiln_layer_class_is_registered(NULL));

  OK(make_scale(&scale, "CTest>Scale", 2.5, NULL));
  CHECK(strcmp(kiln_layer_get_class_name(scale), "Scale") == 0);
  CHECK(strcmp(kiln_layer_get_name(scale), "scale") == 0);
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  OK(kiln_sequential_add(seq, scale));
  OK(kiln_layer_call_tensor(&y1, seq, x, false));
  OK(kiln_layer_serialize(&serialized, seq));
  /* The Sequential's layers list holds {"class_name": "Scale", "registered_name": "CTest>Scale"}. */
  {
    kiln_config *inner_cfg = NULL;
    OK(kiln_config_get_config(&inner_cfg, serialized, "config"));
    OK(kiln_config_get_config_at(&cfg, inner_cfg, "layers", 0));
    OK(kiln_config_get_string(&s, cfg, "class_name"));
    CHECK(strcmp(s, "Scale") == 0);
    OK(kiln_config_get_string(&s, cfg, "registered_name"));
    CHECK(strcmp(s, "CTest>Scale") == 0);
    kiln_config_free(cfg);
    kiln_config_free(inner_cfg);
  }
  kiln_layer_free(scale);
  kiln_layer_free(seq);
  CHECK(g_layers_destroyed == 1);
  OK(kiln_layer_deserialize(&clone, serialized));
  CHECK(made == 1);
  CHECK(kiln_layer_get_num_layers(clone) == 1);
  OK(kiln_layer_get_layer(&inner, clone, 0));
  CHECK(strcmp(kiln_layer_get_class_name(inner), "Scale") == 0);
  CHECK(strcmp(kiln_layer_get_name(inner), "scale") == 0);
  OK(kiln_layer_get_config(&cfg, inner));
  {
    double v = 0;
    OK(kiln_config_get_float(&v, cfg, "scale"));
    CHECK(v == 2.5);
    OK(kiln_config_get_string(&s, cfg, "name"));
    CHECK(strcmp(s, "scale") == 0);
  }
  kiln_config_free(cfg);
  OK(kiln_layer_call_tensor(&y2, clone, x, false));
  for (i = 0; i < 6; ++i) CHECK(fdata(y1)[i] == fdata(y2)[i] && fdata(y2)[i] == 2.5f * xv[i]);
  kiln_layer_free(inner);
  kiln_layer_free(clone);
  CHECK(g_layers_destroyed == 2);

  /* Unregistered: deserialization names the class it cannot find. */
  OK(kiln_layer_unregister_class("CTest>Scale"));
  CHECK(g_classes_destroyed == 1);
  CHECK(!kiln_layer_class_is_registered("CTest>Scale"));
  clone = NULL;
  EXPECT_ERROR(kiln_layer_deserialize(&clone, serialized), KILN_STATUS_NOT_FOUND, "unknown layer class 'Scale'", NULL);
  CHECK(clone == NULL);
  EXPECT_ERROR(kiln_layer_unregister_class("CTest>Scale"), KILN_STATUS_NOT_FOUND, "CTest>Scale", NULL);
  kiln_config_free(serialized);
  kiln_tensor_free(y1);
  kiln_tensor_free(y2);
  release_kept();
}

static void test_registration_errors(void) {
  kiln_layer_class_callbacks cls;
  kiln_layer *l = NULL;
  kiln_config *c = NULL;
  int made = 0;
  memset(&cls, 0, sizeof cls);
  cls.struct_size = sizeof cls;
  cls.from_config = scale_from_config;
  cls.destroy = class_destroy;
  g_classes_destroyed = 0;
  EXPECT_ERROR(kiln_layer_register_class("Dense", &cls, &made), KILN_STATUS_INVALID_ARGUMENT, "built-in", NULL);
  EXPECT_ERROR(kiln_layer_unregister_class("Dense"), KILN_STATUS_INVALID_ARGUMENT, "built-in", NULL);
  EXPECT_ERROR(kiln_layer_register_class(NULL, &cls, &made), KILN_STATUS_INVALID_ARGUMENT, "class_name", NULL);
  EXPECT_ERROR(kiln_layer_register_class("", &cls, &made), KILN_STATUS_INVALID_ARGUMENT, "empty", NULL);
  EXPECT_ERROR(kiln_layer_register_class("X", NULL, &made), KILN_STATUS_INVALID_ARGUMENT, "callbacks", NULL);
  cls.struct_size = 4;
  EXPECT_ERROR(kiln_layer_register_class("X", &cls, &made), KILN_STATUS_INVALID_ARGUMENT, "struct_size", NULL);
  cls.struct_size = sizeof cls;
  cls.from_config = NULL;
  EXPECT_ERROR(kiln_layer_register_class("X", &cls, &made), KILN_STATUS_INVALID_ARGUMENT, "from_config", NULL);
  CHECK(g_classes_destroyed == 0); /* failed registrations leave user_data the caller's */

  /* A from_config that fails: its code and message, naming the class. */
  cls.from_config = failing_from_config;
  OK(kiln_layer_register_class("CTest>Failing", &cls, &made));
  OK(kiln_config_create(&c));
  EXPECT_ERROR(kiln_layer_create(&l, "CTest>Failing", c), KILN_STATUS_OUT_OF_RANGE, "'CTest>Failing'",
               "no such scale");
  CHECK(l == NULL);
  /* A second registration of a name replaces the first (whose destroy runs). */
  cls.from_config = scale_from_config;
  OK(kiln_layer_register_class("CTest>Failing", &cls, &made));
  CHECK(g_classes_destroyed == 1);
  OK(kiln_config_set_float(c, "scale", 3.0));
  OK(kiln_layer_create(&l, "CTest>Failing", c));
  CHECK(made == 1);
  kiln_layer_free(l);
  OK(kiln_layer_unregister_class("CTest>Failing"));
  CHECK(g_classes_destroyed == 2);
  kiln_config_free(c);
}

static void test_weak_handles(void) {
  static const int64_t xd[1] = {2};
  static const float xv[2] = {1, 2};
  kiln_layer *strong = NULL, *weak = NULL, *again = NULL;
  kiln_tensor *x = f32(1, xd, xv), *y = NULL;
  kiln_config *c = NULL;
  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "units", 1));
  OK(kiln_layer_create(&strong, "Dense", c));
  kiln_config_free(c);
  OK(kiln_layer_clone_weak(&weak, strong));
  CHECK(kiln_layer_get_id(weak) == kiln_layer_get_id(strong));
  CHECK(strcmp(kiln_layer_get_name(weak), kiln_layer_get_name(strong)) == 0);
  OK(kiln_layer_clone(&again, weak)); /* a strong clone of a weak handle */
  kiln_layer_free(strong);
  CHECK(kiln_layer_get_name(weak) != NULL); /* `again` keeps it */
  kiln_layer_free(again);
  CHECK(kiln_layer_get_name(weak) == NULL);
  CHECK(kiln_layer_get_id(weak) == 0);
  CHECK(!kiln_layer_get_built(weak));
  EXPECT_ERROR(kiln_layer_call_tensor(&y, weak, x, false), KILN_STATUS_FAILED_PRECONDITION, "no longer exists", NULL);
  EXPECT_ERROR(kiln_layer_clone_weak(&again, NULL), KILN_STATUS_INVALID_ARGUMENT, "layer", NULL);
  kiln_layer_free(weak);
  release_kept();
}

int main(void) {
  test_round_trip();
  test_registration_errors();
  test_weak_handles();
  return test_summary();
}
