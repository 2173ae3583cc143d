/* aclip-image-pretrain.c — the image encoder's training objectives (aclip-image-pretrain.h):
 * SimCLR pretraining, and the supervised regression of the baseline. Both put the same head
 * on the encoder's tokens — global average pooling, Linear, ReLU, Linear — which this file
 * keeps in one place (Mlp). */
#include "aclip-image-pretrain.h"

#include "aclip-error.h"
#include "aclip-loss.h"
#include "aclip-nn.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#define GROUP           "simclr"
#define REGRESSOR_GROUP "regressor"
#define NORMALIZE_EPS   1e-12f

/* ---- Configuration ---------------------------------------------------------------------- */

void
aclip_simclr_config_init_default (AclipSimclrConfig *config)
{
  g_return_if_fail (config != NULL);
  config->hidden = 512;
  config->dim = 128;
  config->temperature = 0.2f;
}

gboolean
aclip_simclr_config_validate (const AclipSimclrConfig *config, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  if (config->hidden < 1 || config->hidden > 65536 || config->dim < 1 || config->dim > 65536 ||
      !(config->temperature > 0.0f) || !isfinite (config->temperature)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("Invalid projection head: its widths must be 1–65536 and its temperature "
                    "positive"));
    return FALSE;
  }
  return TRUE;
}

void
aclip_simclr_config_save (const AclipSimclrConfig *config, GKeyFile *key_file)
{
  g_return_if_fail (config != NULL && key_file != NULL);
  char number[G_ASCII_DTOSTR_BUF_SIZE];
  g_key_file_set_integer (key_file, GROUP, "hidden", config->hidden);
  g_key_file_set_integer (key_file, GROUP, "dim", config->dim);
  g_key_file_set_value (key_file, GROUP, "temperature",
                        g_ascii_formatd (number, sizeof number, "%.9g", config->temperature));
}

gboolean
aclip_simclr_config_load (AclipSimclrConfig *config, GKeyFile *key_file, GError **error)
{
  g_return_val_if_fail (config != NULL && key_file != NULL, FALSE);
  if (!g_key_file_has_group (key_file, GROUP)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("The model has no [%s] section"),
                 GROUP);
    return FALSE;
  }
  AclipSimclrConfig c;
  aclip_simclr_config_init_default (&c);
  static const char *const keys[] = { "hidden", "dim", "temperature" };
  for (gsize k = 0; k < G_N_ELEMENTS (keys); k++) {
    if (!g_key_file_has_key (key_file, GROUP, keys[k], NULL))
      continue;
    g_autoptr (GError) local = NULL;
    double value = g_key_file_get_double (key_file, GROUP, keys[k], &local);
    if (local != NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", GROUP, keys[k],
                   local->message);
      return FALSE;
    }
    if (k == 0)
      c.hidden = (int) value;
    else if (k == 1)
      c.dim = (int) value;
    else
      c.temperature = (float) value;
  }
  if (!aclip_simclr_config_validate (&c, error))
    return FALSE;
  *config = c;
  return TRUE;
}

/* ---- Parameters ------------------------------------------------------------------------- */

/* nn.Linear's weight [out, in] and bias [out], PyTorch's default initialisation. */
static gboolean
add_linear (AclipParams *params, const char *prefix, const char *name, int out_features,
            int in_features, GError **error)
{
  g_autofree char *weight = g_strdup_printf ("%s%s.weight", prefix, name);
  g_autofree char *bias = g_strdup_printf ("%s%s.bias", prefix, name);
  gint64 weight_shape[2] = { out_features, in_features };
  gint64 bias_shape[1] = { out_features };
  AclipInit weight_init = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 0, 0 };
  AclipInit bias_init = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, in_features, 0 };
  return aclip_params_add (params, weight, 2, weight_shape, weight_init, ACLIP_PARAM_DECAY,
                           error) >= 0 &&
         aclip_params_add (params, bias, 1, bias_shape, bias_init, ACLIP_PARAM_NONE, error) >= 0;
}

/* The head both objectives share (below): Linear (C → M) "head.0", then Linear (M → D)
 * "head.2". */
static gboolean
mlp_register (AclipParams *params, const char *prefix, int c, int m, int d, GError **error)
{
  return add_linear (params, prefix, "head.0", m, c, error) &&
         add_linear (params, prefix, "head.2", d, m, error);
}

gboolean
aclip_simclr_register (const AclipSimclrConfig *config, int channels, AclipParams *params,
                       const char *prefix, GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL && channels > 0, FALSE);
  if (!aclip_simclr_config_validate (config, error))
    return FALSE;
  if (prefix == NULL)
    prefix = "";
  return mlp_register (params, prefix, channels, config->hidden, config->dim, error);
}

/* ---- The head both objectives share --------------------------------------------------------- */

/* pooled = mean of the encoder's T tokens [rows, C] → Linear (C → M) → ReLU → Linear (M → D):
 * the two tensors' values and gradients (NULL for an inference table), and the offsets of
 * its activations and their gradients in the objective's arena. */
typedef struct
{
  int n_tokens, c, m, d;
  float *w1, *b1, *w2, *b2;     /* head.0 [M, C], [M]; head.2 [D, M], [D] */
  float *dw1, *db1, *dw2, *db2; /* their gradients */
  gsize pooled, hidden_pre, hidden, out;         /* [rows, C], [rows, M], [rows, M], [rows, D] */
  gsize d_out, d_hidden, d_hidden_pre, d_pooled; /* as their forward arrays */
  gsize d_tokens;                                /* [rows, T, C] */
} Mlp;

/* Finds the head's tensors in a sealed table and reserves its arrays for `rows` images. */
static gboolean
mlp_bind (Mlp *mlp, AclipImageEncoder *encoder, AclipParams *params, const char *prefix, int m,
          int d, AclipArena *arena, gsize rows, GError **error)
{
  const AclipImageEncoderConfig *encoder_config = aclip_image_encoder_get_config (encoder);
  mlp->n_tokens = aclip_image_encoder_config_n_tokens (encoder_config);
  mlp->c = aclip_image_encoder_config_channels (encoder_config);
  mlp->m = m;
  mlp->d = d;
  float **values[4] = { &mlp->w1, &mlp->b1, &mlp->w2, &mlp->b2 };
  float **grads[4] = { &mlp->dw1, &mlp->db1, &mlp->dw2, &mlp->db2 };
  static const char *const names[4] = { "head.0.weight", "head.0.bias", "head.2.weight",
                                        "head.2.bias" };
  gint64 expected[4][2] = { { m, mlp->c }, { m, 0 }, { d, m }, { d, 0 } };
  for (int t = 0; t < 4; t++) {
    g_autofree char *name = g_strdup_printf ("%s%s", prefix, names[t]);
    int index = aclip_params_lookup (params, name);
    const AclipParamInfo *info = index >= 0 ? aclip_params_info (params, index) : NULL;
    gboolean matches = info != NULL && info->n_dims == (expected[t][1] ? 2 : 1) &&
                       info->shape[0] == expected[t][0] &&
                       (info->n_dims == 1 || info->shape[1] == expected[t][1]);
    if (!matches) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   _("The parameter table has no head tensor “%s” of the expected shape"), name);
      return FALSE;
    }
    *values[t] = aclip_params_value (params, index);
    *grads[t] = aclip_params_is_training (params) ? aclip_params_grad (params, index) : NULL;
  }
  gsize c = (gsize) mlp->c;
  mlp->pooled = aclip_arena_reserve (arena, rows * c);
  mlp->hidden_pre = aclip_arena_reserve (arena, rows * m);
  mlp->hidden = aclip_arena_reserve (arena, rows * m);
  mlp->out = aclip_arena_reserve (arena, rows * d);
  mlp->d_out = aclip_arena_reserve (arena, rows * d);
  mlp->d_hidden = aclip_arena_reserve (arena, rows * m);
  mlp->d_hidden_pre = aclip_arena_reserve (arena, rows * m);
  mlp->d_pooled = aclip_arena_reserve (arena, rows * c);
  mlp->d_tokens = aclip_arena_reserve (arena, rows * (gsize) mlp->n_tokens * c);
  return TRUE;
}

/* tokens [rows, T, C] → the head's output [rows, D] (at mlp->out, returned). */
static float *
mlp_forward (const Mlp *mlp, AclipArena *arena, AclipThreadPool *pool, const float *tokens,
             int rows)
{
  int t_count = mlp->n_tokens, c = mlp->c, m = mlp->m, d = mlp->d;
  /* Global average pooling: pooled[r, c] = mean over t of tokens[r, t, c]. */
  float *pooled = aclip_arena_at (arena, mlp->pooled);
  for (int r = 0; r < rows; r++) {
    float *out = pooled + (gsize) r * c;
    const float *in = tokens + (gsize) r * t_count * c;
    for (int k = 0; k < c; k++) {
      double sum = 0.0;
      for (int t = 0; t < t_count; t++)
        sum += in[(gsize) t * c + k];
      out[k] = (float) (sum / t_count);
    }
  }
  float *hidden_pre = aclip_arena_at (arena, mlp->hidden_pre);
  float *hidden = aclip_arena_at (arena, mlp->hidden);
  float *out = aclip_arena_at (arena, mlp->out);
  aclip_linear_forward (pool, hidden_pre, pooled, mlp->w1, mlp->b1, rows, c, m);
  aclip_relu_forward (pool, hidden, hidden_pre, (gsize) rows * m);
  aclip_linear_forward (pool, out, hidden, mlp->w2, mlp->b2, rows, m, d);
  return out;
}

/* From the gradient of the output (at mlp->d_out, [rows, D]) to the head's weights (+=) and
 * the gradient of the tokens, d_tokens [rows, T, C] (returned). */
static float *
mlp_backward (const Mlp *mlp, AclipArena *arena, AclipThreadPool *pool, int rows)
{
  int t_count = mlp->n_tokens, c = mlp->c, m = mlp->m, d = mlp->d;
  gsize nm = (gsize) rows * m, nc = (gsize) rows * c;
  float *d_hidden = aclip_arena_at (arena, mlp->d_hidden);
  float *d_hidden_pre = aclip_arena_at (arena, mlp->d_hidden_pre);
  float *d_pooled = aclip_arena_at (arena, mlp->d_pooled);
  float *d_tokens = aclip_arena_at (arena, mlp->d_tokens);
  memset (d_hidden, 0, sizeof (float) * nm);
  aclip_linear_backward (pool, d_hidden, mlp->dw2, mlp->db2, aclip_arena_at (arena, mlp->d_out),
                         aclip_arena_at (arena, mlp->hidden), mlp->w2, rows, m, d);
  memset (d_hidden_pre, 0, sizeof (float) * nm);
  aclip_relu_backward (pool, d_hidden_pre, d_hidden, aclip_arena_at (arena, mlp->hidden_pre), nm);
  memset (d_pooled, 0, sizeof (float) * nc);
  aclip_linear_backward (pool, d_pooled, mlp->dw1, mlp->db1, d_hidden_pre,
                         aclip_arena_at (arena, mlp->pooled), mlp->w1, rows, c, m);

  /* Pooling's backward: every token gets its image's d_pooled / T. */
  float inverse = 1.0f / (float) t_count;
  for (int r = 0; r < rows; r++)
    for (int t = 0; t < t_count; t++) {
      float *out = d_tokens + ((gsize) r * t_count + t) * c;
      const float *in = d_pooled + (gsize) r * c;
      for (int k = 0; k < c; k++)
        out[k] = in[k] * inverse;
    }
  return d_tokens;
}

/* ---- SimCLR ------------------------------------------------------------------------------- */

struct _AclipSimclr
{
  AclipSimclrConfig config;
  AclipImageEncoder *encoder;
  AclipParams *params;
  int max_pairs;

  AclipArena *arena;
  Mlp mlp;      /* its output is z [2P, D] */
  gsize zn;     /* [2P, D] */
  gsize norm;   /* [2P] */
  gsize infonce; /* aclip_infonce_workspace_size (P) */
  gsize d_zn;   /* [2P, D] */

  int n_pairs; /* of the last forward, 0 before any */
};

static float *
simclr_at (const AclipSimclr *s, gsize offset)
{
  return aclip_arena_at (s->arena, offset);
}

AclipSimclr *
aclip_simclr_new (const AclipSimclrConfig *config, AclipImageEncoder *encoder, AclipParams *params,
                  const char *prefix, int max_pairs, GError **error)
{
  g_return_val_if_fail (config != NULL && encoder != NULL && params != NULL, NULL);
  g_return_val_if_fail (aclip_params_is_sealed (params), NULL);
  if (!aclip_simclr_config_validate (config, error))
    return NULL;
  if (max_pairs < 2 || 2 * max_pairs > aclip_image_encoder_max_batch (encoder)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("A contrastive batch needs at least 2 galaxies, and the encoder room for "
                    "two views of each"));
    return NULL;
  }
  if (prefix == NULL)
    prefix = "";

  g_autoptr (AclipSimclr) s = g_new0 (AclipSimclr, 1);
  s->config = *config;
  s->encoder = encoder;
  s->params = params;
  s->max_pairs = max_pairs;
  gsize rows = 2 * (gsize) max_pairs, d = (gsize) config->dim;
  s->arena = aclip_arena_new ();
  if (!mlp_bind (&s->mlp, encoder, params, prefix, config->hidden, config->dim, s->arena, rows,
                 error))
    return NULL;
  s->zn = aclip_arena_reserve (s->arena, rows * d);
  s->norm = aclip_arena_reserve (s->arena, rows);
  s->infonce = aclip_arena_reserve (s->arena, aclip_infonce_workspace_size (max_pairs));
  s->d_zn = aclip_arena_reserve (s->arena, rows * d);
  if (!aclip_arena_seal (s->arena, error))
    return NULL;
  return g_steal_pointer (&s);
}

void
aclip_simclr_free (AclipSimclr *simclr)
{
  if (simclr == NULL)
    return;
  aclip_arena_free (simclr->arena);
  g_free (simclr);
}

const float *
aclip_simclr_embed (AclipSimclr *s, AclipThreadPool *pool, const float *input, int n_images,
                    gboolean training)
{
  g_return_val_if_fail (s != NULL && input != NULL, NULL);
  g_return_val_if_fail (n_images >= 1 && n_images <= 2 * s->max_pairs, NULL);

  int rows = n_images;
  const float *tokens = aclip_image_encoder_forward (s->encoder, pool, input, rows, training);
  float *z = mlp_forward (&s->mlp, s->arena, pool, tokens, rows);
  float *zn = simclr_at (s, s->zn);
  aclip_l2_normalize_forward (pool, zn, simclr_at (s, s->norm), z, rows, s->config.dim,
                              NORMALIZE_EPS);
  s->n_pairs = 0; /* no loss to differentiate */
  return zn;
}

float
aclip_simclr_forward (AclipSimclr *s, AclipThreadPool *pool, const float *input, int n_pairs,
                      gboolean training, float *accuracy)
{
  g_return_val_if_fail (s != NULL && input != NULL, NAN);
  g_return_val_if_fail (n_pairs >= 2 && n_pairs <= s->max_pairs, NAN);

  int d = s->config.dim;
  const float *zn = aclip_simclr_embed (s, pool, input, 2 * n_pairs, training);
  s->n_pairs = n_pairs;
  return aclip_infonce_forward (zn, zn + (gsize) n_pairs * d, n_pairs, d,
                                1.0f / s->config.temperature, simclr_at (s, s->infonce), accuracy);
}

const float *
aclip_simclr_projections (AclipSimclr *s)
{
  g_return_val_if_fail (s != NULL, NULL);
  return simclr_at (s, s->zn);
}

void
aclip_simclr_backward (AclipSimclr *s, AclipThreadPool *pool, float dloss)
{
  g_return_if_fail (s != NULL && s->n_pairs >= 2);
  g_return_if_fail (aclip_params_is_training (s->params));

  int n_pairs = s->n_pairs, rows = 2 * n_pairs, d = s->config.dim;
  gsize nd = (gsize) rows * d;
  float *zn = simclr_at (s, s->zn);
  float *d_zn = simclr_at (s, s->d_zn), *d_z = simclr_at (s, s->mlp.d_out);

  memset (d_zn, 0, sizeof (float) * nd);
  aclip_infonce_backward (d_zn, d_zn + (gsize) n_pairs * d, NULL, zn, zn + (gsize) n_pairs * d,
                          n_pairs, d, 1.0f / s->config.temperature, simclr_at (s, s->infonce),
                          dloss);
  memset (d_z, 0, sizeof (float) * nd);
  aclip_l2_normalize_backward (pool, d_z, d_zn, zn, simclr_at (s, s->norm), rows, d, NORMALIZE_EPS);
  const float *d_tokens = mlp_backward (&s->mlp, s->arena, pool, rows);
  aclip_image_encoder_backward (s->encoder, pool, d_tokens, NULL);
}

/* ---- The supervised regressor ----------------------------------------------------------------- */

void
aclip_regressor_config_init_default (AclipRegressorConfig *config)
{
  g_return_if_fail (config != NULL);
  config->hidden = 256;
  config->n_outputs = 2;
}

gboolean
aclip_regressor_config_validate (const AclipRegressorConfig *config, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  if (config->hidden < 1 || config->hidden > 65536 || config->n_outputs < 1 ||
      config->n_outputs > 256) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("Invalid regression head: its hidden width must be 1–65536 and its outputs "
                   "1–256"));
    return FALSE;
  }
  return TRUE;
}

void
aclip_regressor_config_save (const AclipRegressorConfig *config, GKeyFile *key_file)
{
  g_return_if_fail (config != NULL && key_file != NULL);
  g_key_file_set_integer (key_file, REGRESSOR_GROUP, "hidden", config->hidden);
  g_key_file_set_integer (key_file, REGRESSOR_GROUP, "outputs", config->n_outputs);
}

gboolean
aclip_regressor_config_load (AclipRegressorConfig *config, GKeyFile *key_file, GError **error)
{
  g_return_val_if_fail (config != NULL && key_file != NULL, FALSE);
  if (!g_key_file_has_group (key_file, REGRESSOR_GROUP)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("The model has no [%s] section"),
                 REGRESSOR_GROUP);
    return FALSE;
  }
  AclipRegressorConfig c = *config;
  static const char *const keys[] = { "hidden", "outputs" };
  int *fields[] = { &c.hidden, &c.n_outputs };
  for (gsize k = 0; k < G_N_ELEMENTS (keys); k++) {
    if (!g_key_file_has_key (key_file, REGRESSOR_GROUP, keys[k], NULL))
      continue;
    g_autoptr (GError) local = NULL;
    *fields[k] = g_key_file_get_integer (key_file, REGRESSOR_GROUP, keys[k], &local);
    if (local != NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", REGRESSOR_GROUP,
                   keys[k], local->message);
      return FALSE;
    }
  }
  if (!aclip_regressor_config_validate (&c, error))
    return FALSE;
  *config = c;
  return TRUE;
}

gboolean
aclip_regressor_register (const AclipRegressorConfig *config, int channels, AclipParams *params,
                          const char *prefix, GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL && channels > 0, FALSE);
  if (!aclip_regressor_config_validate (config, error))
    return FALSE;
  return mlp_register (params, prefix ? prefix : "", channels, config->hidden, config->n_outputs,
                       error);
}

struct _AclipRegressor
{
  AclipRegressorConfig config;
  AclipImageEncoder *encoder;
  AclipParams *params;
  int max_batch;
  AclipArena *arena;
  Mlp mlp;        /* its output is the predictions [B, K] */
  gsize residual; /* [B, K]: 2 (prediction − target) of the last loss, 0 where none */
  int n;          /* images of the last forward with a loss, 0 before any */
  gsize n_targets; /* the targets it counted */
};

AclipRegressor *
aclip_regressor_new (const AclipRegressorConfig *config, AclipImageEncoder *encoder,
                     AclipParams *params, const char *prefix, int max_batch, GError **error)
{
  g_return_val_if_fail (config != NULL && encoder != NULL && params != NULL, NULL);
  g_return_val_if_fail (aclip_params_is_sealed (params), NULL);
  if (!aclip_regressor_config_validate (config, error))
    return NULL;
  if (max_batch < 1 || max_batch > aclip_image_encoder_max_batch (encoder)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("A regression batch of %d images does not fit the encoder’s batches of %d"),
                 max_batch, aclip_image_encoder_max_batch (encoder));
    return NULL;
  }
  g_autoptr (AclipRegressor) r = g_new0 (AclipRegressor, 1);
  r->config = *config;
  r->encoder = encoder;
  r->params = params;
  r->max_batch = max_batch;
  r->arena = aclip_arena_new ();
  if (!mlp_bind (&r->mlp, encoder, params, prefix ? prefix : "", config->hidden,
                 config->n_outputs, r->arena, (gsize) max_batch, error))
    return NULL;
  r->residual = aclip_arena_reserve (r->arena, (gsize) max_batch * config->n_outputs);
  if (!aclip_arena_seal (r->arena, error))
    return NULL;
  return g_steal_pointer (&r);
}

void
aclip_regressor_free (AclipRegressor *regressor)
{
  if (regressor == NULL)
    return;
  aclip_arena_free (regressor->arena);
  g_free (regressor);
}

const float *
aclip_regressor_predict (AclipRegressor *r, AclipThreadPool *pool, const float *input, int n,
                         gboolean training)
{
  g_return_val_if_fail (r != NULL && input != NULL, NULL);
  g_return_val_if_fail (n >= 1 && n <= r->max_batch, NULL);
  const float *tokens = aclip_image_encoder_forward (r->encoder, pool, input, n, training);
  r->n = 0; /* no loss to differentiate */
  return mlp_forward (&r->mlp, r->arena, pool, tokens, n);
}

float
aclip_regressor_forward (AclipRegressor *r, AclipThreadPool *pool, const float *input,
                         const float *targets, int n, gboolean training)
{
  g_return_val_if_fail (r != NULL && input != NULL && targets != NULL, NAN);
  g_return_val_if_fail (n >= 1 && n <= r->max_batch, NAN);
  const float *pred = aclip_regressor_predict (r, pool, input, n, training);
  gsize count = (gsize) n * r->config.n_outputs;
  float *residual = aclip_arena_at (r->arena, r->residual);
  double sum = 0.0;
  gsize n_targets = 0;
  for (gsize i = 0; i < count; i++) {
    if (!isfinite (targets[i])) {
      residual[i] = 0.0f;
      continue;
    }
    float error = pred[i] - targets[i];
    residual[i] = 2.0f * error;
    sum += (double) error * error;
    n_targets++;
  }
  r->n = n;
  r->n_targets = n_targets;
  return n_targets > 0 ? (float) (sum / (double) n_targets) : 0.0f;
}

void
aclip_regressor_backward (AclipRegressor *r, AclipThreadPool *pool, float dloss)
{
  g_return_if_fail (r != NULL && r->n > 0);
  g_return_if_fail (aclip_params_is_training (r->params));
  if (r->n_targets == 0)
    return; /* no target in the batch: nothing to learn */
  gsize count = (gsize) r->n * r->config.n_outputs;
  const float *residual = aclip_arena_at (r->arena, r->residual);
  float *d_out = aclip_arena_at (r->arena, r->mlp.d_out);
  float scale = dloss / (float) r->n_targets;
  for (gsize i = 0; i < count; i++)
    d_out[i] = residual[i] * scale;
  const float *d_tokens = mlp_backward (&r->mlp, r->arena, pool, r->n);
  aclip_image_encoder_backward (r->encoder, pool, d_tokens, NULL);
}
