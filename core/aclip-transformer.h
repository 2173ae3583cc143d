/* aclip-transformer.h — one pre-LayerNorm transformer block composed from the kernels of
 * aclip-nn.h:
 *
 *   mid = in  + out_proj(attention(in_proj(LN1(in))))
 *   out = mid + linear2(GELU(linear1(LN2(mid))))
 *
 * the math of torch.nn.TransformerEncoderLayer(norm_first=True, activation='gelu',
 * batch_first=True, dropout=0). Non-causal, with an optional key mask (aclip-nn.h describes
 * its meaning). No dropout inside the block.
 *
 * The block owns nothing: the caller passes pointers to its parameters, their gradients, the
 * activations saved for the backward and a workspace, each sized by the functions below.
 */
#pragma once

#include <glib.h>

#include "aclip-nn.h"
#include "aclip-parallel.h"

G_BEGIN_DECLS

typedef struct
{
  int channels;        /* C */
  int n_heads;         /* H, dividing C */
  int hidden;          /* M, the MLP width (4C in the paper) */
  float layernorm_eps; /* 1e-5 in nn.LayerNorm */
  AclipGeluForm gelu_form;
} AclipTransformerConfig;

/* A block's parameters, or their gradients. The order is that of the state_dict of
 * nn.TransformerEncoderLayer, which aclip_transformer_params_bind follows in flat memory. */
typedef struct
{
  float *attn_in_weight;  /* [3C, C]  self_attn.in_proj_weight, rows q | k | v */
  float *attn_in_bias;    /* [3C]     self_attn.in_proj_bias */
  float *attn_out_weight; /* [C, C]   self_attn.out_proj.weight */
  float *attn_out_bias;   /* [C]      self_attn.out_proj.bias */
  float *mlp_in_weight;   /* [M, C]   linear1.weight */
  float *mlp_in_bias;     /* [M]      linear1.bias */
  float *mlp_out_weight;  /* [C, M]   linear2.weight */
  float *mlp_out_bias;    /* [C]      linear2.bias */
  float *ln1_weight;      /* [C]      norm1.weight */
  float *ln1_bias;        /* [C]      norm1.bias */
  float *ln2_weight;      /* [C]      norm2.weight */
  float *ln2_bias;        /* [C]      norm2.bias */
} AclipTransformerParams;

/* Floats of one block's parameters; bind points `params` into `memory` [that many floats]. */
gsize aclip_transformer_params_size (const AclipTransformerConfig *config);
void aclip_transformer_params_bind (AclipTransformerParams *params,
                                    const AclipTransformerConfig *config, float *memory);

/* What the forward keeps for the backward. N = B·T tokens. */
typedef struct
{
  float *ln1_out;    /* [N, C] */
  float *ln1_mean;   /* [N] */
  float *ln1_rstd;   /* [N] */
  float *qkv;        /* [N, 3C] */
  float *probs;      /* [B, H, T, T], or NULL: recomputed by the backward */
  float *attn;       /* [N, C] the heads' outputs, concatenated */
  float *mid;        /* [N, C] */
  float *ln2_out;    /* [N, C] */
  float *ln2_mean;   /* [N] */
  float *ln2_rstd;   /* [N] */
  float *mlp_hidden; /* [N, M] before GELU */
  float *mlp_act;    /* [N, M] after GELU */
} AclipTransformerActivations;

/* Floats of one block's activations for a batch of B sequences of T tokens, with or without
 * the attention probabilities (4·B·H·T² bytes: 164 MB at B = 32, H = 8, T = 400). For
 * inference, one set of activations without probabilities can serve every block in turn. */
gsize aclip_transformer_activations_size (const AclipTransformerConfig *config, int batch,
                                          int seq_len, gboolean store_probs);
void aclip_transformer_activations_bind (AclipTransformerActivations *activations,
                                         const AclipTransformerConfig *config, int batch,
                                         int seq_len, gboolean store_probs, float *memory);

/* Floats of scratch for forward and backward (the backward's intermediate gradients, about
 * 2·N·max(M, 3C) + 2·N·C floats, and the kernels' workspaces). */
gsize aclip_transformer_workspace_size (const AclipTransformerConfig *config, int batch,
                                        int seq_len);

/*   activations: written, for the backward (bind them once per batch shape)
 *   out:         [B, T, C] (written)
 *   in:          [B, T, C]
 *   key_mask:    [B, T], or NULL
 *   workspace:   [aclip_transformer_workspace_size ()]
 */
void aclip_transformer_block_forward (AclipThreadPool *pool, const AclipTransformerConfig *config,
                                      const AclipTransformerParams *params,
                                      AclipTransformerActivations *activations, float *out,
                                      const float *in, const guint8 *key_mask, int batch,
                                      int seq_len, float *workspace);

/*   grads:       every non-NULL pointer accumulated (+=); grads itself may be NULL
 *   activations: from the forward
 *   d_in:        [B, T, C] (+=), or NULL
 *   d_out:       [B, T, C]
 *   in:          [B, T, C], the forward's input;  key_mask: as in the forward
 *   workspace:   [aclip_transformer_workspace_size ()]
 */
void aclip_transformer_block_backward (AclipThreadPool *pool, const AclipTransformerConfig *config,
                                       const AclipTransformerParams *params,
                                       const AclipTransformerParams *grads,
                                       const AclipTransformerActivations *activations, float *d_in,
                                       const float *d_out, const float *in, const guint8 *key_mask,
                                       int batch, int seq_len, float *workspace);

G_END_DECLS
