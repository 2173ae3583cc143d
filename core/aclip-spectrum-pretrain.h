/* aclip-spectrum-pretrain.h — masked-reconstruction pretraining of the spectrum encoder.
 *
 * Each spectrum has contiguous runs of window tokens replaced by the learned mask embedding
 * (the paper: 6 runs of 50 of its 777 tokens, ≈39%; here by default 6 runs of 25 of 388, the
 * same fraction). A linear head (C → window) reconstructs every window from the encoder's
 * output tokens, and the loss is the mean squared error of the standardised flux over the
 * masked windows only, each pixel weighted by its weight channel w = s/(1 + s), s = ivar·std²
 * (aclip-spectrum-encoder.h): bad pixels count not at all, noisy ones less.
 *
 *   L = Σ w·(pred − target)² / Σ w,   both sums over every pixel of every masked window
 *
 * so L is a weighted mean, comparable between batches: predicting zeros (each spectrum's mean)
 * scores about 1.
 */
#pragma once

#include "aclip-spectrum-encoder.h"

#include <glib.h>

G_BEGIN_DECLS

/* Masks ------------------------------------------------------------------------------------- */

typedef struct
{
  int n_runs;     /* masked runs per spectrum */
  int run_length; /* window tokens per run */
} AclipSpectrumMaskConfig;

/* The paper's masked fraction scaled to the encoder's token count: 6 runs of
 * max (1, round (n_windows · 50 / 777)) tokens — 25 of 388 for the default encoder, 50 of 777
 * for the paper's. */
void aclip_spectrum_mask_config_init (AclipSpectrumMaskConfig *config,
                                      const AclipSpectrumEncoderConfig *encoder);
/* The runs must fit without overlapping: n_runs·run_length ≤ n_windows. */
gboolean aclip_spectrum_mask_config_validate (const AclipSpectrumMaskConfig *config, int n_windows,
                                              GError **error);

#define ACLIP_SPECTRUM_PRETRAIN_GROUP "spectrum_pretrain"

/* [spectrum_pretrain] mask_runs, mask_run_length. */
void aclip_spectrum_mask_config_save (const AclipSpectrumMaskConfig *config, GKeyFile *key_file);
gboolean aclip_spectrum_mask_config_load (AclipSpectrumMaskConfig *config, GKeyFile *key_file,
                                          int n_windows, GError **error);

/* Draws one spectrum's masked runs: n_runs runs of run_length window tokens that do not
 * overlap (they may touch), uniformly over all such arrangements, from a generator seeded with
 * (seed, index, stream) — e.g. (training seed, step, position in the batch), so a resumed run
 * draws the same masks.
 *   replace: [n_windows + 1] (written): 1 for a masked window token, 0 elsewhere and for
 *            token 0 (the statistics token) */
void aclip_spectrum_mask_draw (const AclipSpectrumMaskConfig *config, int n_windows, guint64 seed,
                               guint64 index, guint64 stream, guint8 *replace);

/* The loss ---------------------------------------------------------------------------------- */

/* Weighted mean squared error over the counted rows.
 *   pred, target, weight: [N, K] (weights ≥ 0)
 *   mask: [N], nonzero = the row counts; NULL counts every row
 * Returns Σ w·(pred − target)² / Σ w over the counted rows' elements (accumulated in double),
 * 0 when Σ w = 0; *weight_sum (if not NULL) receives Σ w. */
double aclip_weighted_mse_forward (const float *pred, const float *target, const float *weight,
                                   const guint8 *mask, gint64 n, gint64 k, double *weight_sum);
/* dpred: [N, K] += dloss · 2 w (pred − target) / Σ w on counted rows (nothing when Σ w = 0). */
void aclip_weighted_mse_backward (float *dpred, const float *pred, const float *target,
                                  const float *weight, const guint8 *mask, gint64 n, gint64 k,
                                  float dloss);

/* The pretraining head and step -------------------------------------------------------------- */

/* Registers the reconstruction head under `prefix` (e.g. "spectrum_pretrain."):
 * head.weight [window, C] N(0, 0.02²) with weight decay, head.bias [window] zeros. */
gboolean aclip_spectrum_pretrain_register (const AclipSpectrumEncoderConfig *config,
                                           AclipParams *params, const char *prefix, GError **error);

typedef struct _AclipSpectrumPretrainer AclipSpectrumPretrainer;

/* Binds the head in `params` (sealed) to `encoder` (borrowed; it must outlive the pretrainer
 * and be in training mode for the backward), with buffers for the encoder's max batch. */
AclipSpectrumPretrainer *aclip_spectrum_pretrainer_new (AclipSpectrumEncoder *encoder,
                                                        AclipParams *params, const char *prefix,
                                                        GError **error);
void aclip_spectrum_pretrainer_free (AclipSpectrumPretrainer *pretrainer);

typedef struct
{
  double loss;       /* the weighted MSE over the masked windows */
  double baseline;   /* the same for a prediction of zeros (each spectrum's mean) */
  double weight_sum; /* Σ w over the masked pixels: the weight of this batch in an average */
  gint64 n_masked;   /* masked window tokens */
} AclipSpectrumPretrainLoss;

/* Runs the encoder on B spectra with the tokens marked in `replace` [B, T] masked (see
 * aclip_spectrum_mask_draw), reconstructs every window and scores the masked ones.
 *   flux, ivar: [B, n_wave] */
void aclip_spectrum_pretrainer_forward (AclipSpectrumPretrainer *pretrainer, AclipThreadPool *pool,
                                        const float *flux, const float *ivar, const guint8 *replace,
                                        int batch, AclipSpectrumPretrainLoss *result);
/* Backpropagates dloss·L of the last forward into the head's and the encoder's gradients
 * (ACCUMULATING; the caller zeroes them before a step). */
void aclip_spectrum_pretrainer_backward (AclipSpectrumPretrainer *pretrainer, AclipThreadPool *pool,
                                         float dloss);
/* [B, T, window] of the last forward: row t ≥ 1 is window t − 1 reconstructed, in standardised
 * units (row 0, the statistics token's, is not used). */
const float *aclip_spectrum_pretrainer_prediction (const AclipSpectrumPretrainer *pretrainer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipSpectrumPretrainer, aclip_spectrum_pretrainer_free)

G_END_DECLS
