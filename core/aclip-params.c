/* aclip-params.c — the parameter table and the activation arena (aclip-params.h). */
#include "aclip-params.h"

#include "aclip-error.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_FLOATS 16 /* 64 bytes */
#define GOLDEN       G_GUINT64_CONSTANT (0x9e3779b97f4a7c15)

struct _AclipParams
{
  GPtrArray *tensors;  /* of AclipParamInfo *, each owning its name */
  GHashTable *by_name; /* name (borrowed from the info) → index + 1 */
  gint64 n_elements;
  gsize n_floats;
  gboolean sealed;
  AclipParamsMode mode;
  float *values; /* [n_floats] */
  float *grads;  /* [n_floats], training only */
  float *adam;   /* [2, n_floats]: m then v, training only */
  gint64 step;
};

static gsize
round_up (gsize n, gsize multiple)
{
  return (n + multiple - 1) / multiple * multiple;
}

/* A zeroed, 64-byte aligned block of n_floats floats, or NULL with an error. */
static float *
aligned_block (gsize n_floats, const char *what, GError **error)
{
  void *block = NULL;
  if (n_floats > G_MAXSIZE / sizeof (float) ||
      posix_memalign (&block, 64, MAX (n_floats, 1) * sizeof (float)) != 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("Not enough memory for the %s (%zu MiB)"), what,
                 (size_t) (n_floats / (1024 * 1024 / sizeof (float))));
    return NULL;
  }
  memset (block, 0, MAX (n_floats, 1) * sizeof (float));
  return block;
}

static void
param_info_free (gpointer data)
{
  AclipParamInfo *info = data;
  g_free ((char *) info->name);
  g_free (info);
}

AclipParams *
aclip_params_new (void)
{
  AclipParams *params = g_new0 (AclipParams, 1);
  params->tensors = g_ptr_array_new_with_free_func (param_info_free);
  params->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return params;
}

void
aclip_params_free (AclipParams *params)
{
  if (!params)
    return;
  g_hash_table_unref (params->by_name);
  g_ptr_array_unref (params->tensors);
  free (params->values);
  free (params->grads);
  free (params->adam);
  g_free (params);
}

int
aclip_params_add (AclipParams *params, const char *name, int n_dims, const gint64 *shape,
                  AclipInit init, AclipParamFlags flags, GError **error)
{
  g_return_val_if_fail (params != NULL, -1);
  g_return_val_if_fail (name != NULL, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (params->sealed) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("Cannot add the tensor “%s”: the parameter table is already sealed"), name);
    return -1;
  }
  size_t name_length = strlen (name);
  if (name_length == 0 || name_length > ACLIP_PARAMS_MAX_NAME) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("A tensor name must have 1 to %d bytes (“%s”)"), ACLIP_PARAMS_MAX_NAME, name);
    return -1;
  }
  if (g_hash_table_contains (params->by_name, name)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("The tensor name “%s” is used twice"), name);
    return -1;
  }
  if (n_dims < 1 || n_dims > ACLIP_PARAMS_MAX_DIMS || !shape) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("The tensor “%s” must have 1 to %d dimensions, not %d"), name,
                 ACLIP_PARAMS_MAX_DIMS, n_dims);
    return -1;
  }
  /* A bound well inside gsize, so that offsets, four blocks and byte counts cannot overflow. */
  const gint64 limit = G_GINT64_CONSTANT (1) << 40;
  gint64 n_elements = 1;
  for (int d = 0; d < n_dims; d++) {
    if (shape[d] <= 0 || shape[d] > limit || n_elements > limit / shape[d]) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("The tensor “%s” has an impossible size %" PRId64 " in dimension %d"), name,
                   (int64_t) shape[d], d);
      return -1;
    }
    n_elements *= shape[d];
  }
  if (params->n_elements > limit - n_elements) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("The tensor “%s” makes the model too large"), name);
    return -1;
  }

  AclipParamInfo *info = g_new0 (AclipParamInfo, 1);
  info->name = g_strdup (name);
  info->n_dims = n_dims;
  memcpy (info->shape, shape, (size_t) n_dims * sizeof (gint64));
  info->n_elements = n_elements;
  info->init = init;
  info->flags = flags;
  g_ptr_array_add (params->tensors, info);
  int index = (int) params->tensors->len - 1;
  g_hash_table_insert (params->by_name, (gpointer) info->name, GINT_TO_POINTER (index + 1));
  params->n_elements += n_elements;
  return index;
}

gboolean
aclip_params_seal (AclipParams *params, AclipParamsMode mode, GError **error)
{
  g_return_val_if_fail (params != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (params->sealed) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                         _("The parameter table is already sealed"));
    return FALSE;
  }
  if (params->tensors->len == 0) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                         _("The parameter table has no tensors"));
    return FALSE;
  }
  gsize offset = 0;
  for (guint i = 0; i < params->tensors->len; i++) {
    AclipParamInfo *info = g_ptr_array_index (params->tensors, i);
    info->offset = offset;
    offset += round_up ((gsize) info->n_elements, ALIGN_FLOATS);
  }
  params->n_floats = offset;

  params->values = aligned_block (offset, _("parameters"), error);
  if (!params->values)
    return FALSE;
  if (mode == ACLIP_PARAMS_TRAINING) {
    params->grads = aligned_block (offset, _("gradients"), error);
    params->adam = params->grads ? aligned_block (2 * offset, _("optimiser state"), error) : NULL;
    if (!params->adam) {
      g_clear_pointer (&params->values, free);
      g_clear_pointer (&params->grads, free);
      return FALSE;
    }
  }
  params->mode = mode;
  params->sealed = TRUE;
  return TRUE;
}

gboolean
aclip_params_is_sealed (const AclipParams *params)
{
  return params->sealed;
}

gboolean
aclip_params_is_training (const AclipParams *params)
{
  return params->sealed && params->mode == ACLIP_PARAMS_TRAINING;
}

int
aclip_params_n_tensors (const AclipParams *params)
{
  return (int) params->tensors->len;
}

const AclipParamInfo *
aclip_params_info (const AclipParams *params, int index)
{
  g_return_val_if_fail (index >= 0 && (guint) index < params->tensors->len, NULL);
  return g_ptr_array_index (params->tensors, index);
}

int
aclip_params_lookup (const AclipParams *params, const char *name)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (params->by_name, name)) - 1;
}

gint64
aclip_params_n_elements (const AclipParams *params)
{
  return params->n_elements;
}

gsize
aclip_params_n_floats (const AclipParams *params)
{
  return params->n_floats;
}

gsize
aclip_params_bytes (const AclipParams *params)
{
  if (!params->sealed)
    return 0;
  gsize blocks = params->mode == ACLIP_PARAMS_TRAINING ? 4 : 1;
  return blocks * params->n_floats * sizeof (float);
}

float *
aclip_params_values (AclipParams *params)
{
  return params->values;
}

float *
aclip_params_grads (AclipParams *params)
{
  return params->grads;
}

float *
aclip_params_adam_m (AclipParams *params)
{
  return params->adam;
}

float *
aclip_params_adam_v (AclipParams *params)
{
  return params->adam ? params->adam + params->n_floats : NULL;
}

float *
aclip_params_value (AclipParams *params, int index)
{
  const AclipParamInfo *info = aclip_params_info (params, index);
  return info && params->values ? params->values + info->offset : NULL;
}

float *
aclip_params_grad (AclipParams *params, int index)
{
  const AclipParamInfo *info = aclip_params_info (params, index);
  return info && params->grads ? params->grads + info->offset : NULL;
}

float *
aclip_params_value_by_name (AclipParams *params, const char *name)
{
  int index = aclip_params_lookup (params, name);
  return index >= 0 ? aclip_params_value (params, index) : NULL;
}

float *
aclip_params_grad_by_name (AclipParams *params, const char *name)
{
  int index = aclip_params_lookup (params, name);
  return index >= 0 ? aclip_params_grad (params, index) : NULL;
}

void
aclip_params_zero_grads (AclipParams *params)
{
  if (params->grads)
    memset (params->grads, 0, params->n_floats * sizeof (float));
}

gint64
aclip_params_get_step (const AclipParams *params)
{
  return params->step;
}

void
aclip_params_set_step (AclipParams *params, gint64 step)
{
  params->step = step;
}

/* Initialisation ------------------------------------------------------------------------ */

static inline guint64
mix64 (guint64 z)
{
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* FNV-1a, 64 bits. */
static guint64
name_hash (const char *name)
{
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325);
  for (const guchar *p = (const guchar *) name; *p; p++)
    h = (h ^ *p) * G_GUINT64_CONSTANT (0x100000001b3);
  return h;
}

/* Output number `counter` of a splitmix64 sequence started at `key`: random access, so any
 * element can be drawn on its own. Uniform on [0, 1) with 53 bits. */
static inline double
uniform_at (guint64 key, guint64 counter)
{
  return (double) (mix64 (key + (counter + 1) * GOLDEN) >> 11) * 0x1.0p-53;
}

/* Standard normal number `counter` (Box–Muller on two uniforms of the sequence). */
static inline double
normal_at (guint64 key, guint64 counter)
{
  double u1 = 1.0 - uniform_at (key, 2 * counter); /* (0, 1] */
  double u2 = uniform_at (key, 2 * counter + 1);
  return sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2);
}

typedef struct
{
  float *out;
  guint64 key;
  AclipInitKind kind;
  double scale; /* the σ, bound or constant the rule resolved to */
} FillJob;

#define MAX_REDRAWS 64 /* a normal lands outside ±2σ with probability 0.046 */

static void
fill_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  const FillJob *job = data;
  for (gint64 i = begin; i < end; i++) {
    double value;
    switch (job->kind) {
      case ACLIP_INIT_NORMAL:
      case ACLIP_INIT_KAIMING_NORMAL:
        value = job->scale * normal_at (job->key, (guint64) i * MAX_REDRAWS);
        break;
      case ACLIP_INIT_TRUNC_NORMAL: {
        double z = 0.0;
        for (int attempt = 0; attempt < MAX_REDRAWS; attempt++) {
          z = normal_at (job->key, (guint64) i * MAX_REDRAWS + attempt);
          if (fabs (z) <= 2.0)
            break;
        }
        value = job->scale * CLAMP (z, -2.0, 2.0);
        break;
      }
      case ACLIP_INIT_UNIFORM:
      case ACLIP_INIT_FAN_IN_UNIFORM:
      case ACLIP_INIT_XAVIER_UNIFORM:
        value = job->scale * (2.0 * uniform_at (job->key, (guint64) i) - 1.0);
        break;
      default:
        value = job->scale;
        break;
    }
    job->out[i] = (float) value;
  }
}

static void
fans (const AclipParamInfo *info, double *fan_in, double *fan_out)
{
  double receptive = 1.0;
  for (int d = 2; d < info->n_dims; d++)
    receptive *= (double) info->shape[d];
  if (info->n_dims == 1) {
    *fan_in = *fan_out = (double) info->shape[0];
  } else {
    *fan_in = (double) info->shape[1] * receptive;
    *fan_out = (double) info->shape[0] * receptive;
  }
  if (info->init.fan_in > 0)
    *fan_in = (double) info->init.fan_in;
  if (info->init.fan_out > 0)
    *fan_out = (double) info->init.fan_out;
}

void
aclip_params_init (AclipParams *params, guint64 seed, AclipThreadPool *pool)
{
  g_return_if_fail (params->sealed);
  const guint64 seed_key = mix64 (seed + GOLDEN);
  for (guint t = 0; t < params->tensors->len; t++) {
    const AclipParamInfo *info = g_ptr_array_index (params->tensors, t);
    double fan_in, fan_out;
    fans (info, &fan_in, &fan_out);
    FillJob job = { .out = params->values + info->offset,
                    .key = mix64 (seed_key ^ name_hash (info->name)),
                    .kind = info->init.kind };
    double value = info->init.value;
    switch (info->init.kind) {
      case ACLIP_INIT_ZEROS:
        job.scale = 0.0;
        break;
      case ACLIP_INIT_ONES:
        job.scale = 1.0;
        break;
      case ACLIP_INIT_FAN_IN_UNIFORM:
        job.scale = value / sqrt (fan_in);
        break;
      case ACLIP_INIT_XAVIER_UNIFORM:
        job.scale = value * sqrt (6.0 / (fan_in + fan_out));
        break;
      case ACLIP_INIT_KAIMING_NORMAL:
        job.scale = value / sqrt (fan_in);
        break;
      default: /* constant, normal, truncated normal, uniform */
        job.scale = value;
        break;
    }
    aclip_parallel_for (pool, info->n_elements, 8192, fill_range, &job);
  }
  if (params->adam)
    memset (params->adam, 0, 2 * params->n_floats * sizeof (float));
  params->step = 0;
}

/* Activation arena ------------------------------------------------------------------------ */

struct _AclipArena
{
  gsize n_floats;
  gboolean overflow; /* a reservation went past what any allocation could hold */
  float *block;
};

AclipArena *
aclip_arena_new (void)
{
  return g_new0 (AclipArena, 1);
}

void
aclip_arena_free (AclipArena *arena)
{
  if (!arena)
    return;
  free (arena->block);
  g_free (arena);
}

gsize
aclip_arena_reserve (AclipArena *arena, gsize n_floats)
{
  g_return_val_if_fail (arena->block == NULL, 0);
  gsize offset = arena->n_floats;
  const gsize limit = G_MAXSIZE / (2 * sizeof (float));
  if (n_floats > limit || arena->n_floats > limit - n_floats)
    arena->overflow = TRUE;
  else
    arena->n_floats += round_up (n_floats, ALIGN_FLOATS);
  return offset;
}

gboolean
aclip_arena_seal (AclipArena *arena, GError **error)
{
  g_return_val_if_fail (arena->block == NULL, FALSE);
  if (arena->overflow) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                         _("The activations need more memory than can be addressed"));
    return FALSE;
  }
  arena->block = aligned_block (arena->n_floats, _("activations"), error);
  return arena->block != NULL;
}

float *
aclip_arena_at (AclipArena *arena, gsize offset)
{
  g_return_val_if_fail (arena->block != NULL && offset <= arena->n_floats, NULL);
  return arena->block + offset;
}

gsize
aclip_arena_n_floats (const AclipArena *arena)
{
  return arena->n_floats;
}
