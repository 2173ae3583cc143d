/* aclip-nn-attention.c — multi-head self-attention and cross-attention pooling (aclip-nn.h).
 *
 * One engine serves both: queries, keys and values are strided views (a batch stride and a row
 * stride) into the caller's projections, so the heads are read in place with sgemm's leading
 * dimensions and nothing is transposed or copied. The sequences are processed in groups whose
 * scores fill about ATTENTION_GROUP_FLOATS; per group:
 *
 *   forward:  per (b, h) sgemm  scores = scale · q_h k_hᵀ                      [Tq, Tk]
 *             one parallel loop of masked row softmaxes over the group's H·Tq rows per sequence
 *             per (b, h) sgemm  out_h = probs · v_h                             [Tq, D]
 *   backward: per (b, h) sgemm  d_probs = d_out_h v_hᵀ;  d_v_h += probsᵀ d_out_h
 *             one parallel loop  d_scores = scale · probs ⊙ (d_probs − Σ probs·d_probs)
 *             per (b, h) sgemm  d_q_h += d_scores k_h;  d_k_h += d_scoresᵀ q_h
 *
 * The sgemm calls run from the calling thread on OpenBLAS's threads, the row loops on the
 * pool, never both at once. The backward accumulates through sgemm's beta = 1. Cross-attention
 * gives its queries a batch stride of 0, so the batch's query gradients add up in batch order.
 */
#include "aclip-nn.h"
#include "aclip-nn-private.h"

#include <cblas.h>
#include <math.h>

/* Scores per group of sequences: 2M floats (8 MB) keeps a group's scores near the cache while
 * giving the row loops enough work to share among threads. */
#define ATTENTION_GROUP_FLOATS (1 << 21)

typedef struct
{
  int batch;
  int n_queries; /* Tq */
  int n_keys;    /* Tk */
  int n_heads;   /* H */
  int head_dim;  /* D = C / H */
  int channels;  /* C */
  /* Element (b, i, h·D + e) of q is q[b·q_batch_stride + i·q_row_stride + h·D + e]; the same
   * for k and v (with j < Tk). out and d_out are [B, Tq, C]. */
  const float *q;
  gint64 q_batch_stride;
  int q_row_stride;
  const float *k;
  gint64 k_batch_stride;
  int k_row_stride;
  const float *v;
  gint64 v_batch_stride;
  int v_row_stride;
  const guint8 *key_mask; /* [B, Tk] or NULL */
  float scale;            /* 1/√D */
} AttentionShape;

static gint64
scores_per_sequence (int n_queries, int n_keys, int n_heads)
{
  return (gint64) n_heads * n_queries * n_keys;
}

static int
group_size (int batch, int n_queries, int n_keys, int n_heads)
{
  gint64 per_sequence = scores_per_sequence (n_queries, n_keys, n_heads);
  gint64 group = MAX (1, ATTENTION_GROUP_FLOATS / MAX (per_sequence, 1));
  return (int) MIN (group, MAX (batch, 1));
}

gsize
aclip_attention_workspace_size (int batch, int n_queries, int n_keys, int n_heads)
{
  /* Scores (or recomputed probabilities) and their gradients for one group. */
  return 2 * (gsize) group_size (batch, n_queries, n_keys, n_heads) *
         (gsize) scores_per_sequence (n_queries, n_keys, n_heads);
}

/* ---- Row loops ----------------------------------------------------------------------------- */

typedef struct
{
  const AttentionShape *shape;
  const AclipNnVectorKernels *vector;
  int first_sequence;
  float *rows; /* [group, H, Tq, Tk]: scores in, probabilities out; or d_probs → d_scores */
  const float *probs; /* backward: [group, H, Tq, Tk] */
} AttentionRowJob;

static void
softmax_rows_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const AttentionRowJob *job = data;
  const AttentionShape *shape = job->shape;
  gint64 rows_per_sequence = (gint64) shape->n_heads * shape->n_queries;
  for (gint64 row = begin; row < end; row++) {
    const guint8 *key_mask = NULL;
    if (shape->key_mask != NULL)
      key_mask = shape->key_mask +
                 (gint64) (job->first_sequence + row / rows_per_sequence) * shape->n_keys;
    float *scores = job->rows + row * shape->n_keys;
    job->vector->softmax_row (scores, scores, key_mask, shape->n_keys);
  }
}

static void
softmax_backward_rows_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const AttentionRowJob *job = data;
  int length = job->shape->n_keys;
  for (gint64 row = begin; row < end; row++)
    job->vector->softmax_backward_row (job->rows + row * length, job->rows + row * length,
                                       job->probs + row * length, job->shape->scale, length);
}

static gint64
row_grain (int length)
{
  return MAX (1, 16384 / MAX (length, 1));
}

/* ---- The engine ---------------------------------------------------------------------------- */

static const float *
head_of (const float *base, gint64 batch_stride, int b, int h, int head_dim)
{
  return base + (gint64) b * batch_stride + (gint64) h * head_dim;
}

static float *
mutable_head_of (float *base, gint64 batch_stride, int b, int h, int head_dim)
{
  return base + (gint64) b * batch_stride + (gint64) h * head_dim;
}

/* probs_group [n, H, Tq, Tk] = softmax(scale · q kᵀ) for sequences first .. first + n − 1. */
static void
compute_probabilities (AclipThreadPool *pool, const AttentionShape *shape, int first, int n,
                       float *probs_group)
{
  gint64 head_block = (gint64) shape->n_queries * shape->n_keys;
  for (int b = first; b < first + n; b++)
    for (int h = 0; h < shape->n_heads; h++)
      cblas_sgemm (
          CblasRowMajor, CblasNoTrans, CblasTrans, shape->n_queries, shape->n_keys, shape->head_dim,
          shape->scale, head_of (shape->q, shape->q_batch_stride, b, h, shape->head_dim),
          shape->q_row_stride, head_of (shape->k, shape->k_batch_stride, b, h, shape->head_dim),
          shape->k_row_stride, 0.0f,
          probs_group + ((gint64) (b - first) * shape->n_heads + h) * head_block, shape->n_keys);
  AttentionRowJob job = { shape, aclip_nn_vector_kernels (), first, probs_group, NULL };
  aclip_parallel_for (pool, (gint64) n * shape->n_heads * shape->n_queries,
                      row_grain (shape->n_keys), softmax_rows_worker, &job);
}

static void
attention_forward (AclipThreadPool *pool, const AttentionShape *shape, float *out, float *probs,
                   float *workspace)
{
  int group = group_size (shape->batch, shape->n_queries, shape->n_keys, shape->n_heads);
  gint64 per_sequence = scores_per_sequence (shape->n_queries, shape->n_keys, shape->n_heads);
  gint64 head_block = (gint64) shape->n_queries * shape->n_keys;
  gint64 out_batch_stride = (gint64) shape->n_queries * shape->channels;
  for (int first = 0; first < shape->batch; first += group) {
    int n = MIN (group, shape->batch - first);
    float *probs_group = probs != NULL ? probs + (gint64) first * per_sequence : workspace;
    compute_probabilities (pool, shape, first, n, probs_group);
    for (int b = first; b < first + n; b++)
      for (int h = 0; h < shape->n_heads; h++)
        cblas_sgemm (
            CblasRowMajor, CblasNoTrans, CblasNoTrans, shape->n_queries, shape->head_dim,
            shape->n_keys, 1.0f,
            probs_group + ((gint64) (b - first) * shape->n_heads + h) * head_block, shape->n_keys,
            head_of (shape->v, shape->v_batch_stride, b, h, shape->head_dim), shape->v_row_stride,
            0.0f, mutable_head_of (out, out_batch_stride, b, h, shape->head_dim), shape->channels);
  }
}

typedef struct
{
  float *q;
  float *k;
  float *v;
} AttentionGradients; /* strided like the shape's q, k, v; each may be NULL */

static void
attention_backward (AclipThreadPool *pool, const AttentionShape *shape,
                    const AttentionGradients *grads, const float *d_out, const float *probs,
                    float *workspace)
{
  int group = group_size (shape->batch, shape->n_queries, shape->n_keys, shape->n_heads);
  gint64 per_sequence = scores_per_sequence (shape->n_queries, shape->n_keys, shape->n_heads);
  gint64 head_block = (gint64) shape->n_queries * shape->n_keys;
  gint64 out_batch_stride = (gint64) shape->n_queries * shape->channels;
  int head_dim = shape->head_dim;
  float *d_scores_group = workspace;
  float *recomputed = workspace + (gsize) group * per_sequence;
  for (int first = 0; first < shape->batch; first += group) {
    int n = MIN (group, shape->batch - first);
    const float *probs_group;
    if (probs != NULL) {
      probs_group = probs + (gint64) first * per_sequence;
    } else {
      compute_probabilities (pool, shape, first, n, recomputed);
      probs_group = recomputed;
    }
    for (int b = first; b < first + n; b++)
      for (int h = 0; h < shape->n_heads; h++) {
        gint64 block = ((gint64) (b - first) * shape->n_heads + h) * head_block;
        const float *d_out_head = head_of (d_out, out_batch_stride, b, h, head_dim);
        const float *v_head = head_of (shape->v, shape->v_batch_stride, b, h, head_dim);
        /* d_probs [Tq, Tk] = d_out_h [Tq, D] · v_hᵀ */
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, shape->n_queries, shape->n_keys,
                     head_dim, 1.0f, d_out_head, shape->channels, v_head, shape->v_row_stride, 0.0f,
                     d_scores_group + block, shape->n_keys);
        /* d_v_h [Tk, D] += probsᵀ [Tk, Tq] · d_out_h [Tq, D] */
        if (grads->v != NULL)
          cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, shape->n_keys, head_dim,
                       shape->n_queries, 1.0f, probs_group + block, shape->n_keys, d_out_head,
                       shape->channels, 1.0f,
                       mutable_head_of (grads->v, shape->v_batch_stride, b, h, head_dim),
                       shape->v_row_stride);
      }
    if (grads->q == NULL && grads->k == NULL)
      continue;
    AttentionRowJob job = { shape, aclip_nn_vector_kernels (), first, d_scores_group, probs_group };
    aclip_parallel_for (pool, (gint64) n * shape->n_heads * shape->n_queries,
                        row_grain (shape->n_keys), softmax_backward_rows_worker, &job);
    for (int b = first; b < first + n; b++)
      for (int h = 0; h < shape->n_heads; h++) {
        const float *d_scores =
            d_scores_group + ((gint64) (b - first) * shape->n_heads + h) * head_block;
        /* d_q_h [Tq, D] += d_scores [Tq, Tk] · k_h [Tk, D] */
        if (grads->q != NULL)
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, shape->n_queries, head_dim,
                       shape->n_keys, 1.0f, d_scores, shape->n_keys,
                       head_of (shape->k, shape->k_batch_stride, b, h, head_dim),
                       shape->k_row_stride, 1.0f,
                       mutable_head_of (grads->q, shape->q_batch_stride, b, h, head_dim),
                       shape->q_row_stride);
        /* d_k_h [Tk, D] += d_scoresᵀ [Tk, Tq] · q_h [Tq, D] */
        if (grads->k != NULL)
          cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, shape->n_keys, head_dim,
                       shape->n_queries, 1.0f, d_scores, shape->n_keys,
                       head_of (shape->q, shape->q_batch_stride, b, h, head_dim),
                       shape->q_row_stride, 1.0f,
                       mutable_head_of (grads->k, shape->k_batch_stride, b, h, head_dim),
                       shape->k_row_stride);
      }
  }
}

/* ---- Self-attention ------------------------------------------------------------------------ */

static gboolean
valid_heads (int channels, int n_heads)
{
  return channels > 0 && n_heads > 0 && channels % n_heads == 0;
}

static AttentionShape
self_attention_shape (const float *qkv, const guint8 *key_mask, int batch, int seq_len,
                      int channels, int n_heads)
{
  int head_dim = channels / n_heads;
  gint64 batch_stride = (gint64) seq_len * 3 * channels;
  AttentionShape shape = {
    .batch = batch,
    .n_queries = seq_len,
    .n_keys = seq_len,
    .n_heads = n_heads,
    .head_dim = head_dim,
    .channels = channels,
    .q = qkv,
    .q_batch_stride = batch_stride,
    .q_row_stride = 3 * channels,
    .k = qkv + channels,
    .k_batch_stride = batch_stride,
    .k_row_stride = 3 * channels,
    .v = qkv + 2 * channels,
    .v_batch_stride = batch_stride,
    .v_row_stride = 3 * channels,
    .key_mask = key_mask,
    .scale = 1.0f / sqrtf ((float) head_dim),
  };
  return shape;
}

void
aclip_self_attention_forward (AclipThreadPool *pool, float *out, float *probs, const float *qkv,
                              const guint8 *key_mask, int batch, int seq_len, int channels,
                              int n_heads, float *workspace)
{
  g_return_if_fail (batch >= 0 && seq_len > 0 && valid_heads (channels, n_heads));
  g_return_if_fail (probs != NULL || workspace != NULL);
  AttentionShape shape = self_attention_shape (qkv, key_mask, batch, seq_len, channels, n_heads);
  attention_forward (pool, &shape, out, probs, workspace);
}

void
aclip_self_attention_backward (AclipThreadPool *pool, float *d_qkv, const float *d_out,
                               const float *probs, const float *qkv, const guint8 *key_mask,
                               int batch, int seq_len, int channels, int n_heads, float *workspace)
{
  g_return_if_fail (batch >= 0 && seq_len > 0 && valid_heads (channels, n_heads));
  g_return_if_fail (workspace != NULL);
  AttentionShape shape = self_attention_shape (qkv, key_mask, batch, seq_len, channels, n_heads);
  AttentionGradients grads = { d_qkv, d_qkv + channels, d_qkv + 2 * channels };
  attention_backward (pool, &shape, &grads, d_out, probs, workspace);
}

/* ---- Cross-attention pooling --------------------------------------------------------------- */

static AttentionShape
cross_attention_shape (const float *queries, const float *kv, const guint8 *key_mask, int batch,
                       int n_queries, int seq_len, int channels, int n_heads)
{
  int head_dim = channels / n_heads;
  gint64 kv_batch_stride = (gint64) seq_len * 2 * channels;
  AttentionShape shape = {
    .batch = batch,
    .n_queries = n_queries,
    .n_keys = seq_len,
    .n_heads = n_heads,
    .head_dim = head_dim,
    .channels = channels,
    .q = queries,
    .q_batch_stride = 0, /* shared by every sequence */
    .q_row_stride = channels,
    .k = kv,
    .k_batch_stride = kv_batch_stride,
    .k_row_stride = 2 * channels,
    .v = kv + channels,
    .v_batch_stride = kv_batch_stride,
    .v_row_stride = 2 * channels,
    .key_mask = key_mask,
    .scale = 1.0f / sqrtf ((float) head_dim),
  };
  return shape;
}

void
aclip_cross_attention_forward (AclipThreadPool *pool, float *out, float *probs,
                               const float *queries, const float *kv, const guint8 *key_mask,
                               int batch, int n_queries, int seq_len, int channels, int n_heads,
                               float *workspace)
{
  g_return_if_fail (batch >= 0 && n_queries > 0 && seq_len > 0 && valid_heads (channels, n_heads));
  g_return_if_fail (probs != NULL || workspace != NULL);
  AttentionShape shape =
      cross_attention_shape (queries, kv, key_mask, batch, n_queries, seq_len, channels, n_heads);
  attention_forward (pool, &shape, out, probs, workspace);
}

void
aclip_cross_attention_backward (AclipThreadPool *pool, float *d_queries, float *d_kv,
                                const float *d_out, const float *probs, const float *queries,
                                const float *kv, const guint8 *key_mask, int batch, int n_queries,
                                int seq_len, int channels, int n_heads, float *workspace)
{
  g_return_if_fail (batch >= 0 && n_queries > 0 && seq_len > 0 && valid_heads (channels, n_heads));
  g_return_if_fail (workspace != NULL);
  AttentionShape shape =
      cross_attention_shape (queries, kv, key_mask, batch, n_queries, seq_len, channels, n_heads);
  AttentionGradients grads = { d_queries, d_kv, d_kv != NULL ? d_kv + channels : NULL };
  attention_backward (pool, &shape, &grads, d_out, probs, workspace);
}
