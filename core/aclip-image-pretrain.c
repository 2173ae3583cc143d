/* aclip-image-pretrain.c — SimCLR pretraining of the image encoder (aclip-image-pretrain.h). */
#include "aclip-image-pretrain.h"

#include "aclip-error.h"
#include "aclip-loss.h"
#include "aclip-nn.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#define GROUP         "simclr"
#define NORMALIZE_EPS 1e-12f

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

gboolean
aclip_simclr_register (const AclipSimclrConfig *config, int channels, AclipParams *params,
                       const char *prefix, GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL && channels > 0, FALSE);
  if (!aclip_simclr_config_validate (config, error))
    return FALSE;
  if (prefix == NULL)
    prefix = "";
  return add_linear (params, prefix, "head.0", config->hidden, channels, error) &&
         add_linear (params, prefix, "head.2", config->dim, config->hidden, error);
}

/* ---- The objective ---------------------------------------------------------------------- */

struct _AclipSimclr
{
  AclipSimclrConfig config;
  AclipImageEncoder *encoder;
  AclipParams *params;
  int max_pairs;
  int n_tokens, channels;

  float *w1, *b1, *w2, *b2;     /* head.0 [M, C], [M]; head.2 [D, M], [D] */
  float *dw1, *db1, *dw2, *db2; /* their gradients, NULL for an inference table */

  AclipArena *arena;
  gsize pooled;                                      /* [2P, C] */
  gsize hidden_pre;                                  /* [2P, M] */
  gsize hidden;                                      /* [2P, M] */
  gsize z;                                           /* [2P, D] */
  gsize zn;                                          /* [2P, D] */
  gsize norm;                                        /* [2P] */
  gsize infonce;                                     /* aclip_infonce_workspace_size (P) */
  gsize d_zn, d_z, d_hidden, d_hidden_pre, d_pooled; /* as their forward arrays */
  gsize d_tokens;                                    /* [2P, T, C] */

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
  const AclipImageEncoderConfig *encoder_config = aclip_image_encoder_get_config (encoder);
  s->n_tokens = aclip_image_encoder_config_n_tokens (encoder_config);
  s->channels = aclip_image_encoder_config_channels (encoder_config);

  float **values[4] = { &s->w1, &s->b1, &s->w2, &s->b2 };
  float **grads[4] = { &s->dw1, &s->db1, &s->dw2, &s->db2 };
  static const char *const names[4] = { "head.0.weight", "head.0.bias", "head.2.weight",
                                        "head.2.bias" };
  gint64 expected[4][2] = { { config->hidden, s->channels },
                            { config->hidden, 0 },
                            { config->dim, config->hidden },
                            { config->dim, 0 } };
  for (int t = 0; t < 4; t++) {
    g_autofree char *name = g_strdup_printf ("%s%s", prefix, names[t]);
    int index = aclip_params_lookup (params, name);
    const AclipParamInfo *info = index >= 0 ? aclip_params_info (params, index) : NULL;
    gboolean matches = info != NULL && info->n_dims == (expected[t][1] ? 2 : 1) &&
                       info->shape[0] == expected[t][0] &&
                       (info->n_dims == 1 || info->shape[1] == expected[t][1]);
    if (!matches) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   _("The parameter table has no projection-head tensor “%s” of the expected "
                      "shape"),
                   name);
      return NULL;
    }
    *values[t] = aclip_params_value (params, index);
    *grads[t] = aclip_params_is_training (params) ? aclip_params_grad (params, index) : NULL;
  }

  gsize rows = 2 * (gsize) max_pairs;
  gsize m = (gsize) config->hidden, d = (gsize) config->dim, c = (gsize) s->channels;
  s->arena = aclip_arena_new ();
  s->pooled = aclip_arena_reserve (s->arena, rows * c);
  s->hidden_pre = aclip_arena_reserve (s->arena, rows * m);
  s->hidden = aclip_arena_reserve (s->arena, rows * m);
  s->z = aclip_arena_reserve (s->arena, rows * d);
  s->zn = aclip_arena_reserve (s->arena, rows * d);
  s->norm = aclip_arena_reserve (s->arena, rows);
  s->infonce = aclip_arena_reserve (s->arena, aclip_infonce_workspace_size (max_pairs));
  s->d_zn = aclip_arena_reserve (s->arena, rows * d);
  s->d_z = aclip_arena_reserve (s->arena, rows * d);
  s->d_hidden = aclip_arena_reserve (s->arena, rows * m);
  s->d_hidden_pre = aclip_arena_reserve (s->arena, rows * m);
  s->d_pooled = aclip_arena_reserve (s->arena, rows * c);
  s->d_tokens = aclip_arena_reserve (s->arena, rows * (gsize) s->n_tokens * c);
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

  int rows = n_images, t_count = s->n_tokens, c = s->channels;
  int m = s->config.hidden, d = s->config.dim;
  const float *tokens = aclip_image_encoder_forward (s->encoder, pool, input, rows, training);

  /* Global average pooling: pooled[r, c] = mean over t of tokens[r, t, c]. */
  float *pooled = simclr_at (s, s->pooled);
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

  float *hidden_pre = simclr_at (s, s->hidden_pre), *hidden = simclr_at (s, s->hidden);
  float *z = simclr_at (s, s->z), *zn = simclr_at (s, s->zn);
  aclip_linear_forward (pool, hidden_pre, pooled, s->w1, s->b1, rows, c, m);
  aclip_relu_forward (pool, hidden, hidden_pre, (gsize) rows * m);
  aclip_linear_forward (pool, z, hidden, s->w2, s->b2, rows, m, d);
  aclip_l2_normalize_forward (pool, zn, simclr_at (s, s->norm), z, rows, d, NORMALIZE_EPS);
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

  int n_pairs = s->n_pairs, rows = 2 * n_pairs, t_count = s->n_tokens, c = s->channels;
  int m = s->config.hidden, d = s->config.dim;
  gsize nd = (gsize) rows * d, nm = (gsize) rows * m, nc = (gsize) rows * c;
  float *zn = simclr_at (s, s->zn);
  float *d_zn = simclr_at (s, s->d_zn), *d_z = simclr_at (s, s->d_z);
  float *d_hidden = simclr_at (s, s->d_hidden), *d_hidden_pre = simclr_at (s, s->d_hidden_pre);
  float *d_pooled = simclr_at (s, s->d_pooled), *d_tokens = simclr_at (s, s->d_tokens);

  memset (d_zn, 0, sizeof (float) * nd);
  aclip_infonce_backward (d_zn, d_zn + (gsize) n_pairs * d, NULL, zn, zn + (gsize) n_pairs * d,
                          n_pairs, d, 1.0f / s->config.temperature, simclr_at (s, s->infonce),
                          dloss);
  memset (d_z, 0, sizeof (float) * nd);
  aclip_l2_normalize_backward (pool, d_z, d_zn, zn, simclr_at (s, s->norm), rows, d, NORMALIZE_EPS);
  memset (d_hidden, 0, sizeof (float) * nm);
  aclip_linear_backward (pool, d_hidden, s->dw2, s->db2, d_z, simclr_at (s, s->hidden), s->w2, rows,
                         m, d);
  memset (d_hidden_pre, 0, sizeof (float) * nm);
  aclip_relu_backward (pool, d_hidden_pre, d_hidden, simclr_at (s, s->hidden_pre), nm);
  memset (d_pooled, 0, sizeof (float) * nc);
  aclip_linear_backward (pool, d_pooled, s->dw1, s->db1, d_hidden_pre, simclr_at (s, s->pooled),
                         s->w1, rows, c, m);

  /* Pooling's backward: every token gets its image's d_pooled / T. */
  float inverse = 1.0f / (float) t_count;
  for (int r = 0; r < rows; r++)
    for (int t = 0; t < t_count; t++) {
      float *out = d_tokens + ((gsize) r * t_count + t) * c;
      const float *in = d_pooled + (gsize) r * c;
      for (int k = 0; k < c; k++)
        out[k] = in[k] * inverse;
    }
  aclip_image_encoder_backward (s->encoder, pool, d_tokens, NULL);
}
