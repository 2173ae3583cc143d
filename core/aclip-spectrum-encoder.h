/* aclip-spectrum-encoder.h — the spectrum encoder: a transformer over windows of a spectrum
 * that knows which pixels to trust.
 *
 * The paper's design (DESIGN §3), plus the inverse variance:
 *
 *   1. Standardise. mean and std over the good pixels (ivar > 0, flux and ivar finite), the
 *      population std clipped below at std_min (0.2): x = (flux − mean) / std; bad pixels 0.
 *      A spectrum with no good pixel gets mean 0, std = std_min and only masked windows.
 *   2. Weight channel. Each pixel gets w = s / (1 + s), s = ivar·std², its precision in
 *      standardised units: w → 1 for a pixel measured far better than the spectrum varies,
 *      ½ when its noise equals the spectrum's own spread, 0 for a bad pixel.
 *   3. Windows. Window j covers pixels [j·stride, j·stride + window); there are
 *      n_windows = (n_wave − window) / stride + 1 of them (trailing pixels that do not fill a
 *      window are dropped). Window j's input is its standardised flux followed by its weights,
 *      2·window features, embedded by one linear layer (embed, [C, 2·window]). A window with no
 *      good pixel is masked: its key is ignored by every attention layer (key_mask = 1).
 *   4. Statistics token. Token 0 embeds (asinh (mean), ln std) with a linear layer of its own
 *      (stats_embed, [C, 2]); it is never masked. Tokens 1..n_windows are the windows, so
 *      T = n_windows + 1.
 *   5. A learned positional embedding [T, C] is added; for masked-reconstruction pretraining a
 *      token's embedding can be replaced by a learned mask embedding [C] before that.
 *   6. n_layers pre-LayerNorm transformer blocks (aclip-transformer.h, GELU, non-causal, key
 *      mask from step 3), then a final LayerNorm: the encoder's output tokens [B, T, C].
 *
 * Parameters are registered in an AclipParams table under a name prefix (e.g. "spectrum."),
 * so one table and one checkpoint can hold both encoders and the heads. Names follow PyTorch
 * (blocks.i.self_attn.in_proj_weight, blocks.i.linear1.weight, ... as in
 * nn.TransformerEncoderLayer). The encoder object holds no parameters: it is bound to a sealed
 * table and owns the activations, in one AclipArena sized for a maximum batch.
 */
#pragma once

#include "aclip-checkpoint.h"
#include "aclip-parallel.h"
#include "aclip-params.h"

#include <glib.h>

G_BEGIN_DECLS

/* Configuration ----------------------------------------------------------------------------- */

typedef struct
{
  int n_wave;          /* pixels per input spectrum (7781 on the DESI grid) */
  int window;          /* pixels per token */
  int stride;          /* pixels between the starts of consecutive windows */
  int width;           /* C, the token width */
  int n_layers;        /* transformer blocks */
  int n_heads;         /* attention heads, dividing C */
  int mlp_hidden;      /* M, the MLP's hidden width */
  float std_min;       /* lower clip of the standardising std (0.2) */
  float layernorm_eps; /* 1e-5 */
} AclipSpectrumEncoderConfig;

/* This machine's default: window 40, stride 20 (388 windows + 1 = 389 tokens on the DESI
 * grid), width 128, 4 layers, 4 heads, MLP 512. */
void aclip_spectrum_encoder_config_init_default (AclipSpectrumEncoderConfig *config);
/* The paper's size: window 20, stride 10 (777 + 1 tokens), width 768, 6 layers, 6 heads,
 * MLP 3072. */
void aclip_spectrum_encoder_config_init_paper (AclipSpectrumEncoderConfig *config);
/* Checks every field (positive sizes, window ≤ n_wave, heads dividing the width, ...). */
gboolean aclip_spectrum_encoder_config_validate (const AclipSpectrumEncoderConfig *config,
                                                 GError **error);
gboolean aclip_spectrum_encoder_config_equal (const AclipSpectrumEncoderConfig *a,
                                              const AclipSpectrumEncoderConfig *b);
int aclip_spectrum_encoder_config_n_windows (const AclipSpectrumEncoderConfig *config);
int aclip_spectrum_encoder_config_n_tokens (const AclipSpectrumEncoderConfig *config);

#define ACLIP_SPECTRUM_ENCODER_GROUP "spectrum_encoder"

/* Writes every field to the [spectrum_encoder] group (a checkpoint's text section). */
void aclip_spectrum_encoder_config_save (const AclipSpectrumEncoderConfig *config,
                                         GKeyFile *key_file);
/* Reads the [spectrum_encoder] group; every field must be present, then it is validated. */
gboolean aclip_spectrum_encoder_config_load (AclipSpectrumEncoderConfig *config, GKeyFile *key_file,
                                             GError **error);

/* Parameters -------------------------------------------------------------------------------- */

/* Registers the encoder's tensors in `params` (not yet sealed), each name prefixed with
 * `prefix` ("" for none): embed.weight [C, 2·window], embed.bias [C], stats_embed.weight
 * [C, 2], stats_embed.bias [C], pos_embed [T, C], mask_embed [C], for each block i
 * blocks.i.{self_attn.in_proj_weight, self_attn.in_proj_bias, self_attn.out_proj.weight,
 * self_attn.out_proj.bias, linear1.weight, linear1.bias, linear2.weight, linear2.bias,
 * norm1.weight, norm1.bias, norm2.weight, norm2.bias}, final_norm.weight, final_norm.bias.
 * Initialisation: weights N(0, 0.02²), the residual branches' output projections
 * (out_proj, linear2) N(0, (0.02/√(2·n_layers))²), embeddings N(0, 0.02²), biases 0,
 * LayerNorms 1 and 0. Weight decay applies to the matrices only. */
gboolean aclip_spectrum_encoder_register (const AclipSpectrumEncoderConfig *config,
                                          AclipParams *params, const char *prefix, GError **error);

/* Copies the values of every tensor of `params` whose name starts with `prefix` from the
 * checkpoint (same name, same shape; the file's other tensors are ignored), to start a later
 * stage (alignment) from a pretrained encoder. The table's gradients and AdamW state are left
 * alone. Nothing is copied on error (MISSING: a tensor the file lacks; SHAPE: another shape). */
gboolean aclip_spectrum_encoder_restore (AclipParams *params, const char *prefix,
                                         const AclipCheckpoint *checkpoint, GError **error);

/* Preprocessing ----------------------------------------------------------------------------- */

/* Steps 1–4 for one spectrum (the encoder calls it for each row of a batch).
 *   features: [n_windows, 2·window] (written): per window its standardised flux, then weights
 *   stats:    [2] (written): the mean and the clipped std, in the flux's units
 *   key_mask: [n_windows + 1] (written): 0 for the statistics token, 1 for a window with no
 *             good pixel, 0 otherwise
 *   flux, ivar: [n_wave]
 */
void aclip_spectrum_preprocess (const AclipSpectrumEncoderConfig *config, float *features,
                                float *stats, guint8 *key_mask, const float *flux,
                                const float *ivar);

/* The encoder ------------------------------------------------------------------------------- */

typedef struct _AclipSpectrumEncoder AclipSpectrumEncoder;

/* Binds an encoder to `params` (sealed, holding the tensors registered under `prefix` with
 * this configuration) and allocates activations for batches of up to max_batch spectra.
 * for_training: keep every layer's activations for the backward and the gradient buffers
 * (the table must be sealed for training); the attention probabilities are kept when all
 * layers' together take at most 1 GiB, otherwise the backward recomputes them. Without
 * for_training only the forward runs, in much less memory. */
AclipSpectrumEncoder *aclip_spectrum_encoder_new (const AclipSpectrumEncoderConfig *config,
                                                  AclipParams *params, const char *prefix,
                                                  int max_batch, gboolean for_training,
                                                  GError **error);
void aclip_spectrum_encoder_free (AclipSpectrumEncoder *encoder);

const AclipSpectrumEncoderConfig *
aclip_spectrum_encoder_get_config (const AclipSpectrumEncoder *encoder);
int aclip_spectrum_encoder_n_tokens (const AclipSpectrumEncoder *encoder);
int aclip_spectrum_encoder_max_batch (const AclipSpectrumEncoder *encoder);
/* Bytes of the activation arena. */
gsize aclip_spectrum_encoder_activation_bytes (const AclipSpectrumEncoder *encoder);

/* Encodes B ≤ max_batch spectra.
 *   flux, ivar: [B, n_wave]
 *   replace:    [B, T] or NULL: a nonzero entry replaces that token's embedding by the mask
 *               embedding (masked-reconstruction pretraining); entries for token 0 are ignored
 * Results, valid until the next forward: aclip_spectrum_encoder_tokens and _key_mask; in
 * training mode d_tokens is zeroed, for the heads to accumulate into. */
void aclip_spectrum_encoder_forward (AclipSpectrumEncoder *encoder, AclipThreadPool *pool,
                                     const float *flux, const float *ivar, const guint8 *replace,
                                     int batch);

/* [B, T, C]: the final LayerNorm's output, of the last forward. */
const float *aclip_spectrum_encoder_tokens (const AclipSpectrumEncoder *encoder);
/* [B, T]: nonzero = ignore this token (a window without a good pixel). */
const guint8 *aclip_spectrum_encoder_key_mask (const AclipSpectrumEncoder *encoder);
/* [B, n_windows, 2·window]: the window features of the last forward (standardised flux, then
 * weights: the targets and weights of masked reconstruction). */
const float *aclip_spectrum_encoder_features (const AclipSpectrumEncoder *encoder);
/* [B, 2]: each spectrum's mean and clipped std. */
const float *aclip_spectrum_encoder_stats (const AclipSpectrumEncoder *encoder);

/* [B, T, C], training only: the loss gradient with respect to the output tokens. Zeroed by
 * each forward; heads accumulate (+=) into it before the backward. */
float *aclip_spectrum_encoder_d_tokens (AclipSpectrumEncoder *encoder);

/* Backpropagates d_tokens through the last forward, ACCUMULATING into the table's gradients
 * (the caller zeroes them before a step). Training mode only. Bad pixels get no gradient path:
 * their features are constant. */
void aclip_spectrum_encoder_backward (AclipSpectrumEncoder *encoder, AclipThreadPool *pool);
/* The same through the final LayerNorm and blocks first_layer … n_layers − 1 only
 * (0 ≤ first_layer ≤ n_layers): the gradients of the earlier blocks, the embeddings and the
 * positions are left as they are, and their backward is not computed at all (fine-tuning the
 * last layers). first_layer 0 is aclip_spectrum_encoder_backward. */
void aclip_spectrum_encoder_backward_from (AclipSpectrumEncoder *encoder, AclipThreadPool *pool,
                                           int first_layer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipSpectrumEncoder, aclip_spectrum_encoder_free)

G_END_DECLS
