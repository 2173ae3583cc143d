/* aclip-model.h — the AstroCLIP model: the spectrum encoder, the image encoder and their two
 * alignment heads (aclip-head.h) in ONE parameter table, so one checkpoint holds them all.
 *
 * Tensor prefixes: "spectrum." (aclip-spectrum-encoder.h), "image." (aclip-image-encoder.h),
 * "spectrum_head." and "image_head." (aclip-head.h), and "logit_scale" [1], the logarithm of
 * the InfoNCE logit scale (ln 15.5 unless learned). A model built with spectrum_view_head has
 * a third head, "spectrum_view_head.", over the spectrum encoder's tokens: an embedding of its
 * own for a spectrum–spectrum loss during alignment (astroclip align --spectrum-view-head),
 * which embedding and search never read. An aligned checkpoint's text holds
 * [spectrum_encoder], [image_encoder], [heads] and whatever the trainer adds.
 *
 * Images are embedded from flux cubes exactly as the image encoder sees them when it is not
 * augmented: the centre crop, block-averaged, through the Legacy Survey RGB mapping
 * (aclip_augment_batch with aclip_augment_config_init_none), BN in evaluation mode.
 */
#pragma once

#include "aclip-checkpoint.h"
#include "aclip-head.h"
#include "aclip-image-encoder.h"
#include "aclip-parallel.h"
#include "aclip-params.h"
#include "aclip-spectrum-encoder.h"

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_MODEL_SPECTRUM_PREFIX      "spectrum."
#define ACLIP_MODEL_IMAGE_PREFIX         "image."
#define ACLIP_MODEL_SPECTRUM_HEAD_PREFIX "spectrum_head."
#define ACLIP_MODEL_IMAGE_HEAD_PREFIX    "image_head."
#define ACLIP_MODEL_SPECTRUM_VIEW_HEAD_PREFIX "spectrum_view_head."
#define ACLIP_MODEL_LOGIT_SCALE          "logit_scale"
#define ACLIP_MODEL_DEFAULT_LOGIT_SCALE  15.5

typedef struct
{
  AclipSpectrumEncoderConfig spectrum;
  AclipImageEncoderConfig image;
  AclipHeadConfig head;
  gboolean spectrum_view_head; /* [heads] spectrum_view_head, FALSE when absent */
} AclipModelConfig;

/* Writes [spectrum_encoder], [image_encoder] and [heads]. */
void aclip_model_config_save (const AclipModelConfig *config, GKeyFile *key_file);
/* Reads the three groups (all required) and checks that the heads fit both encoders. */
gboolean aclip_model_config_load (AclipModelConfig *config, GKeyFile *key_file, GError **error);
/* The configuration in a checkpoint's text. */
gboolean aclip_model_config_from_checkpoint (AclipModelConfig *config,
                                             const AclipCheckpoint *checkpoint, GError **error);

typedef enum
{
  ACLIP_MODEL_INFERENCE,   /* forwards only */
  ACLIP_MODEL_TRAIN_HEADS, /* the heads' backward; the encoders run forward only */
  ACLIP_MODEL_TRAIN_ALL,   /* backward through the heads and both encoders */
  ACLIP_MODEL_TRAIN_LAST_LAYERS, /* backward through the heads, the spectrum encoder's last
                                  * block and final LayerNorm and the image encoder's last
                                  * stage only */
} AclipModelMode;

typedef struct _AclipModel AclipModel;

/* Registers every tensor, seals the table (for training unless INFERENCE) and binds encoders
 * and heads with activations for batches of up to max_batch. Values are zero until
 * aclip_model_init, a restore or aclip_checkpoint_restore. */
AclipModel *aclip_model_new (const AclipModelConfig *config, int max_batch, AclipModelMode mode,
                             GError **error);
void aclip_model_free (AclipModel *model);

/* Fresh values for every tensor from `seed` (the logit scale ln 15.5). */
void aclip_model_init (AclipModel *model, guint64 seed, AclipThreadPool *pool);
/* Reads the encoders' configurations from two pretraining checkpoints (the heads' is given,
 * and whether there is a spectrum view head), builds the model, initialises it from `seed`
 * and copies each encoder's tensors by name. */
AclipModel *aclip_model_new_from_pretrained (const AclipCheckpoint *spectrum_checkpoint,
                                             const AclipCheckpoint *image_checkpoint,
                                             const AclipHeadConfig *head,
                                             gboolean spectrum_view_head, int max_batch,
                                             AclipModelMode mode, guint64 seed,
                                             AclipThreadPool *pool, GError **error);
/* An aligned checkpoint for inference: its configuration and all its tensors. */
AclipModel *aclip_model_load (const char *path, int max_batch, GError **error);

const AclipModelConfig *aclip_model_get_config (const AclipModel *model);
AclipParams *aclip_model_params (AclipModel *model);
int aclip_model_dim (const AclipModel *model);
int aclip_model_max_batch (const AclipModel *model);
/* The image encoder's input side S and what the RGB input of a batch needs: [B, 3, S, S]. */
int aclip_model_image_input_size (const AclipModel *model);
/* exp (logit_scale). */
double aclip_model_logit_scale (AclipModel *model);

/* Spectra → embeddings [B, D] (L2-normalised; valid until the next spectrum forward).
 *   flux, ivar: [B, n_wave], B ≤ max_batch */
const float *aclip_model_forward_spectra (AclipModel *model, AclipThreadPool *pool,
                                          const float *flux, const float *ivar, int batch);
/* RGB inputs → embeddings [B, D], BN in evaluation mode.
 *   input: [B, 3, S, S] (aclip_augment_batch's output) */
const float *aclip_model_forward_images (AclipModel *model, AclipThreadPool *pool,
                                         const float *input, int batch);
/* Backward of the last forward of each modality: d_embeddings [B, D]; accumulates into the
 * table's gradients (the heads', and the encoder's in TRAIN_ALL mode). */
void aclip_model_backward_spectra (AclipModel *model, AclipThreadPool *pool,
                                   const float *d_embeddings);
void aclip_model_backward_images (AclipModel *model, AclipThreadPool *pool,
                                  const float *d_embeddings);
/* With a spectrum view head: its embeddings [B, D] (L2-normalised) of the tokens of the last
 * spectrum forward, and the backward of both spectrum heads and the encoder in one, the
 * gradients of the two embeddings given (d_view_embeddings [B, D]). */
const float *aclip_model_forward_spectrum_view_head (AclipModel *model, AclipThreadPool *pool,
                                                     int batch);
void aclip_model_backward_spectra_with_views (AclipModel *model, AclipThreadPool *pool,
                                              const float *d_embeddings,
                                              const float *d_view_embeddings);

/* Embedding: the same as the forwards, images from flux cubes.
 *   flux, ivar: [B, n_wave]
 *   images:     [B, 3, H, W] g, r, z in nanomaggies (centre-cropped, mapped to RGB here) */
const float *aclip_model_embed_spectra (AclipModel *model, AclipThreadPool *pool,
                                        const float *flux, const float *ivar, int batch);
const float *aclip_model_embed_images (AclipModel *model, AclipThreadPool *pool,
                                       const float *images, int batch, int height, int width);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipModel, aclip_model_free)

G_END_DECLS
