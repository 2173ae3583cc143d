/* aclip-transformer.c — the pre-LayerNorm transformer block (aclip-transformer.h). */
#include "aclip-transformer.h"

#include <string.h>

/* ---- Parameters ---------------------------------------------------------------------------- */

gsize
aclip_transformer_params_size (const AclipTransformerConfig *config)
{
  gsize c = (gsize) config->channels;
  gsize m = (gsize) config->hidden;
  return 3 * c * c + 3 * c /* attention input projection */
         + c * c + c       /* attention output projection */
         + m * c + m       /* linear1 */
         + c * m + c       /* linear2 */
         + 4 * c;          /* the two LayerNorms */
}

void
aclip_transformer_params_bind (AclipTransformerParams *params, const AclipTransformerConfig *config,
                               float *memory)
{
  gsize c = (gsize) config->channels;
  gsize m = (gsize) config->hidden;
  float *cursor = memory;
#define TAKE(field, count)                                                                         \
  do {                                                                                             \
    params->field = cursor;                                                                        \
    cursor += (count);                                                                             \
  } while (0)
  TAKE (attn_in_weight, 3 * c * c);
  TAKE (attn_in_bias, 3 * c);
  TAKE (attn_out_weight, c * c);
  TAKE (attn_out_bias, c);
  TAKE (mlp_in_weight, m * c);
  TAKE (mlp_in_bias, m);
  TAKE (mlp_out_weight, c * m);
  TAKE (mlp_out_bias, c);
  TAKE (ln1_weight, c);
  TAKE (ln1_bias, c);
  TAKE (ln2_weight, c);
  TAKE (ln2_bias, c);
#undef TAKE
  g_assert ((gsize) (cursor - memory) == aclip_transformer_params_size (config));
}

/* ---- Activations --------------------------------------------------------------------------- */

gsize
aclip_transformer_activations_size (const AclipTransformerConfig *config, int batch, int seq_len,
                                    gboolean store_probs)
{
  gsize n = (gsize) batch * (gsize) seq_len;
  gsize c = (gsize) config->channels;
  gsize m = (gsize) config->hidden;
  gsize size = n * c        /* ln1_out */
               + 2 * n      /* ln1 mean, rstd */
               + n * 3 * c  /* qkv */
               + n * c      /* attn */
               + n * c      /* mid */
               + n * c      /* ln2_out */
               + 2 * n      /* ln2 mean, rstd */
               + 2 * n * m; /* mlp hidden, act */
  if (store_probs)
    size += (gsize) batch * (gsize) config->n_heads * (gsize) seq_len * (gsize) seq_len;
  return size;
}

void
aclip_transformer_activations_bind (AclipTransformerActivations *activations,
                                    const AclipTransformerConfig *config, int batch, int seq_len,
                                    gboolean store_probs, float *memory)
{
  gsize n = (gsize) batch * (gsize) seq_len;
  gsize c = (gsize) config->channels;
  gsize m = (gsize) config->hidden;
  float *cursor = memory;
#define TAKE(field, count)                                                                         \
  do {                                                                                             \
    activations->field = cursor;                                                                   \
    cursor += (count);                                                                             \
  } while (0)
  TAKE (ln1_out, n * c);
  TAKE (ln1_mean, n);
  TAKE (ln1_rstd, n);
  TAKE (qkv, n * 3 * c);
  TAKE (attn, n * c);
  TAKE (mid, n * c);
  TAKE (ln2_out, n * c);
  TAKE (ln2_mean, n);
  TAKE (ln2_rstd, n);
  TAKE (mlp_hidden, n * m);
  TAKE (mlp_act, n * m);
  if (store_probs)
    TAKE (probs, (gsize) batch * config->n_heads * seq_len * seq_len);
  else
    activations->probs = NULL;
#undef TAKE
  g_assert ((gsize) (cursor - memory) ==
            aclip_transformer_activations_size (config, batch, seq_len, store_probs));
}

/* ---- Workspace ----------------------------------------------------------------------------- */

/* The backward's intermediate gradients, in the workspace (N = B·T):
 *   wide_a [N, max(M, 3C)]  d(mlp_act), later d(qkv)
 *   wide_b [N, M]           d(mlp_hidden)
 *   d_mid  [N, C]
 *   narrow [N, C]           d(ln2_out), later d(attn), later d(ln1_out)
 * followed by the LayerNorm and attention kernels' workspaces. */
typedef struct
{
  float *wide_a;
  float *wide_b;
  float *d_mid;
  float *narrow;
  float *layernorm;
  float *attention;
} BackwardScratch;

static gsize
wide_width (const AclipTransformerConfig *config)
{
  return (gsize) MAX (config->hidden, 3 * config->channels);
}

static gsize
scratch_layout (const AclipTransformerConfig *config, int batch, int seq_len, float *base,
                BackwardScratch *scratch)
{
  gsize n = (gsize) batch * (gsize) seq_len;
  gsize c = (gsize) config->channels;
  gsize offsets[6];
  gsize size = 0;
  offsets[0] = size, size += n * wide_width (config);
  offsets[1] = size, size += n * (gsize) config->hidden;
  offsets[2] = size, size += n * c;
  offsets[3] = size, size += n * c;
  offsets[4] = size, size += aclip_layernorm_backward_workspace_size ((gint64) n, config->channels);
  offsets[5] = size,
  size += aclip_attention_workspace_size (batch, seq_len, seq_len, config->n_heads);
  if (scratch != NULL) {
    scratch->wide_a = base + offsets[0];
    scratch->wide_b = base + offsets[1];
    scratch->d_mid = base + offsets[2];
    scratch->narrow = base + offsets[3];
    scratch->layernorm = base + offsets[4];
    scratch->attention = base + offsets[5];
  }
  return size;
}

gsize
aclip_transformer_workspace_size (const AclipTransformerConfig *config, int batch, int seq_len)
{
  return scratch_layout (config, batch, seq_len, NULL, NULL);
}

/* ---- Forward ------------------------------------------------------------------------------- */

void
aclip_transformer_block_forward (AclipThreadPool *pool, const AclipTransformerConfig *config,
                                 const AclipTransformerParams *params,
                                 AclipTransformerActivations *activations, float *out,
                                 const float *in, const guint8 *key_mask, int batch, int seq_len,
                                 float *workspace)
{
  g_return_if_fail (config != NULL && params != NULL && activations != NULL);
  g_return_if_fail (batch > 0 && seq_len > 0 && workspace != NULL);
  int c = config->channels;
  int m = config->hidden;
  gint64 n = (gint64) batch * seq_len;
  AclipTransformerActivations *a = activations;
  BackwardScratch scratch;
  scratch_layout (config, batch, seq_len, workspace, &scratch);

  /* Attention branch: mid = in + out_proj(attention(in_proj(LN1(in)))) */
  aclip_layernorm_forward (pool, a->ln1_out, a->ln1_mean, a->ln1_rstd, in, params->ln1_weight,
                           params->ln1_bias, n, c, config->layernorm_eps);
  aclip_linear_forward (pool, a->qkv, a->ln1_out, params->attn_in_weight, params->attn_in_bias, n,
                        c, 3 * c);
  aclip_self_attention_forward (pool, a->attn, a->probs, a->qkv, key_mask, batch, seq_len, c,
                                config->n_heads, scratch.attention);
  aclip_linear_residual_forward (pool, a->mid, in, a->attn, params->attn_out_weight,
                                 params->attn_out_bias, n, c, c);

  /* MLP branch: out = mid + linear2(GELU(linear1(LN2(mid)))) */
  aclip_layernorm_forward (pool, a->ln2_out, a->ln2_mean, a->ln2_rstd, a->mid, params->ln2_weight,
                           params->ln2_bias, n, c, config->layernorm_eps);
  aclip_linear_forward (pool, a->mlp_hidden, a->ln2_out, params->mlp_in_weight, params->mlp_in_bias,
                        n, c, m);
  aclip_gelu_forward (pool, a->mlp_act, a->mlp_hidden, (gsize) n * m, config->gelu_form);
  aclip_linear_residual_forward (pool, out, a->mid, a->mlp_act, params->mlp_out_weight,
                                 params->mlp_out_bias, n, m, c);
}

/* ---- Backward ------------------------------------------------------------------------------ */

typedef struct
{
  float *data;
} ZeroJob;

static void
zero_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  ZeroJob *job = data;
  memset (job->data + begin, 0, (gsize) (end - begin) * sizeof (float));
}

/* The intermediate gradients start at zero since the kernels accumulate into them. */
static void
zero_floats (AclipThreadPool *pool, float *data, gsize count)
{
  ZeroJob job = { data };
  aclip_parallel_for (pool, (gint64) count, 1 << 16, zero_worker, &job);
}

#define GRAD(field) (grads != NULL ? grads->field : NULL)

void
aclip_transformer_block_backward (AclipThreadPool *pool, const AclipTransformerConfig *config,
                                  const AclipTransformerParams *params,
                                  const AclipTransformerParams *grads,
                                  const AclipTransformerActivations *activations, float *d_in,
                                  const float *d_out, const float *in, const guint8 *key_mask,
                                  int batch, int seq_len, float *workspace)
{
  g_return_if_fail (config != NULL && params != NULL && activations != NULL);
  g_return_if_fail (batch > 0 && seq_len > 0 && workspace != NULL);
  int c = config->channels;
  int m = config->hidden;
  gint64 n = (gint64) batch * seq_len;
  const AclipTransformerActivations *a = activations;
  BackwardScratch scratch;
  scratch_layout (config, batch, seq_len, workspace, &scratch);

  /* out = mid + linear2(act): d_mid starts as d_out. */
  float *d_mid = scratch.d_mid;
  memcpy (d_mid, d_out, (gsize) n * c * sizeof (float));

  float *d_act = scratch.wide_a;
  zero_floats (pool, d_act, (gsize) n * m);
  aclip_linear_backward (pool, d_act, GRAD (mlp_out_weight), GRAD (mlp_out_bias), d_out, a->mlp_act,
                         params->mlp_out_weight, n, m, c);

  float *d_hidden = scratch.wide_b;
  zero_floats (pool, d_hidden, (gsize) n * m);
  aclip_gelu_backward (pool, d_hidden, d_act, a->mlp_hidden, (gsize) n * m, config->gelu_form);

  float *d_ln2 = scratch.narrow;
  zero_floats (pool, d_ln2, (gsize) n * c);
  aclip_linear_backward (pool, d_ln2, GRAD (mlp_in_weight), GRAD (mlp_in_bias), d_hidden,
                         a->ln2_out, params->mlp_in_weight, n, c, m);
  aclip_layernorm_backward (pool, d_mid, GRAD (ln2_weight), GRAD (ln2_bias), d_ln2, a->mid,
                            a->ln2_mean, a->ln2_rstd, params->ln2_weight, n, c, scratch.layernorm);

  /* mid = in + out_proj(attn): d_in gets d_mid at the end. */
  float *d_attn = scratch.narrow;
  zero_floats (pool, d_attn, (gsize) n * c);
  aclip_linear_backward (pool, d_attn, GRAD (attn_out_weight), GRAD (attn_out_bias), d_mid, a->attn,
                         params->attn_out_weight, n, c, c);

  float *d_qkv = scratch.wide_a;
  zero_floats (pool, d_qkv, (gsize) n * 3 * c);
  aclip_self_attention_backward (pool, d_qkv, d_attn, a->probs, a->qkv, key_mask, batch, seq_len, c,
                                 config->n_heads, scratch.attention);

  float *d_ln1 = scratch.narrow;
  zero_floats (pool, d_ln1, (gsize) n * c);
  aclip_linear_backward (pool, d_ln1, GRAD (attn_in_weight), GRAD (attn_in_bias), d_qkv, a->ln1_out,
                         params->attn_in_weight, n, c, 3 * c);
  aclip_layernorm_backward (pool, d_in, GRAD (ln1_weight), GRAD (ln1_bias), d_ln1, in, a->ln1_mean,
                            a->ln1_rstd, params->ln1_weight, n, c, scratch.layernorm);
  if (d_in != NULL)
    aclip_add_backward (pool, d_in, NULL, d_mid, (gsize) n * c);
}

#undef GRAD
