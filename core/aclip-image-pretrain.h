/* aclip-image-pretrain.h — the image encoder's training objectives: self-supervised
 * pretraining with SimCLR, and the supervised baseline's regression of labels (below).
 *
 * Two augmented views of each of P galaxies (aclip-augment.h) go through the encoder as one
 * batch of 2P images (views 0 first, then views 1, so batch normalisation sees both). The
 * encoder's tokens [2P, T, C] are averaged over T (global average pooling of the feature map),
 * a projection head maps them to the contrastive space, and the loss is the symmetric InfoNCE
 * of aclip-loss.h between the two views:
 *
 *   pooled  [2P, C]   mean over the T tokens
 *   hidden  [2P, M]   ReLU (Linear (pooled))
 *   z       [2P, D]   L2-normalise (Linear (hidden))
 *   loss    ½ (CE (s·z₀z₁ᵀ, diag) + CE (s·z₁z₀ᵀ, diag)),  s = 1 / temperature
 *
 * so each view's positive is the other view of the same galaxy and its P − 1 negatives are the
 * other galaxies' other views (the CLIP form of SimCLR's NT-Xent, which also counts same-view
 * negatives). The head is discarded after pretraining; the alignment puts its own head on the
 * encoder's tokens.
 *
 * The head's tensors are registered under a prefix ("simclr." by convention), PyTorch-style:
 * "<prefix>head.0.weight" [M, C], "head.0.bias" [M], "head.2.weight" [D, M], "head.2.bias" [D].
 */
#pragma once

#include <glib.h>

#include "aclip-image-encoder.h"
#include "aclip-parallel.h"
#include "aclip-params.h"

G_BEGIN_DECLS

typedef struct
{
  int hidden;        /* M: 512 */
  int dim;           /* D: 128, as the paper's v1 encoder */
  float temperature; /* 0.2, as MoCo v2 and the paper's v1 encoder: logit scale 5 */
} AclipSimclrConfig;

void aclip_simclr_config_init_default (AclipSimclrConfig *config);
gboolean aclip_simclr_config_validate (const AclipSimclrConfig *config, GError **error);
/* The [simclr] group of a checkpoint's text. */
void aclip_simclr_config_save (const AclipSimclrConfig *config, GKeyFile *key_file);
/* Keys that are absent keep the default; FALSE + error when the group is missing or a value
 * is invalid. */
gboolean aclip_simclr_config_load (AclipSimclrConfig *config, GKeyFile *key_file, GError **error);

/* Registers the head's four tensors under `prefix` in an unsealed table, for an encoder of
 * `channels` output channels. PyTorch's nn.Linear initialisation; weight decay on weights. */
gboolean aclip_simclr_register (const AclipSimclrConfig *config, int channels, AclipParams *params,
                                const char *prefix, GError **error);

typedef struct _AclipSimclr AclipSimclr;

/* The objective for up to max_pairs galaxies per step, around an encoder (borrowed; its
 * max_batch must be ≥ 2·max_pairs) bound to the same sealed table. */
AclipSimclr *aclip_simclr_new (const AclipSimclrConfig *config, AclipImageEncoder *encoder,
                               AclipParams *params, const char *prefix, int max_pairs,
                               GError **error);
void aclip_simclr_free (AclipSimclr *simclr);

/* Encoder and head without the loss, for any number of images (validation, inspection).
 *   input:   [n, 3, S, S], 1 ≤ n ≤ 2·max_pairs
 *   returns: the projections [n, D], L2-normalised, in the objective's arena (valid until
 *            the next forward) */
const float *aclip_simclr_embed (AclipSimclr *simclr, AclipThreadPool *pool, const float *input,
                                 int n_images, gboolean training);

/* Encoder, head and loss for P = n_pairs ≥ 2 galaxies.
 *   input:    [2P, 3, S, S]: views 0 of the P galaxies, then views 1 (kept until the backward)
 *   training: the encoder's BN mode (aclip_image_encoder_forward)
 *   accuracy: NULL or [2]: top-1 retrieval of the other view among the P candidates, view 0 →
 *             view 1 and view 1 → view 0 (chance: 1/P)
 * Returns the loss. */
float aclip_simclr_forward (AclipSimclr *simclr, AclipThreadPool *pool, const float *input,
                            int n_pairs, gboolean training, float *accuracy);
/* The projections of the last forward, [2P, D], L2-normalised. */
const float *aclip_simclr_projections (AclipSimclr *simclr);

/* Backward of the last forward: accumulates (+=) dloss · ∂loss/∂θ into the table's gradients
 * (head and encoder). */
void aclip_simclr_backward (AclipSimclr *simclr, AclipThreadPool *pool, float dloss);

/* ---- The supervised baseline: regression of labels from the image ------------------------------
 *
 * The same encoder, trained directly on labels (redshift, log M*): the tokens [B, T, C] are
 * averaged over T and a head Linear (C → M) → ReLU → Linear (M → K) predicts K standardised
 * labels; the loss is the mean squared error over the targets present (a NaN target counts
 * for nothing), so with every target present it is F.mse_loss (pred, target):
 *
 *   loss = Σ_{finite targets} (pred − target)² / (number of finite targets)
 *
 * The head's tensors are registered under a prefix ("regressor." by convention) with the
 * SimCLR head's names: "<prefix>head.0.weight" [M, C], "head.0.bias" [M], "head.2.weight"
 * [K, M], "head.2.bias" [K]. Standardising the labels (and undoing it) is the caller's.
 */

typedef struct
{
  int hidden;    /* M: 256 */
  int n_outputs; /* K: 2 (redshift and log M*) */
} AclipRegressorConfig;

void aclip_regressor_config_init_default (AclipRegressorConfig *config);
gboolean aclip_regressor_config_validate (const AclipRegressorConfig *config, GError **error);
/* The [regressor] group of a checkpoint's text: hidden, outputs. */
void aclip_regressor_config_save (const AclipRegressorConfig *config, GKeyFile *key_file);
/* Keys that are absent keep the values given; FALSE + error when the group is missing or a
 * value is invalid (the configuration is then unchanged). */
gboolean aclip_regressor_config_load (AclipRegressorConfig *config, GKeyFile *key_file,
                                      GError **error);

/* Registers the head's four tensors under `prefix` in an unsealed table, for an encoder of
 * `channels` output channels. PyTorch's nn.Linear initialisation; weight decay on weights. */
gboolean aclip_regressor_register (const AclipRegressorConfig *config, int channels,
                                   AclipParams *params, const char *prefix, GError **error);

typedef struct _AclipRegressor AclipRegressor;

/* The objective for batches of up to max_batch images, around an encoder (borrowed; its
 * max_batch must be ≥ this one) bound to the same sealed table. */
AclipRegressor *aclip_regressor_new (const AclipRegressorConfig *config,
                                     AclipImageEncoder *encoder, AclipParams *params,
                                     const char *prefix, int max_batch, GError **error);
void aclip_regressor_free (AclipRegressor *regressor);

/* Encoder and head without a loss.
 *   input:   [n, 3, S, S], 1 ≤ n ≤ max_batch
 *   returns: the predictions [n, K] (standardised units), in the objective's arena (valid
 *            until the next forward) */
const float *aclip_regressor_predict (AclipRegressor *regressor, AclipThreadPool *pool,
                                      const float *input, int n, gboolean training);
/* Encoder, head and loss.
 *   targets:  [n, K], NaN where a galaxy has no such label
 *   training: the encoder's BN mode (aclip_image_encoder_forward)
 * Returns the loss, 0 when no target is finite (the backward then adds nothing). The
 * predictions are at aclip_regressor_predict's place. */
float aclip_regressor_forward (AclipRegressor *regressor, AclipThreadPool *pool,
                               const float *input, const float *targets, int n,
                               gboolean training);
/* Backward of the last aclip_regressor_forward: accumulates (+=) dloss · ∂loss/∂θ into the
 * table's gradients (head and encoder). */
void aclip_regressor_backward (AclipRegressor *regressor, AclipThreadPool *pool, float dloss);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipSimclr, aclip_simclr_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipRegressor, aclip_regressor_free)

G_END_DECLS
