/* aclip-spectrum-encoder.c — the spectrum encoder (aclip-spectrum-encoder.h). */
#include "aclip-spectrum-encoder.h"

#include "aclip-catalogue.h"
#include "aclip-error.h"
#include "aclip-nn.h"
#include "aclip-transformer.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define INIT_STD          0.02f
#define PROBS_LIMIT_BYTES ((gsize) 1 << 30)
#define MAX_TOKENS        (1 << 20)

/* ---- Configuration ------------------------------------------------------------------------ */

void
aclip_spectrum_encoder_config_init_default (AclipSpectrumEncoderConfig *config)
{
  g_return_if_fail (config != NULL);
  config->n_wave = ACLIP_DESI_N_WAVE;
  config->window = 40;
  config->stride = 20;
  config->width = 128;
  config->n_layers = 4;
  config->n_heads = 4;
  config->mlp_hidden = 512;
  config->std_min = 0.2f;
  config->layernorm_eps = 1e-5f;
}

void
aclip_spectrum_encoder_config_init_paper (AclipSpectrumEncoderConfig *config)
{
  g_return_if_fail (config != NULL);
  aclip_spectrum_encoder_config_init_default (config);
  config->window = 20;
  config->stride = 10;
  config->width = 768;
  config->n_layers = 6;
  config->n_heads = 6;
  config->mlp_hidden = 4 * 768;
}

int
aclip_spectrum_encoder_config_n_windows (const AclipSpectrumEncoderConfig *config)
{
  g_return_val_if_fail (config != NULL, 0);
  if (config->window < 1 || config->stride < 1 || config->n_wave < config->window)
    return 0;
  return (config->n_wave - config->window) / config->stride + 1;
}

int
aclip_spectrum_encoder_config_n_tokens (const AclipSpectrumEncoderConfig *config)
{
  return aclip_spectrum_encoder_config_n_windows (config) + 1;
}

static gboolean invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError **error, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, _("Spectrum encoder: %s"), message);
  return FALSE;
}

gboolean
aclip_spectrum_encoder_config_validate (const AclipSpectrumEncoderConfig *config, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  const AclipSpectrumEncoderConfig *c = config;
  if (c->n_wave < 1)
    return invalid (error, _("the number of pixels must be positive, not %d"), c->n_wave);
  if (c->window < 1 || c->window > c->n_wave)
    return invalid (error, _("the window must be 1 to %d pixels, not %d"), c->n_wave, c->window);
  if (c->stride < 1)
    return invalid (error, _("the stride must be positive, not %d"), c->stride);
  if (aclip_spectrum_encoder_config_n_tokens (c) > MAX_TOKENS)
    return invalid (error, _("%d tokens are too many"),
                    aclip_spectrum_encoder_config_n_tokens (c));
  if (c->width < 1 || c->n_layers < 1 || c->n_heads < 1 || c->mlp_hidden < 1)
    return invalid (error,
                    _("the width (%d), layers (%d), heads (%d) and MLP width (%d) must be "
                       "positive"),
                    c->width, c->n_layers, c->n_heads, c->mlp_hidden);
  if (c->width % c->n_heads != 0)
    return invalid (error, _("the width %d is not a multiple of the %d heads"), c->width,
                    c->n_heads);
  if (c->width > 65536 || c->mlp_hidden > 1 << 20 || c->n_layers > 1024)
    return invalid (error, _("the width (%d), layers (%d) or MLP width (%d) is too large"),
                    c->width, c->n_layers, c->mlp_hidden);
  if (!(c->std_min > 0.0f) || !isfinite (c->std_min))
    return invalid (error, _("the lower clip of the std must be positive, not %g"),
                    (double) c->std_min);
  if (!(c->layernorm_eps > 0.0f) || !isfinite (c->layernorm_eps))
    return invalid (error, _("the LayerNorm epsilon must be positive, not %g"),
                    (double) c->layernorm_eps);
  return TRUE;
}

gboolean
aclip_spectrum_encoder_config_equal (const AclipSpectrumEncoderConfig *a,
                                     const AclipSpectrumEncoderConfig *b)
{
  return a->n_wave == b->n_wave && a->window == b->window && a->stride == b->stride &&
         a->width == b->width && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
         a->mlp_hidden == b->mlp_hidden && a->std_min == b->std_min &&
         a->layernorm_eps == b->layernorm_eps;
}

void
aclip_spectrum_encoder_config_save (const AclipSpectrumEncoderConfig *config, GKeyFile *key_file)
{
  g_return_if_fail (config != NULL && key_file != NULL);
  const char *group = ACLIP_SPECTRUM_ENCODER_GROUP;
  g_key_file_set_integer (key_file, group, "n_wave", config->n_wave);
  g_key_file_set_integer (key_file, group, "window", config->window);
  g_key_file_set_integer (key_file, group, "stride", config->stride);
  g_key_file_set_integer (key_file, group, "width", config->width);
  g_key_file_set_integer (key_file, group, "layers", config->n_layers);
  g_key_file_set_integer (key_file, group, "heads", config->n_heads);
  g_key_file_set_integer (key_file, group, "mlp_hidden", config->mlp_hidden);
  /* %.9g keeps every bit of a float. */
  char number[G_ASCII_DTOSTR_BUF_SIZE];
  g_key_file_set_value (key_file, group, "std_min",
                        g_ascii_formatd (number, sizeof number, "%.9g", config->std_min));
  g_key_file_set_value (key_file, group, "layernorm_eps",
                        g_ascii_formatd (number, sizeof number, "%.9g", config->layernorm_eps));
}

static gboolean
get_int (GKeyFile *key_file, const char *key, int *value, GError **error)
{
  g_autoptr (GError) local = NULL;
  int v = g_key_file_get_integer (key_file, ACLIP_SPECTRUM_ENCODER_GROUP, key, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("[%s] %s: %s"),
                 ACLIP_SPECTRUM_ENCODER_GROUP, key, local->message);
    return FALSE;
  }
  *value = v;
  return TRUE;
}

static gboolean
get_float (GKeyFile *key_file, const char *key, float *value, GError **error)
{
  g_autoptr (GError) local = NULL;
  double v = g_key_file_get_double (key_file, ACLIP_SPECTRUM_ENCODER_GROUP, key, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("[%s] %s: %s"),
                 ACLIP_SPECTRUM_ENCODER_GROUP, key, local->message);
    return FALSE;
  }
  *value = (float) v;
  return TRUE;
}

gboolean
aclip_spectrum_encoder_config_load (AclipSpectrumEncoderConfig *config, GKeyFile *key_file,
                                    GError **error)
{
  g_return_val_if_fail (config != NULL && key_file != NULL, FALSE);
  AclipSpectrumEncoderConfig c;
  if (!get_int (key_file, "n_wave", &c.n_wave, error) ||
      !get_int (key_file, "window", &c.window, error) ||
      !get_int (key_file, "stride", &c.stride, error) ||
      !get_int (key_file, "width", &c.width, error) ||
      !get_int (key_file, "layers", &c.n_layers, error) ||
      !get_int (key_file, "heads", &c.n_heads, error) ||
      !get_int (key_file, "mlp_hidden", &c.mlp_hidden, error) ||
      !get_float (key_file, "std_min", &c.std_min, error) ||
      !get_float (key_file, "layernorm_eps", &c.layernorm_eps, error) ||
      !aclip_spectrum_encoder_config_validate (&c, error))
    return FALSE;
  *config = c;
  return TRUE;
}

/* ---- Parameters --------------------------------------------------------------------------- */

/* Suffixes of one block's tensors, in nn.TransformerEncoderLayer's state_dict order (that of
 * AclipTransformerParams). */
enum
{
  B_IN_W,
  B_IN_B,
  B_OUT_W,
  B_OUT_B,
  B_L1_W,
  B_L1_B,
  B_L2_W,
  B_L2_B,
  B_N1_W,
  B_N1_B,
  B_N2_W,
  B_N2_B,
  N_BLOCK_TENSORS
};

static const char *const block_suffix[N_BLOCK_TENSORS] = {
  "self_attn.in_proj_weight",
  "self_attn.in_proj_bias",
  "self_attn.out_proj.weight",
  "self_attn.out_proj.bias",
  "linear1.weight",
  "linear1.bias",
  "linear2.weight",
  "linear2.bias",
  "norm1.weight",
  "norm1.bias",
  "norm2.weight",
  "norm2.bias",
};

/* Shape [2] of block tensor `which` (second dimension 0 for a vector). */
static void
block_shape (const AclipSpectrumEncoderConfig *config, int which, gint64 shape[2])
{
  const gint64 c = config->width, m = config->mlp_hidden;
  shape[1] = 0;
  switch (which) {
    case B_IN_W:
      shape[0] = 3 * c, shape[1] = c;
      break;
    case B_IN_B:
      shape[0] = 3 * c;
      break;
    case B_OUT_W:
      shape[0] = c, shape[1] = c;
      break;
    case B_L1_W:
      shape[0] = m, shape[1] = c;
      break;
    case B_L1_B:
      shape[0] = m;
      break;
    case B_L2_W:
      shape[0] = c, shape[1] = m;
      break;
    default: /* the output biases and the LayerNorms */
      shape[0] = c;
  }
}

/* The encoder's tensors other than the blocks. */
enum
{
  S_EMBED_W,
  S_EMBED_B,
  S_STATS_W,
  S_STATS_B,
  S_POS,
  S_MASK,
  S_FINAL_W,
  S_FINAL_B,
  N_STEM_TENSORS
};

static const char *const stem_name[N_STEM_TENSORS] = {
  "embed.weight", "embed.bias", "stats_embed.weight", "stats_embed.bias",
  "pos_embed",    "mask_embed", "final_norm.weight",  "final_norm.bias",
};

static void
stem_shape (const AclipSpectrumEncoderConfig *config, int which, gint64 shape[2])
{
  const gint64 c = config->width;
  shape[0] = c;
  shape[1] = 0;
  if (which == S_EMBED_W)
    shape[1] = 2 * (gint64) config->window;
  else if (which == S_STATS_W)
    shape[1] = 2;
  else if (which == S_POS)
    shape[0] = aclip_spectrum_encoder_config_n_tokens (config), shape[1] = c;
}

static gboolean
add_tensor (AclipParams *params, const char *name, const gint64 shape[2], AclipInit init,
            AclipParamFlags flags, GError **error)
{
  return aclip_params_add (params, name, shape[1] > 0 ? 2 : 1, shape, init, flags, error) >= 0;
}

gboolean
aclip_spectrum_encoder_register (const AclipSpectrumEncoderConfig *config, AclipParams *params,
                                 const char *prefix, GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL, FALSE);
  if (!aclip_spectrum_encoder_config_validate (config, error))
    return FALSE;
  if (prefix == NULL)
    prefix = "";
  const AclipInit zeros = { ACLIP_INIT_ZEROS, 0.0f, 0, 0 };
  const AclipInit ones = { ACLIP_INIT_ONES, 0.0f, 0, 0 };
  const AclipInit normal = { ACLIP_INIT_NORMAL, INIT_STD, 0, 0 };
  const AclipInit residual = { ACLIP_INIT_NORMAL,
                               INIT_STD / sqrtf (2.0f * (float) config->n_layers), 0, 0 };
  gint64 shape[2];

  /* The input side: embeddings. */
  for (int s = S_EMBED_W; s <= S_MASK; s++) {
    g_autofree char *name = g_strconcat (prefix, stem_name[s], NULL);
    gboolean is_bias = s == S_EMBED_B || s == S_STATS_B;
    gboolean is_matrix = s == S_EMBED_W || s == S_STATS_W;
    stem_shape (config, s, shape);
    if (!add_tensor (params, name, shape, is_bias ? zeros : normal,
                     is_matrix ? ACLIP_PARAM_DECAY : ACLIP_PARAM_NONE, error))
      return FALSE;
  }
  for (int l = 0; l < config->n_layers; l++)
    for (int t = 0; t < N_BLOCK_TENSORS; t++) {
      g_autofree char *name = g_strdup_printf ("%sblocks.%d.%s", prefix, l, block_suffix[t]);
      block_shape (config, t, shape);
      AclipInit init;
      AclipParamFlags flags = ACLIP_PARAM_NONE;
      if (t == B_N1_W || t == B_N2_W)
        init = ones;
      else if (shape[1] == 0)
        init = zeros;
      else {
        init = (t == B_OUT_W || t == B_L2_W) ? residual : normal;
        flags = ACLIP_PARAM_DECAY;
      }
      if (!add_tensor (params, name, shape, init, flags, error))
        return FALSE;
    }
  for (int s = S_FINAL_W; s <= S_FINAL_B; s++) {
    g_autofree char *name = g_strconcat (prefix, stem_name[s], NULL);
    stem_shape (config, s, shape);
    if (!add_tensor (params, name, shape, s == S_FINAL_W ? ones : zeros, ACLIP_PARAM_NONE, error))
      return FALSE;
  }
  return TRUE;
}

static char *
shape_string (int n_dims, const gint64 *shape)
{
  GString *text = g_string_new ("[");
  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (text, d ? ", %" PRId64 : "%" PRId64, shape[d]);
  g_string_append_c (text, ']');
  return g_string_free (text, FALSE);
}

gboolean
aclip_spectrum_encoder_restore (AclipParams *params, const char *prefix,
                                const AclipCheckpoint *checkpoint, GError **error)
{
  g_return_val_if_fail (params != NULL && checkpoint != NULL, FALSE);
  g_return_val_if_fail (aclip_params_is_sealed (params), FALSE);
  if (prefix == NULL)
    prefix = "";
  const char *path = aclip_checkpoint_get_path (checkpoint);
  const int n_tensors = aclip_params_n_tensors (params);
  int n_matching = 0;
  /* Check everything first, so a failure leaves the table as it was. */
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    if (!g_str_has_prefix (info->name, prefix))
      continue;
    n_matching++;
    int index = aclip_checkpoint_lookup (checkpoint, info->name);
    if (index < 0) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   _("%s: the checkpoint has no tensor “%s”, which the model needs"), path,
                   info->name);
      return FALSE;
    }
    int n_dims = 0;
    const gint64 *shape = aclip_checkpoint_tensor_shape (checkpoint, index, &n_dims);
    if (n_dims != info->n_dims || memcmp (shape, info->shape, (gsize) n_dims * sizeof (gint64))) {
      g_autofree char *saved = shape_string (n_dims, shape);
      g_autofree char *wanted = shape_string (info->n_dims, info->shape);
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("%s: the tensor “%s” has the shape %s in the checkpoint but %s in the model"),
                   path, info->name, saved, wanted);
      return FALSE;
    }
  }
  if (n_matching == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("%s: the model has no tensor “%s…”"),
                 path, prefix);
    return FALSE;
  }
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    if (!g_str_has_prefix (info->name, prefix))
      continue;
    int index = aclip_checkpoint_lookup (checkpoint, info->name);
    memcpy (aclip_params_value (params, t), aclip_checkpoint_tensor_values (checkpoint, index),
            (gsize) info->n_elements * sizeof (float));
  }
  return TRUE;
}

/* ---- Preprocessing ------------------------------------------------------------------------ */

static inline gboolean
good_pixel (float flux, float ivar)
{
  return ivar > 0.0f && isfinite (ivar) && isfinite (flux);
}

void
aclip_spectrum_preprocess (const AclipSpectrumEncoderConfig *config, float *features, float *stats,
                           guint8 *key_mask, const float *flux, const float *ivar)
{
  const int n_wave = config->n_wave, window = config->window;
  const int n_windows = aclip_spectrum_encoder_config_n_windows (config);

  /* Mean and population std of the good pixels, two passes in double. */
  double sum = 0.0;
  gint64 count = 0;
  for (int i = 0; i < n_wave; i++)
    if (good_pixel (flux[i], ivar[i])) {
      sum += flux[i];
      count++;
    }
  double mean = count > 0 ? sum / (double) count : 0.0;
  double squares = 0.0;
  for (int i = 0; i < n_wave; i++)
    if (good_pixel (flux[i], ivar[i])) {
      double d = flux[i] - mean;
      squares += d * d;
    }
  double std = count > 0 ? sqrt (squares / (double) count) : 0.0;
  if (!(std >= config->std_min))
    std = config->std_min;
  const double variance = std * std;
  stats[0] = (float) mean;
  stats[1] = (float) std;

  key_mask[0] = 0;
  for (int j = 0; j < n_windows; j++) {
    const int first = j * config->stride;
    float *x = features + (gsize) j * 2 * window; /* [window] standardised flux */
    float *w = x + window;                        /* [window] weights */
    gboolean any_good = FALSE;
    for (int k = 0; k < window; k++) {
      const int i = first + k;
      if (good_pixel (flux[i], ivar[i])) {
        double s = (double) ivar[i] * variance;
        x[k] = (float) ((flux[i] - mean) / std);
        w[k] = (float) (s / (1.0 + s));
        any_good = TRUE;
      } else {
        x[k] = 0.0f;
        w[k] = 0.0f;
      }
    }
    key_mask[1 + j] = !any_good;
  }
}

/* ---- The encoder -------------------------------------------------------------------------- */

struct _AclipSpectrumEncoder
{
  AclipSpectrumEncoderConfig config;
  AclipTransformerConfig block_config;
  int n_windows, n_tokens, max_batch;
  gboolean training, store_probs;
  int batch; /* of the last forward, 0 before the first */

  /* Parameters and (training) gradients: the stem's, then each block's. */
  float *stem[N_STEM_TENSORS];
  float *d_stem[N_STEM_TENSORS];
  AclipTransformerParams *blocks;   /* [n_layers] */
  AclipTransformerParams *d_blocks; /* [n_layers], training */

  AclipArena *arena;
  float *features;   /* [B, n_windows, 2·window] */
  float *stats;      /* [B, 2] mean, std */
  float *stats_in;   /* [B, 2] asinh (mean), ln std: the statistics token's input */
  guint8 *key_mask;  /* [B, T] */
  guint8 *replace;   /* [B, T] */
  float *embed;      /* [B, T, C] token embeddings before the positional embedding */
  float **x;         /* [n_x][B, T, C]: block inputs/outputs (n_layers + 1 training, else 2) */
  float **block_mem; /* [n_acts] memory of block activations (n_layers training, else 1) */
  AclipTransformerActivations *acts;
  float *tokens;    /* [B, T, C] */
  float *ln_mean;   /* [B·T] */
  float *ln_rstd;   /* [B·T] */
  float *d_tokens;  /* [B, T, C], training */
  float *d_a, *d_b; /* [B, T, C] each, training */
  float *workspace;
};

static gboolean
bind_tensor (AclipParams *params, const char *name, const gint64 shape[2], float **value,
             float **grad, GError **error)
{
  int index = aclip_params_lookup (params, name);
  int n_dims = shape[1] > 0 ? 2 : 1;
  if (index < 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("Spectrum encoder: the parameter table has no tensor “%s”"), name);
    return FALSE;
  }
  const AclipParamInfo *info = aclip_params_info (params, index);
  if (info->n_dims != n_dims || memcmp (info->shape, shape, (gsize) n_dims * sizeof (gint64))) {
    g_autofree char *have = shape_string (info->n_dims, info->shape);
    g_autofree char *want = shape_string (n_dims, shape);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("Spectrum encoder: the tensor “%s” has the shape %s, not %s"), name, have,
                 want);
    return FALSE;
  }
  *value = aclip_params_value (params, index);
  if (grad != NULL)
    *grad = aclip_params_grad (params, index);
  return TRUE;
}

static float **
block_field (AclipTransformerParams *p, int which)
{
  switch (which) {
    case B_IN_W:
      return &p->attn_in_weight;
    case B_IN_B:
      return &p->attn_in_bias;
    case B_OUT_W:
      return &p->attn_out_weight;
    case B_OUT_B:
      return &p->attn_out_bias;
    case B_L1_W:
      return &p->mlp_in_weight;
    case B_L1_B:
      return &p->mlp_in_bias;
    case B_L2_W:
      return &p->mlp_out_weight;
    case B_L2_B:
      return &p->mlp_out_bias;
    case B_N1_W:
      return &p->ln1_weight;
    case B_N1_B:
      return &p->ln1_bias;
    case B_N2_W:
      return &p->ln2_weight;
    default:
      return &p->ln2_bias;
  }
}

static int
n_x_buffers (const AclipSpectrumEncoder *encoder)
{
  return encoder->training ? encoder->config.n_layers + 1 : 2;
}

static int
n_act_sets (const AclipSpectrumEncoder *encoder)
{
  return encoder->training ? encoder->config.n_layers : 1;
}

/* Layer l's input (l = n_layers: the final LayerNorm's input). */
static float *
layer_input (const AclipSpectrumEncoder *encoder, int l)
{
  return encoder->training ? encoder->x[l] : encoder->x[l % 2];
}

static AclipTransformerActivations *
layer_acts (const AclipSpectrumEncoder *encoder, int l)
{
  return &encoder->acts[encoder->training ? l : 0];
}

AclipSpectrumEncoder *
aclip_spectrum_encoder_new (const AclipSpectrumEncoderConfig *config, AclipParams *params,
                            const char *prefix, int max_batch, gboolean for_training,
                            GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  if (!aclip_spectrum_encoder_config_validate (config, error))
    return NULL;
  if (max_batch < 1) {
    invalid (error, _("the batch size must be positive, not %d"), max_batch);
    return NULL;
  }
  if (!aclip_params_is_sealed (params) || (for_training && !aclip_params_is_training (params))) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 for_training ? _("Spectrum encoder: the parameters are not set up for training")
                              : _("Spectrum encoder: the parameter table is not sealed"));
    return NULL;
  }
  if (prefix == NULL)
    prefix = "";

  AclipSpectrumEncoder *e = g_new0 (AclipSpectrumEncoder, 1);
  e->config = *config;
  e->n_windows = aclip_spectrum_encoder_config_n_windows (config);
  e->n_tokens = e->n_windows + 1;
  e->max_batch = max_batch;
  e->training = for_training;
  e->block_config.channels = config->width;
  e->block_config.n_heads = config->n_heads;
  e->block_config.hidden = config->mlp_hidden;
  e->block_config.layernorm_eps = config->layernorm_eps;
  e->block_config.gelu_form = ACLIP_GELU_ERF;
  e->blocks = g_new0 (AclipTransformerParams, config->n_layers);
  e->d_blocks = g_new0 (AclipTransformerParams, config->n_layers);

  gint64 shape[2];
  for (int s = 0; s < N_STEM_TENSORS; s++) {
    g_autofree char *name = g_strconcat (prefix, stem_name[s], NULL);
    stem_shape (config, s, shape);
    if (!bind_tensor (params, name, shape, &e->stem[s], for_training ? &e->d_stem[s] : NULL, error))
      goto fail;
  }
  for (int l = 0; l < config->n_layers; l++)
    for (int t = 0; t < N_BLOCK_TENSORS; t++) {
      g_autofree char *name = g_strdup_printf ("%sblocks.%d.%s", prefix, l, block_suffix[t]);
      block_shape (config, t, shape);
      if (!bind_tensor (params, name, shape, block_field (&e->blocks[l], t),
                        for_training ? block_field (&e->d_blocks[l], t) : NULL, error))
        goto fail;
    }

  /* Activations. */
  const gsize b = (gsize) max_batch, t = (gsize) e->n_tokens, c = (gsize) config->width;
  const gsize n = b * t;
  const gsize probs_bytes =
      sizeof (float) * b * (gsize) config->n_heads * t * t * (gsize) config->n_layers;
  e->store_probs = for_training && probs_bytes <= PROBS_LIMIT_BYTES;
  e->arena = aclip_arena_new ();
  AclipArena *arena = e->arena;
  gsize o_features = aclip_arena_reserve (arena, b * (gsize) e->n_windows * 2 * config->window);
  gsize o_stats = aclip_arena_reserve (arena, 2 * b);
  gsize o_stats_in = aclip_arena_reserve (arena, 2 * b);
  gsize o_key_mask = aclip_arena_reserve (arena, (n + 3) / 4);
  gsize o_replace = aclip_arena_reserve (arena, (n + 3) / 4);
  gsize o_embed = aclip_arena_reserve (arena, n * c);
  const int n_x = n_x_buffers (e), n_acts = n_act_sets (e);
  gsize *o_x = g_new (gsize, n_x);
  gsize *o_acts = g_new (gsize, n_acts);
  for (int i = 0; i < n_x; i++)
    o_x[i] = aclip_arena_reserve (arena, n * c);
  gsize act_size =
      aclip_transformer_activations_size (&e->block_config, max_batch, e->n_tokens, e->store_probs);
  for (int i = 0; i < n_acts; i++)
    o_acts[i] = aclip_arena_reserve (arena, act_size);
  gsize o_tokens = aclip_arena_reserve (arena, n * c);
  gsize o_ln_mean = aclip_arena_reserve (arena, n);
  gsize o_ln_rstd = aclip_arena_reserve (arena, n);
  gsize o_d_tokens = 0, o_d_a = 0, o_d_b = 0;
  if (for_training) {
    o_d_tokens = aclip_arena_reserve (arena, n * c);
    o_d_a = aclip_arena_reserve (arena, n * c);
    o_d_b = aclip_arena_reserve (arena, n * c);
  }
  gsize workspace =
      MAX (aclip_transformer_workspace_size (&e->block_config, max_batch, e->n_tokens),
           aclip_layernorm_backward_workspace_size ((gint64) n, config->width));
  gsize o_workspace = aclip_arena_reserve (arena, workspace);
  if (!aclip_arena_seal (arena, error)) {
    g_free (o_x);
    g_free (o_acts);
    goto fail;
  }
  e->features = aclip_arena_at (arena, o_features);
  e->stats = aclip_arena_at (arena, o_stats);
  e->stats_in = aclip_arena_at (arena, o_stats_in);
  e->key_mask = (guint8 *) aclip_arena_at (arena, o_key_mask);
  e->replace = (guint8 *) aclip_arena_at (arena, o_replace);
  e->embed = aclip_arena_at (arena, o_embed);
  e->x = g_new (float *, n_x);
  for (int i = 0; i < n_x; i++)
    e->x[i] = aclip_arena_at (arena, o_x[i]);
  e->block_mem = g_new (float *, n_acts);
  e->acts = g_new0 (AclipTransformerActivations, n_acts);
  for (int i = 0; i < n_acts; i++)
    e->block_mem[i] = aclip_arena_at (arena, o_acts[i]);
  e->tokens = aclip_arena_at (arena, o_tokens);
  e->ln_mean = aclip_arena_at (arena, o_ln_mean);
  e->ln_rstd = aclip_arena_at (arena, o_ln_rstd);
  if (for_training) {
    e->d_tokens = aclip_arena_at (arena, o_d_tokens);
    e->d_a = aclip_arena_at (arena, o_d_a);
    e->d_b = aclip_arena_at (arena, o_d_b);
  }
  e->workspace = aclip_arena_at (arena, o_workspace);
  g_free (o_x);
  g_free (o_acts);
  return e;

fail:
  aclip_spectrum_encoder_free (e);
  return NULL;
}

void
aclip_spectrum_encoder_free (AclipSpectrumEncoder *encoder)
{
  if (encoder == NULL)
    return;
  g_free (encoder->blocks);
  g_free (encoder->d_blocks);
  g_free (encoder->x);
  g_free (encoder->block_mem);
  g_free (encoder->acts);
  if (encoder->arena != NULL)
    aclip_arena_free (encoder->arena);
  g_free (encoder);
}

const AclipSpectrumEncoderConfig *
aclip_spectrum_encoder_get_config (const AclipSpectrumEncoder *encoder)
{
  return &encoder->config;
}

int
aclip_spectrum_encoder_n_tokens (const AclipSpectrumEncoder *encoder)
{
  return encoder->n_tokens;
}

int
aclip_spectrum_encoder_max_batch (const AclipSpectrumEncoder *encoder)
{
  return encoder->max_batch;
}

gsize
aclip_spectrum_encoder_activation_bytes (const AclipSpectrumEncoder *encoder)
{
  return aclip_arena_n_floats (encoder->arena) * sizeof (float);
}

const float *
aclip_spectrum_encoder_tokens (const AclipSpectrumEncoder *encoder)
{
  return encoder->tokens;
}

const guint8 *
aclip_spectrum_encoder_key_mask (const AclipSpectrumEncoder *encoder)
{
  return encoder->key_mask;
}

const float *
aclip_spectrum_encoder_features (const AclipSpectrumEncoder *encoder)
{
  return encoder->features;
}

const float *
aclip_spectrum_encoder_stats (const AclipSpectrumEncoder *encoder)
{
  return encoder->stats;
}

float *
aclip_spectrum_encoder_d_tokens (AclipSpectrumEncoder *encoder)
{
  g_return_val_if_fail (encoder->training, NULL);
  return encoder->d_tokens;
}

/* ---- Forward ------------------------------------------------------------------------------ */

typedef struct
{
  AclipSpectrumEncoder *encoder;
  const float *flux, *ivar;
} PreprocessJob;

static void
preprocess_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  PreprocessJob *job = data;
  AclipSpectrumEncoder *e = job->encoder;
  const gsize n_wave = (gsize) e->config.n_wave;
  const gsize feature_row = (gsize) e->n_windows * 2 * e->config.window;
  for (gint64 b = begin; b < end; b++) {
    float *stats = e->stats + 2 * b;
    aclip_spectrum_preprocess (&e->config, e->features + (gsize) b * feature_row, stats,
                               e->key_mask + (gsize) b * e->n_tokens, job->flux + b * n_wave,
                               job->ivar + b * n_wave);
    e->stats_in[2 * b] = asinhf (stats[0]);
    e->stats_in[2 * b + 1] = logf (stats[1]);
  }
}

void
aclip_spectrum_encoder_forward (AclipSpectrumEncoder *encoder, AclipThreadPool *pool,
                                const float *flux, const float *ivar, const guint8 *replace,
                                int batch)
{
  g_return_if_fail (encoder != NULL && flux != NULL && ivar != NULL);
  g_return_if_fail (batch >= 1 && batch <= encoder->max_batch);
  AclipSpectrumEncoder *e = encoder;
  const int t_len = e->n_tokens, c = e->config.width, n_windows = e->n_windows;
  const int n_features = 2 * e->config.window;
  const gint64 n = (gint64) batch * t_len;
  e->batch = batch;

  for (int i = 0; i < n_act_sets (e); i++)
    aclip_transformer_activations_bind (&e->acts[i], &e->block_config, batch, t_len, e->store_probs,
                                        e->block_mem[i]);

  /* 1–4: standardise, window, key mask; the statistics token's input. */
  PreprocessJob job = { e, flux, ivar };
  aclip_parallel_for (pool, batch, 1, preprocess_worker, &job);
  if (replace != NULL) {
    memcpy (e->replace, replace, (gsize) n);
    for (int b = 0; b < batch; b++)
      e->replace[(gsize) b * t_len] = 0;
  } else {
    memset (e->replace, 0, (gsize) n);
  }

  /* Window embeddings of the whole batch in one product, [B·n_windows, C], into x[0] as
   * scratch; then assembled with the statistics tokens into embed [B, T, C]. */
  float *windows = e->x[0];
  aclip_linear_forward (pool, windows, e->features, e->stem[S_EMBED_W], e->stem[S_EMBED_B],
                        (gint64) batch * n_windows, n_features, c);
  const float *stats_w = e->stem[S_STATS_W], *stats_b = e->stem[S_STATS_B];
  for (int b = 0; b < batch; b++) {
    float *row = e->embed + (gsize) b * t_len * c; /* [T, C] */
    const float *s = e->stats_in + 2 * b;
    for (int k = 0; k < c; k++)
      row[k] = stats_b[k] + stats_w[2 * k] * s[0] + stats_w[2 * k + 1] * s[1];
    memcpy (row + c, windows + (gsize) b * n_windows * c, (gsize) n_windows * c * sizeof (float));
    for (int t = 1; t < t_len; t++)
      if (e->replace[(gsize) b * t_len + t])
        memcpy (row + (gsize) t * c, e->stem[S_MASK], (gsize) c * sizeof (float));
  }

  /* 5: positional embedding; 6: the blocks and the final LayerNorm. */
  aclip_positional_embedding_forward (pool, e->x[0], e->embed, e->stem[S_POS], batch, t_len, c);
  for (int l = 0; l < e->config.n_layers; l++)
    aclip_transformer_block_forward (pool, &e->block_config, &e->blocks[l], layer_acts (e, l),
                                     layer_input (e, l + 1), layer_input (e, l), e->key_mask, batch,
                                     t_len, e->workspace);
  aclip_layernorm_forward (pool, e->tokens, e->ln_mean, e->ln_rstd,
                           layer_input (e, e->config.n_layers), e->stem[S_FINAL_W],
                           e->stem[S_FINAL_B], n, c, e->config.layernorm_eps);
  if (e->training)
    memset (e->d_tokens, 0, (gsize) n * c * sizeof (float));
}

/* ---- Backward ----------------------------------------------------------------------------- */

void
aclip_spectrum_encoder_backward (AclipSpectrumEncoder *encoder, AclipThreadPool *pool)
{
  aclip_spectrum_encoder_backward_from (encoder, pool, 0);
}

void
aclip_spectrum_encoder_backward_from (AclipSpectrumEncoder *encoder, AclipThreadPool *pool,
                                      int first_layer)
{
  g_return_if_fail (encoder != NULL && encoder->training && encoder->batch > 0);
  g_return_if_fail (first_layer >= 0 && first_layer <= encoder->config.n_layers);
  AclipSpectrumEncoder *e = encoder;
  const int batch = e->batch, t_len = e->n_tokens, c = e->config.width;
  const int n_windows = e->n_windows, n_features = 2 * e->config.window;
  const gint64 n = (gint64) batch * t_len;
  const gsize n_floats = (gsize) n * c;

  float *d_out = e->d_a, *d_in = e->d_b;
  memset (d_out, 0, n_floats * sizeof (float));
  aclip_layernorm_backward (pool, d_out, e->d_stem[S_FINAL_W], e->d_stem[S_FINAL_B], e->d_tokens,
                            layer_input (e, e->config.n_layers), e->ln_mean, e->ln_rstd,
                            e->stem[S_FINAL_W], n, c, e->workspace);
  for (int l = e->config.n_layers - 1; l >= first_layer; l--) {
    memset (d_in, 0, n_floats * sizeof (float));
    aclip_transformer_block_backward (pool, &e->block_config, &e->blocks[l], &e->d_blocks[l],
                                      layer_acts (e, l), d_in, d_out, layer_input (e, l),
                                      e->key_mask, batch, t_len, e->workspace);
    float *swap = d_out;
    d_out = d_in;
    d_in = swap;
  }
  if (first_layer > 0)
    return;
  /* d_out [B, T, C] is now the gradient of the embeddings plus positions. */
  aclip_positional_embedding_backward (pool, NULL, e->d_stem[S_POS], d_out, batch, t_len, c);

  /* Statistics tokens and mask-embedding replacements, serially in a fixed order; the windows'
   * gradients are gathered into d_in [B·n_windows, C] for one product. */
  float *d_stats_w = e->d_stem[S_STATS_W], *d_stats_b = e->d_stem[S_STATS_B];
  float *d_mask = e->d_stem[S_MASK];
  float *d_windows = d_in;
  for (int b = 0; b < batch; b++) {
    const float *row = d_out + (gsize) b * t_len * c; /* [T, C] */
    const float *s = e->stats_in + 2 * b;
    for (int k = 0; k < c; k++) {
      d_stats_b[k] += row[k];
      d_stats_w[2 * k] += row[k] * s[0];
      d_stats_w[2 * k + 1] += row[k] * s[1];
    }
    float *d_row = d_windows + (gsize) b * n_windows * c; /* [n_windows, C] */
    for (int t = 1; t < t_len; t++) {
      const float *d_token = row + (gsize) t * c;
      float *d_window = d_row + (gsize) (t - 1) * c;
      if (e->replace[(gsize) b * t_len + t]) {
        for (int k = 0; k < c; k++)
          d_mask[k] += d_token[k];
        memset (d_window, 0, (gsize) c * sizeof (float));
      } else {
        memcpy (d_window, d_token, (gsize) c * sizeof (float));
      }
    }
  }
  aclip_linear_backward (pool, NULL, e->d_stem[S_EMBED_W], e->d_stem[S_EMBED_B], d_windows,
                         e->features, e->stem[S_EMBED_W], (gint64) batch * n_windows, n_features,
                         c);
}
