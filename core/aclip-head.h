/* aclip-head.h — the alignment head: from an encoder's tokens to a point of the shared,
 * L2-normalised AstroCLIP space (DESIGN §3, "Alignment").
 *
 *   tokens  [B, T, C]   an encoder's output (spectrum tokens, or an image's feature map as
 *                       tokens), with an optional key mask [B, T] (nonzero = ignore)
 *   q       [1, C]      the learned query through the query projection
 *   kv      [B, T, 2C]  the tokens through the key and value projections
 *   attn    [B, 1, C]   multi-head cross-attention of q over kv (aclip_cross_attention_*)
 *   pooled  [B, C]      output projection
 *   ln      [B, C]      LayerNorm
 *   hidden  [B, M]      GELU (Linear (ln)), M = mlp_ratio·C
 *   z       [B, D]      Linear (hidden)
 *   out     [B, D]      z / ‖z‖
 *
 * Tensors, under a prefix ("spectrum_head." or "image_head." by convention), PyTorch-style:
 * query [1, C]; attn.in_proj_weight [3C, C] (rows q | k | v), attn.in_proj_bias [3C],
 * attn.out_proj.weight [C, C], attn.out_proj.bias [C] (as nn.MultiheadAttention);
 * norm.weight, norm.bias [C]; mlp.0.weight [M, C], mlp.0.bias [M], mlp.2.weight [D, M],
 * mlp.2.bias [D]. The head object holds no parameters: it is bound to a sealed table and owns
 * its activations, in one AclipArena sized for a maximum batch.
 */
#pragma once

#include "aclip-parallel.h"
#include "aclip-params.h"

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_HEAD_GROUP "heads"

typedef struct
{
  int dim;             /* D, the shared embedding's dimension: 128 (v1) */
  int n_heads;         /* attention heads of the pooling; must divide both encoders' widths */
  int mlp_ratio;       /* M = mlp_ratio·C: 4 ("MLP ×4") */
  float layernorm_eps; /* 1e-5 */
} AclipHeadConfig;

/* D 128, 4 heads, MLP ×4, eps 1e-5. */
void aclip_head_config_init_default (AclipHeadConfig *config);
/* Checks every field; with channels > 0 also that n_heads divides it. */
gboolean aclip_head_config_validate (const AclipHeadConfig *config, int channels, GError **error);
/* Writes the [heads] group of a checkpoint's text. */
void aclip_head_config_save (const AclipHeadConfig *config, GKeyFile *key_file);
/* Reads [heads] over `config` (absent keys keep its values); FALSE + error when the group is
 * missing or a value is invalid. */
gboolean aclip_head_config_load (AclipHeadConfig *config, GKeyFile *key_file, GError **error);

/* Registers the head's tensors under `prefix` in an unsealed table, for tokens `channels`
 * wide. Initialisation as PyTorch: query N(0, 0.02²), in_proj Xavier-uniform, projection
 * biases 0, out_proj and the MLP's layers nn.Linear's default, LayerNorm 1 and 0. Weight
 * decay on the matrices only. */
gboolean aclip_head_register (const AclipHeadConfig *config, int channels, AclipParams *params,
                              const char *prefix, GError **error);

typedef struct _AclipHead AclipHead;

/* Binds a head to `params` (sealed, holding the tensors registered under `prefix`) with
 * activations for batches of up to max_batch sequences of n_tokens tokens. for_training keeps
 * what the backward needs (the table must then be sealed for training). */
AclipHead *aclip_head_new (const AclipHeadConfig *config, int channels, int n_tokens,
                           AclipParams *params, const char *prefix, int max_batch,
                           gboolean for_training, GError **error);
void aclip_head_free (AclipHead *head);

int aclip_head_dim (const AclipHead *head);

/* Embeds B ≤ max_batch token sequences.
 *   tokens:   [B, T, C]; key_mask: [B, T] or NULL. Both are borrowed until the backward.
 *   returns:  [B, D], L2-normalised, in the head's arena (valid until the next forward)
 * A sequence whose tokens are all masked pools to zero; its embedding is then a function of
 * the biases alone. */
const float *aclip_head_forward (AclipHead *head, AclipThreadPool *pool, const float *tokens,
                                 const guint8 *key_mask, int batch);

/* Backpropagates d_out [B, D] through the last forward: ACCUMULATES (+=) into the table's
 * gradients of the head and, when not NULL, into d_tokens [B, T, C] (an encoder's token
 * gradient). Training heads only. */
void aclip_head_backward (AclipHead *head, AclipThreadPool *pool, const float *d_out,
                          float *d_tokens);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipHead, aclip_head_free)

G_END_DECLS
