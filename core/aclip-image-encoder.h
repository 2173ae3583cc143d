/* aclip-image-encoder.h — the image encoder: a residual convolutional network on the Legacy
 * Survey RGB mapping of a centre crop (aclip-augment.h makes its input).
 *
 *   input    [B, 3, S, S]       R, G, B in [0, 1]; S = crop / downsample
 *   stem     conv 3×3 (stride stem_stride, pad 1, no bias) → BN → ReLU      [B, C0, S', S']
 *   stage i  blocks[i] ResNet basic blocks (aclip-resblock.h) of channels[i]; the first block
 *            of every stage has stride 2
 *   output   the last feature map [B, C, h, w] and the same as tokens [B, T = h·w, C]
 *            (aclip_feature_map_to_tokens_forward), for an attention-pooling head
 *
 * Parameters are registered in an AclipParams table under a prefix ("image." by convention),
 * so one table and one checkpoint can hold both encoders and their heads. The names follow
 * torchvision's ResNet: "<prefix>conv1.weight", "<prefix>bn1.{weight,bias,running_mean,
 * running_var}", "<prefix>layer<i>.<j>.conv1.weight", ".bn1.*", ".conv2.weight", ".bn2.*",
 * ".downsample.0.weight", ".downsample.1.*" (layers and blocks counted from 1 and 0).
 *
 * Batch normalisation's running statistics are tensors of the table too (no weight decay),
 * so checkpoints carry them. They never receive a gradient, so AdamW leaves them unchanged
 * (its update is exactly 0 for a zero gradient and zero moments); only a forward in training
 * mode moves them.
 *
 * The input for embedding is the centre crop, mapped to RGB: aclip_augment_batch with a
 * configuration from aclip_augment_config_init_none (crop, downsample) and params NULL.
 *
 * BN modes. Training (pretraining) normalises with the batch's statistics and updates the
 * running ones; evaluation (embedding, validation) uses the running statistics and is a fixed
 * function of one image. A later stage that fine-tunes the encoder on other batches (the
 * alignment) should run it in evaluation mode — frozen statistics, trainable affine weights —
 * so that what it trains is what embedding computes; the backward supports both modes.
 */
#pragma once

#include <glib.h>

#include "aclip-checkpoint.h"
#include "aclip-parallel.h"
#include "aclip-params.h"

G_BEGIN_DECLS

#define ACLIP_IMAGE_ENCODER_MAX_STAGES 6

typedef struct
{
  int crop;          /* N: the centre crop's side in native 0.262″ pixels */
  int downsample;    /* d: the crop is averaged in d×d blocks; the input side is S = N/d */
  int stem_channels; /* C0 */
  int stem_stride;   /* 1 or 2 */
  int n_stages;      /* 1 … ACLIP_IMAGE_ENCODER_MAX_STAGES */
  int stage_channels[ACLIP_IMAGE_ENCODER_MAX_STAGES];
  int stage_blocks[ACLIP_IMAGE_ENCODER_MAX_STAGES]; /* ≥ 1 each */
  float bn_eps;                                     /* 1e-5 */
  float bn_momentum; /* 0.1 (PyTorch's convention: running ← 0.9·running + 0.1·batch) */
} AclipImageEncoderConfig;

/* The default for this project's machines (docs/trainer.md gives the reasons): a 64-pixel
 * centre crop at full resolution (16.8″), a stem of 32 channels with stride 2, three stages of
 * 64, 128 and 256 channels with one block each → a 4×4 map of 256-channel tokens; 1.21M
 * parameters, 45M multiply–adds per image. */
void aclip_image_encoder_config_init_default (AclipImageEncoderConfig *config);
gboolean aclip_image_encoder_config_validate (const AclipImageEncoderConfig *config,
                                              GError **error);
int aclip_image_encoder_config_input_size (const AclipImageEncoderConfig *config); /* S */
int aclip_image_encoder_config_map_size (const AclipImageEncoderConfig *config);   /* h = w */
int aclip_image_encoder_config_n_tokens (const AclipImageEncoderConfig *config);   /* T */
int aclip_image_encoder_config_channels (const AclipImageEncoderConfig *config);   /* C */
/* Multiply–adds of one image's forward pass (the convolutions). */
double aclip_image_encoder_config_flops (const AclipImageEncoderConfig *config);

/* Writes the configuration into the [image_encoder] group of a checkpoint's text. */
void aclip_image_encoder_config_save (const AclipImageEncoderConfig *config, GKeyFile *key_file);
/* Reads [image_encoder]; keys that are absent keep the default; FALSE + error when the group
 * is missing or a value is invalid. */
gboolean aclip_image_encoder_config_load (AclipImageEncoderConfig *config, GKeyFile *key_file,
                                          GError **error);

/* Registers every tensor of the encoder under `prefix` (e.g. "image.") in an unsealed table. */
gboolean aclip_image_encoder_register (const AclipImageEncoderConfig *config, AclipParams *params,
                                       const char *prefix, GError **error);

/* Copies the values of every tensor of `params` whose name starts with `prefix` from the
 * checkpoint (same name, same shape; the file's other tensors, such as a pretraining head,
 * are ignored), to start a later stage (alignment, embedding) from a pretrained encoder. The
 * table's gradients and AdamW state are left alone. Nothing is copied on error (MISSING: a
 * tensor the file lacks; SHAPE: another shape). */
gboolean aclip_image_encoder_restore (AclipParams *params, const char *prefix,
                                      const AclipCheckpoint *checkpoint, GError **error);

typedef struct _AclipImageEncoder AclipImageEncoder;

/* An encoder bound to a sealed table in which aclip_image_encoder_register put its tensors,
 * with its activations for batches of up to max_batch images in one arena. The table must
 * outlive the encoder. A table sealed for inference allows forwards only. */
AclipImageEncoder *aclip_image_encoder_new (const AclipImageEncoderConfig *config,
                                            AclipParams *params, const char *prefix, int max_batch,
                                            GError **error);
void aclip_image_encoder_free (AclipImageEncoder *encoder);

const AclipImageEncoderConfig *aclip_image_encoder_get_config (const AclipImageEncoder *encoder);
int aclip_image_encoder_max_batch (const AclipImageEncoder *encoder);
/* Bytes of the activation arena. */
gsize aclip_image_encoder_activation_bytes (const AclipImageEncoder *encoder);

/* Forward pass; training selects BN's mode (see the top of this file) and, when TRUE, updates
 * the running statistics.
 *   input:   [B, 3, S, S], B ≤ max_batch
 *   returns: tokens [B, T, C], in the encoder's arena (valid until the next forward)
 */
const float *aclip_image_encoder_forward (AclipImageEncoder *encoder, AclipThreadPool *pool,
                                          const float *input, int batch, gboolean training);
/* The last forward's feature map [B, C, h, w] (the same values as the tokens). */
const float *aclip_image_encoder_feature_map (AclipImageEncoder *encoder);

/* Backward of the last forward (same batch and mode): accumulates (+=) into the table's
 * gradients (the table must be sealed for training) and, when not NULL, into d_input.
 *   d_tokens: [B, T, C]
 *   d_input:  [B, 3, S, S] (+=), or NULL
 */
void aclip_image_encoder_backward (AclipImageEncoder *encoder, AclipThreadPool *pool,
                                   const float *d_tokens, float *d_input);
/* The same through stages first_stage … n_stages − 1 only (0-based, 0 ≤ first_stage ≤
 * n_stages): the earlier stages' and the stem's gradients are left as they are and not
 * computed, and d_input is untouched unless first_stage is 0 (fine-tuning the last stage). */
void aclip_image_encoder_backward_from (AclipImageEncoder *encoder, AclipThreadPool *pool,
                                        const float *d_tokens, int first_stage, float *d_input);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipImageEncoder, aclip_image_encoder_free)

G_END_DECLS
