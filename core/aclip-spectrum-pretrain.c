/* aclip-spectrum-pretrain.c — masked-reconstruction pretraining (aclip-spectrum-pretrain.h). */
#include "aclip-spectrum-pretrain.h"

#include "aclip-error.h"
#include "aclip-nn.h"
#include "aclip-rng.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

/* ---- Masks -------------------------------------------------------------------------------- */

/* The paper masks 6 runs of 50 tokens of 777. */
#define PAPER_RUNS       6
#define PAPER_RUN_LENGTH 50
#define PAPER_WINDOWS    777
/* A stream number of our own, so mask draws never coincide with other users of (seed, index). */
#define MASK_STREAM_SALT G_GUINT64_CONSTANT (0x6d61736b72756e73) /* "maskruns" */

void
aclip_spectrum_mask_config_init (AclipSpectrumMaskConfig *config,
                                 const AclipSpectrumEncoderConfig *encoder)
{
  g_return_if_fail (config != NULL && encoder != NULL);
  int n_windows = aclip_spectrum_encoder_config_n_windows (encoder);
  config->n_runs = PAPER_RUNS;
  config->run_length =
      MAX (1, (int) lround ((double) n_windows * PAPER_RUN_LENGTH / (double) PAPER_WINDOWS));
  /* Very short spectra: keep the runs within the windows. */
  while (config->n_runs > 1 && config->n_runs * config->run_length > n_windows)
    config->n_runs--;
  if (config->n_runs * config->run_length > n_windows)
    config->run_length = MAX (1, n_windows);
}

gboolean
aclip_spectrum_mask_config_validate (const AclipSpectrumMaskConfig *config, int n_windows,
                                     GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  if (config->n_runs < 1 || config->run_length < 1 ||
      (gint64) config->n_runs * config->run_length > n_windows) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("Spectrum pretraining: %d masked runs of %d tokens do not fit in %d windows"),
                 config->n_runs, config->run_length, n_windows);
    return FALSE;
  }
  return TRUE;
}

void
aclip_spectrum_mask_config_save (const AclipSpectrumMaskConfig *config, GKeyFile *key_file)
{
  g_key_file_set_integer (key_file, ACLIP_SPECTRUM_PRETRAIN_GROUP, "mask_runs", config->n_runs);
  g_key_file_set_integer (key_file, ACLIP_SPECTRUM_PRETRAIN_GROUP, "mask_run_length",
                          config->run_length);
}

gboolean
aclip_spectrum_mask_config_load (AclipSpectrumMaskConfig *config, GKeyFile *key_file, int n_windows,
                                 GError **error)
{
  AclipSpectrumMaskConfig c;
  const char *keys[2] = { "mask_runs", "mask_run_length" };
  int *fields[2] = { &c.n_runs, &c.run_length };
  for (int i = 0; i < 2; i++) {
    g_autoptr (GError) local = NULL;
    *fields[i] = g_key_file_get_integer (key_file, ACLIP_SPECTRUM_PRETRAIN_GROUP, keys[i], &local);
    if (local != NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("[%s] %s: %s"),
                   ACLIP_SPECTRUM_PRETRAIN_GROUP, keys[i], local->message);
      return FALSE;
    }
  }
  if (!aclip_spectrum_mask_config_validate (&c, n_windows, error))
    return FALSE;
  *config = c;
  return TRUE;
}

static int
compare_ints (const void *a, const void *b)
{
  int x = *(const int *) a, y = *(const int *) b;
  return (x > y) - (x < y);
}

void
aclip_spectrum_mask_draw (const AclipSpectrumMaskConfig *config, int n_windows, guint64 seed,
                          guint64 index, guint64 stream, guint8 *replace)
{
  g_return_if_fail (config != NULL && replace != NULL);
  memset (replace, 0, (gsize) n_windows + 1);
  const int k = config->n_runs, length = config->run_length;
  g_return_if_fail (k >= 1 && length >= 1 && (gint64) k * length <= n_windows);

  /* Stars and bars: an arrangement of k non-overlapping runs is given by the k gaps before
   * them, g_0 + ... + g_{k−1} ≤ n_windows − k·length; those correspond one to one to the k-subsets
   * s_0 < ... < s_{k−1} of [0, n_windows − k·length + k), run i starting at
   * s_i − i + i·length. A uniform k-subset (Floyd's algorithm) gives a uniform arrangement. */
  AclipRng rng;
  aclip_rng_init (&rng, seed, index, stream ^ MASK_STREAM_SALT);
  const int universe = n_windows - k * length + k;
  int *chosen = g_newa (int, k);
  int n_chosen = 0;
  for (int j = universe - k; j < universe; j++) {
    int candidate = (int) aclip_rng_below (&rng, (guint64) j + 1);
    for (int i = 0; i < n_chosen; i++)
      if (chosen[i] == candidate) {
        candidate = j;
        break;
      }
    chosen[n_chosen++] = candidate;
  }
  qsort (chosen, (size_t) k, sizeof (int), compare_ints);
  for (int i = 0; i < k; i++) {
    int start = chosen[i] + i * (length - 1);
    memset (replace + 1 + start, 1, (gsize) length);
  }
}

/* ---- The loss ----------------------------------------------------------------------------- */

double
aclip_weighted_mse_forward (const float *pred, const float *target, const float *weight,
                            const guint8 *mask, gint64 n, gint64 k, double *weight_sum)
{
  double error_sum = 0.0, w_sum = 0.0;
  for (gint64 r = 0; r < n; r++) {
    if (mask != NULL && !mask[r])
      continue;
    const float *p = pred + r * k, *t = target + r * k, *w = weight + r * k;
    for (gint64 j = 0; j < k; j++) {
      double d = (double) p[j] - (double) t[j];
      error_sum += (double) w[j] * d * d;
      w_sum += w[j];
    }
  }
  if (weight_sum != NULL)
    *weight_sum = w_sum;
  return w_sum > 0.0 ? error_sum / w_sum : 0.0;
}

void
aclip_weighted_mse_backward (float *dpred, const float *pred, const float *target,
                             const float *weight, const guint8 *mask, gint64 n, gint64 k,
                             float dloss)
{
  double w_sum = 0.0;
  for (gint64 r = 0; r < n; r++)
    if (mask == NULL || mask[r])
      for (gint64 j = 0; j < k; j++)
        w_sum += weight[r * k + j];
  if (!(w_sum > 0.0))
    return;
  const float scale = (float) (2.0 * (double) dloss / w_sum);
  for (gint64 r = 0; r < n; r++) {
    if (mask != NULL && !mask[r])
      continue;
    for (gint64 j = 0; j < k; j++) {
      gint64 i = r * k + j;
      dpred[i] += scale * weight[i] * (pred[i] - target[i]);
    }
  }
}

/* ---- The head and the step ---------------------------------------------------------------- */

gboolean
aclip_spectrum_pretrain_register (const AclipSpectrumEncoderConfig *config, AclipParams *params,
                                  const char *prefix, GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL, FALSE);
  if (!aclip_spectrum_encoder_config_validate (config, error))
    return FALSE;
  if (prefix == NULL)
    prefix = "";
  g_autofree char *weight_name = g_strconcat (prefix, "head.weight", NULL);
  g_autofree char *bias_name = g_strconcat (prefix, "head.bias", NULL);
  const gint64 weight_shape[2] = { config->window, config->width };
  const gint64 bias_shape[1] = { config->window };
  const AclipInit normal = { ACLIP_INIT_NORMAL, 0.02f, 0, 0 };
  const AclipInit zeros = { ACLIP_INIT_ZEROS, 0.0f, 0, 0 };
  return aclip_params_add (params, weight_name, 2, weight_shape, normal, ACLIP_PARAM_DECAY,
                           error) >= 0 &&
         aclip_params_add (params, bias_name, 1, bias_shape, zeros, ACLIP_PARAM_NONE, error) >= 0;
}

struct _AclipSpectrumPretrainer
{
  AclipSpectrumEncoder *encoder;
  int window, width, n_tokens, batch;
  float *head_w, *head_b;     /* [window, C], [window] */
  float *d_head_w, *d_head_b; /* gradients, or NULL */
  AclipArena *arena;
  float *pred;   /* [B, T, window] */
  float *target; /* [B, T, window], row 0 of each spectrum zero */
  float *weight; /* [B, T, window], row 0 of each spectrum zero */
  float *d_pred; /* [B, T, window] */
  guint8 *rows;  /* [B, T]: the masked window tokens */
};

static float *
head_tensor (AclipParams *params, const char *prefix, const char *name, int n_dims,
             const gint64 *shape, float **grad, GError **error)
{
  g_autofree char *full = g_strconcat (prefix, name, NULL);
  int index = aclip_params_lookup (params, full);
  const AclipParamInfo *info = index >= 0 ? aclip_params_info (params, index) : NULL;
  if (info == NULL || info->n_dims != n_dims ||
      memcmp (info->shape, shape, (gsize) n_dims * sizeof (gint64)) != 0) {
    g_set_error (error, ACLIP_ERROR, info == NULL ? ACLIP_ERROR_MISSING : ACLIP_ERROR_SHAPE,
                 info == NULL ? _("Spectrum pretraining: the parameter table has no tensor “%s”")
                              : _("Spectrum pretraining: the tensor “%s” has the wrong shape"),
                 full);
    return NULL;
  }
  *grad = aclip_params_is_training (params) ? aclip_params_grad (params, index) : NULL;
  return aclip_params_value (params, index);
}

AclipSpectrumPretrainer *
aclip_spectrum_pretrainer_new (AclipSpectrumEncoder *encoder, AclipParams *params,
                               const char *prefix, GError **error)
{
  g_return_val_if_fail (encoder != NULL && params != NULL, NULL);
  g_return_val_if_fail (aclip_params_is_sealed (params), NULL);
  if (prefix == NULL)
    prefix = "";
  const AclipSpectrumEncoderConfig *config = aclip_spectrum_encoder_get_config (encoder);
  g_autoptr (AclipSpectrumPretrainer) p = g_new0 (AclipSpectrumPretrainer, 1);
  p->encoder = encoder;
  p->window = config->window;
  p->width = config->width;
  p->n_tokens = aclip_spectrum_encoder_n_tokens (encoder);
  const gint64 weight_shape[2] = { config->window, config->width };
  const gint64 bias_shape[1] = { config->window };
  p->head_w = head_tensor (params, prefix, "head.weight", 2, weight_shape, &p->d_head_w, error);
  if (p->head_w == NULL)
    return NULL;
  p->head_b = head_tensor (params, prefix, "head.bias", 1, bias_shape, &p->d_head_b, error);
  if (p->head_b == NULL)
    return NULL;

  const gsize n = (gsize) aclip_spectrum_encoder_max_batch (encoder) * (gsize) p->n_tokens;
  const gsize values = n * (gsize) p->window;
  p->arena = aclip_arena_new ();
  gsize o_pred = aclip_arena_reserve (p->arena, values);
  gsize o_target = aclip_arena_reserve (p->arena, values);
  gsize o_weight = aclip_arena_reserve (p->arena, values);
  gsize o_d_pred = aclip_arena_reserve (p->arena, values);
  gsize o_rows = aclip_arena_reserve (p->arena, (n + 3) / 4);
  if (!aclip_arena_seal (p->arena, error))
    return NULL;
  p->pred = aclip_arena_at (p->arena, o_pred);
  p->target = aclip_arena_at (p->arena, o_target);
  p->weight = aclip_arena_at (p->arena, o_weight);
  p->d_pred = aclip_arena_at (p->arena, o_d_pred);
  p->rows = (guint8 *) aclip_arena_at (p->arena, o_rows);
  return g_steal_pointer (&p);
}

void
aclip_spectrum_pretrainer_free (AclipSpectrumPretrainer *pretrainer)
{
  if (pretrainer == NULL)
    return;
  if (pretrainer->arena != NULL)
    aclip_arena_free (pretrainer->arena);
  g_free (pretrainer);
}

const float *
aclip_spectrum_pretrainer_prediction (const AclipSpectrumPretrainer *pretrainer)
{
  return pretrainer->pred;
}

void
aclip_spectrum_pretrainer_forward (AclipSpectrumPretrainer *pretrainer, AclipThreadPool *pool,
                                   const float *flux, const float *ivar, const guint8 *replace,
                                   int batch, AclipSpectrumPretrainLoss *result)
{
  g_return_if_fail (pretrainer != NULL && replace != NULL && result != NULL);
  AclipSpectrumPretrainer *p = pretrainer;
  const int t_len = p->n_tokens, w = p->window, c = p->width;
  const gint64 n = (gint64) batch * t_len;
  p->batch = batch;

  aclip_spectrum_encoder_forward (p->encoder, pool, flux, ivar, replace, batch);
  aclip_linear_forward (pool, p->pred, aclip_spectrum_encoder_tokens (p->encoder), p->head_w,
                        p->head_b, n, c, w);

  /* Targets and weights per token: window t − 1's standardised flux and weights. */
  const float *features = aclip_spectrum_encoder_features (p->encoder); /* [B, T − 1, 2w] */
  gint64 n_masked = 0;
  for (int b = 0; b < batch; b++)
    for (int t = 0; t < t_len; t++) {
      const gsize r = (gsize) b * t_len + t;
      float *target = p->target + r * w, *weight = p->weight + r * w;
      if (t == 0) {
        memset (target, 0, (gsize) w * sizeof (float));
        memset (weight, 0, (gsize) w * sizeof (float));
        p->rows[r] = 0;
        continue;
      }
      const float *window = features + ((gsize) b * (t_len - 1) + (t - 1)) * 2 * w;
      memcpy (target, window, (gsize) w * sizeof (float));
      memcpy (weight, window + w, (gsize) w * sizeof (float));
      p->rows[r] = replace[r] != 0;
      n_masked += p->rows[r];
    }

  result->loss = aclip_weighted_mse_forward (p->pred, p->target, p->weight, p->rows, n, w,
                                             &result->weight_sum);
  /* The baseline: Σ w·target² / Σ w. */
  double baseline = 0.0;
  for (gint64 r = 0; r < n; r++)
    if (p->rows[r])
      for (int j = 0; j < w; j++) {
        double v = p->target[r * w + j];
        baseline += (double) p->weight[r * w + j] * v * v;
      }
  result->baseline = result->weight_sum > 0.0 ? baseline / result->weight_sum : 0.0;
  result->n_masked = n_masked;
}

void
aclip_spectrum_pretrainer_backward (AclipSpectrumPretrainer *pretrainer, AclipThreadPool *pool,
                                    float dloss)
{
  g_return_if_fail (pretrainer != NULL && pretrainer->batch > 0);
  AclipSpectrumPretrainer *p = pretrainer;
  const int w = p->window, c = p->width;
  const gint64 n = (gint64) p->batch * p->n_tokens;
  memset (p->d_pred, 0, (gsize) n * w * sizeof (float));
  aclip_weighted_mse_backward (p->d_pred, p->pred, p->target, p->weight, p->rows, n, w, dloss);
  aclip_linear_backward (pool, aclip_spectrum_encoder_d_tokens (p->encoder), p->d_head_w,
                         p->d_head_b, p->d_pred, aclip_spectrum_encoder_tokens (p->encoder),
                         p->head_w, n, c, w);
  aclip_spectrum_encoder_backward (p->encoder, pool);
}
