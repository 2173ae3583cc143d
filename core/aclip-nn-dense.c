/* aclip-nn-dense.c — linear, bias, LayerNorm, activations, softmax, residual add, positional
 * embedding, dropout, L2 normalisation and the feature-map transpose (aclip-nn.h).
 *
 * Matrix products are single cblas_sgemm calls made from the calling thread (OpenBLAS runs
 * them on its own threads). Everything else runs in aclip_parallel_for loops whose bodies work
 * on short float vectors (aclip-nn-private.h) and give every row or element the same
 * operations wherever a chunk starts, so results are bit-identical for any pool size.
 */
#include "aclip-nn.h"
#include "aclip-nn-private.h"

#include <cblas.h>
#include <math.h>

/* Aim for chunks of at least this many floats so that a parallel loop's wake-up cost (a few
 * microseconds) stays small next to the work. */
#define ELEMENTS_PER_CHUNK 16384

/* Rows per block in the fixed-order parameter-gradient reductions of LayerNorm. */
#define LAYERNORM_ROWS_PER_BLOCK 64

/* Columns per band in the column sums (bias gradients): four vectors, kept in registers. */
#define COLUMN_BAND 32

static gint64
rows_grain (int row_length)
{
  return MAX (1, ELEMENTS_PER_CHUNK / MAX (row_length, 1));
}

/* ---- Column sums, used for bias gradients --------------------------------------------------
 * sums[c] += Σ_n rows[n, c], each column summed in row order by one thread (parallel over
 * bands of columns), hence independent of the pool size. */

typedef struct
{
  float *sums;       /* [C] */
  const float *rows; /* [N, C] */
  gint64 n_rows;
  int channels;
} ColumnSumJob;

static void
column_sum_worker (gint64 band_begin, gint64 band_end, int worker, gpointer data)
{
  const ColumnSumJob *job = data;
  for (gint64 band = band_begin; band < band_end; band++) {
    int first = (int) band * COLUMN_BAND;
    int width = MIN (COLUMN_BAND, job->channels - first);
    if (width == COLUMN_BAND) {
      AclipVec acc[COLUMN_BAND / ACLIP_VEC_WIDTH] = { 0 };
      for (gint64 n = 0; n < job->n_rows; n++) {
        const float *row = job->rows + n * job->channels + first;
        for (int v = 0; v < COLUMN_BAND / ACLIP_VEC_WIDTH; v++)
          acc[v] += aclip_vec_load (row + v * ACLIP_VEC_WIDTH);
      }
      for (int v = 0; v < COLUMN_BAND / ACLIP_VEC_WIDTH; v++)
        aclip_vec_store (job->sums + first + v * ACLIP_VEC_WIDTH,
                         aclip_vec_load (job->sums + first + v * ACLIP_VEC_WIDTH) + acc[v]);
    } else {
      /* The last, narrower band. */
      float acc[COLUMN_BAND] = { 0 };
      for (gint64 n = 0; n < job->n_rows; n++) {
        const float *row = job->rows + n * job->channels + first;
        for (int c = 0; c < width; c++)
          acc[c] += row[c];
      }
      for (int c = 0; c < width; c++)
        job->sums[first + c] += acc[c];
    }
  }
}

static void
accumulate_column_sums (AclipThreadPool *pool, float *sums, const float *rows, gint64 n_rows,
                        int channels)
{
  ColumnSumJob job = { sums, rows, n_rows, channels };
  gint64 n_bands = (channels + COLUMN_BAND - 1) / COLUMN_BAND;
  aclip_parallel_for (pool, n_bands, 1, column_sum_worker, &job);
}

/* ---- Broadcast rows: out[n, :] = in[n, :] + vector[:], either of in and vector may be NULL
 * (taken as zero) ------------------------------------------------------------------------- */

typedef struct
{
  float *out;          /* [N, C] */
  const float *in;     /* [N, C] or NULL */
  const float *vector; /* [C] or NULL */
  int channels;
} BroadcastJob;

static void
broadcast_add_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const BroadcastJob *job = data;
  int c_count = job->channels;
  for (gint64 n = begin; n < end; n++) {
    float *restrict out = job->out + n * c_count;
    const float *restrict vector = job->vector;
    if (job->in == NULL || vector == NULL) {
      const float *source = vector != NULL ? vector : job->in + n * c_count;
      memcpy (out, source, (gsize) c_count * sizeof (float));
      continue;
    }
    const float *restrict in = job->in + n * c_count;
    int c = 0;
    for (; c + ACLIP_VEC_WIDTH <= c_count; c += ACLIP_VEC_WIDTH)
      aclip_vec_store (out + c, aclip_vec_load (in + c) + aclip_vec_load (vector + c));
    for (; c < c_count; c++)
      out[c] = in[c] + vector[c];
  }
}

static void
broadcast_add (AclipThreadPool *pool, float *out, const float *in, const float *vector,
               gint64 n_rows, int channels)
{
  BroadcastJob job = { out, in, vector, channels };
  aclip_parallel_for (pool, n_rows, rows_grain (channels), broadcast_add_worker, &job);
}

/* ---- Linear -------------------------------------------------------------------------------- */

void
aclip_linear_forward (AclipThreadPool *pool, float *out, const float *in, const float *weight,
                      const float *bias, gint64 n_rows, int in_features, int out_features)
{
  g_return_if_fail (n_rows >= 0 && n_rows <= G_MAXINT && in_features > 0 && out_features > 0);
  if (n_rows == 0)
    return;
  /* With a bias, the rows start as the bias and sgemm adds the product (beta = 1), which
   * costs no extra pass over `out`. */
  float beta = 0.0f;
  if (bias != NULL) {
    broadcast_add (pool, out, NULL, bias, n_rows, out_features);
    beta = 1.0f;
  }
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) n_rows, out_features, in_features,
               1.0f, in, in_features, weight, in_features, beta, out, out_features);
}

void
aclip_linear_residual_forward (AclipThreadPool *pool, float *out, const float *residual,
                               const float *in, const float *weight, const float *bias,
                               gint64 n_rows, int in_features, int out_features)
{
  g_return_if_fail (n_rows >= 0 && n_rows <= G_MAXINT && in_features > 0 && out_features > 0);
  g_return_if_fail (residual != NULL);
  if (n_rows == 0)
    return;
  broadcast_add (pool, out, residual, bias, n_rows, out_features);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) n_rows, out_features, in_features,
               1.0f, in, in_features, weight, in_features, 1.0f, out, out_features);
}

void
aclip_linear_backward (AclipThreadPool *pool, float *d_in, float *d_weight, float *d_bias,
                       const float *d_out, const float *in, const float *weight, gint64 n_rows,
                       int in_features, int out_features)
{
  g_return_if_fail (n_rows >= 0 && n_rows <= G_MAXINT && in_features > 0 && out_features > 0);
  if (n_rows == 0)
    return;
  /* d_in [N, IC] += d_out [N, OC] · weight [OC, IC] */
  if (d_in != NULL)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) n_rows, in_features, out_features,
                 1.0f, d_out, out_features, weight, in_features, 1.0f, d_in, in_features);
  /* d_weight [OC, IC] += d_outᵀ [OC, N] · in [N, IC] */
  if (d_weight != NULL)
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, out_features, in_features, (int) n_rows,
                 1.0f, d_out, out_features, in, in_features, 1.0f, d_weight, in_features);
  if (d_bias != NULL)
    accumulate_column_sums (pool, d_bias, d_out, n_rows, out_features);
}

/* ---- Bias ---------------------------------------------------------------------------------- */

void
aclip_bias_forward (AclipThreadPool *pool, float *out, const float *in, const float *bias,
                    gint64 n_rows, int channels)
{
  g_return_if_fail (n_rows >= 0 && channels > 0 && in != NULL);
  broadcast_add (pool, out, in, bias, n_rows, channels);
}

void
aclip_bias_backward (AclipThreadPool *pool, float *d_in, float *d_bias, const float *d_out,
                     gint64 n_rows, int channels)
{
  g_return_if_fail (n_rows >= 0 && channels > 0);
  if (d_in != NULL)
    aclip_add_backward (pool, d_in, NULL, d_out, (gsize) n_rows * channels);
  if (d_bias != NULL)
    accumulate_column_sums (pool, d_bias, d_out, n_rows, channels);
}

/* ---- LayerNorm ----------------------------------------------------------------------------- */

/* Σ row[c] over c, in vector lanes then a fixed-order lane sum. */
static inline float
row_sum (const float *row, int length)
{
  AclipVec acc = aclip_vec_splat (0.0f);
  int c = 0;
  for (; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH)
    acc += aclip_vec_load (row + c);
  if (c < length)
    acc += aclip_vec_load_partial (row + c, (gsize) (length - c), 0.0f);
  return aclip_vec_sum (acc);
}

typedef struct
{
  float *out;
  float *mean;
  float *rstd;
  const float *in;
  const float *weight;
  const float *bias;
  int channels;
  float eps;
} LayerNormForwardJob;

static void
layernorm_forward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const LayerNormForwardJob *job = data;
  int length = job->channels;
  const float *restrict weight = job->weight;
  const float *restrict bias = job->bias;
  for (gint64 n = begin; n < end; n++) {
    const float *restrict in = job->in + n * length;
    float *restrict out = job->out + n * length;
    float mean = row_sum (in, length) / (float) length;
    /* Two passes: the variance of centred values does not cancel. */
    AclipVec acc = aclip_vec_splat (0.0f);
    int c = 0;
    for (; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH) {
      AclipVec centred = aclip_vec_load (in + c) - mean;
      acc += centred * centred;
    }
    if (c < length) {
      AclipVec centred = aclip_vec_load_partial (in + c, (gsize) (length - c), mean) - mean;
      acc += centred * centred;
    }
    float variance = aclip_vec_sum (acc) / (float) length;
    float rstd = 1.0f / sqrtf (variance + job->eps);
    for (c = 0; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH) {
      AclipVec normalised = (aclip_vec_load (in + c) - mean) * rstd;
      aclip_vec_store (out + c,
                       normalised * aclip_vec_load (weight + c) + aclip_vec_load (bias + c));
    }
    for (; c < length; c++)
      out[c] = (in[c] - mean) * rstd * weight[c] + bias[c];
    if (job->mean != NULL)
      job->mean[n] = mean;
    if (job->rstd != NULL)
      job->rstd[n] = rstd;
  }
}

void
aclip_layernorm_forward (AclipThreadPool *pool, float *out, float *mean, float *rstd,
                         const float *in, const float *weight, const float *bias, gint64 n_rows,
                         int channels, float eps)
{
  g_return_if_fail (n_rows >= 0 && channels > 0);
  LayerNormForwardJob job = { out, mean, rstd, in, weight, bias, channels, eps };
  aclip_parallel_for (pool, n_rows, rows_grain (channels), layernorm_forward_worker, &job);
}

static gint64
layernorm_n_blocks (gint64 n_rows)
{
  return (n_rows + LAYERNORM_ROWS_PER_BLOCK - 1) / LAYERNORM_ROWS_PER_BLOCK;
}

gsize
aclip_layernorm_backward_workspace_size (gint64 n_rows, int channels)
{
  return (gsize) layernorm_n_blocks (n_rows) * 2 * (gsize) channels;
}

typedef struct
{
  float *d_in;
  float *partials; /* [n_blocks, 2, C]: Σ d_out·normalised, Σ d_out over each block's rows */
  const float *d_out;
  const float *in;
  const float *mean;
  const float *rstd;
  const float *weight;
  gint64 n_rows;
  int channels;
} LayerNormBackwardJob;

static void
layernorm_backward_worker (gint64 block_begin, gint64 block_end, int worker, gpointer data)
{
  const LayerNormBackwardJob *job = data;
  int length = job->channels;
  const float *restrict weight = job->weight;
  for (gint64 block = block_begin; block < block_end; block++) {
    float *restrict partial_weight = NULL;
    float *restrict partial_bias = NULL;
    if (job->partials != NULL) {
      partial_weight = job->partials + block * 2 * length;
      partial_bias = partial_weight + length;
      memset (partial_weight, 0, 2 * (gsize) length * sizeof (float));
    }
    gint64 row_end = MIN (job->n_rows, (block + 1) * LAYERNORM_ROWS_PER_BLOCK);
    for (gint64 n = block * LAYERNORM_ROWS_PER_BLOCK; n < row_end; n++) {
      const float *restrict in = job->in + n * length;
      const float *restrict d_out = job->d_out + n * length;
      float mean = job->mean[n];
      float rstd = job->rstd[n];
      int c;
      if (partial_weight != NULL) {
        for (c = 0; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH) {
          AclipVec g = aclip_vec_load (d_out + c);
          AclipVec normalised = (aclip_vec_load (in + c) - mean) * rstd;
          aclip_vec_store (partial_weight + c,
                           aclip_vec_load (partial_weight + c) + g * normalised);
          aclip_vec_store (partial_bias + c, aclip_vec_load (partial_bias + c) + g);
        }
        for (; c < length; c++) {
          partial_weight[c] += d_out[c] * (in[c] - mean) * rstd;
          partial_bias[c] += d_out[c];
        }
      }
      if (job->d_in == NULL)
        continue;
      /* d_in = rstd·(g − mean(g) − normalised·mean(g·normalised)), g = d_out·weight. */
      AclipVec sum_g = aclip_vec_splat (0.0f), sum_g_normalised = aclip_vec_splat (0.0f);
      for (c = 0; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH) {
        AclipVec g = aclip_vec_load (d_out + c) * aclip_vec_load (weight + c);
        sum_g += g;
        sum_g_normalised += g * ((aclip_vec_load (in + c) - mean) * rstd);
      }
      if (c < length) {
        gsize tail = (gsize) (length - c);
        AclipVec g = aclip_vec_load_partial (d_out + c, tail, 0.0f) *
                     aclip_vec_load_partial (weight + c, tail, 0.0f);
        sum_g += g;
        sum_g_normalised += g * ((aclip_vec_load_partial (in + c, tail, mean) - mean) * rstd);
      }
      float mean_g = aclip_vec_sum (sum_g) / (float) length;
      float mean_g_normalised = aclip_vec_sum (sum_g_normalised) / (float) length;
      float *restrict d_in = job->d_in + n * length;
      for (c = 0; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH) {
        AclipVec g = aclip_vec_load (d_out + c) * aclip_vec_load (weight + c);
        AclipVec normalised = (aclip_vec_load (in + c) - mean) * rstd;
        aclip_vec_store (d_in + c, aclip_vec_load (d_in + c) +
                                       rstd * (g - mean_g - normalised * mean_g_normalised));
      }
      for (; c < length; c++) {
        float g = d_out[c] * weight[c];
        float normalised = (in[c] - mean) * rstd;
        d_in[c] += rstd * (g - mean_g - normalised * mean_g_normalised);
      }
    }
  }
}

void
aclip_layernorm_backward (AclipThreadPool *pool, float *d_in, float *d_weight, float *d_bias,
                          const float *d_out, const float *in, const float *mean, const float *rstd,
                          const float *weight, gint64 n_rows, int channels, float *workspace)
{
  g_return_if_fail (n_rows >= 0 && channels > 0);
  gboolean want_parameters = d_weight != NULL || d_bias != NULL;
  g_return_if_fail (!want_parameters || workspace != NULL);
  gint64 n_blocks = layernorm_n_blocks (n_rows);
  LayerNormBackwardJob job = {
    d_in, want_parameters ? workspace : NULL, d_out, in, mean, rstd, weight, n_rows, channels,
  };
  gint64 grain = MAX (1, rows_grain (channels) / LAYERNORM_ROWS_PER_BLOCK);
  aclip_parallel_for (pool, n_blocks, grain, layernorm_backward_worker, &job);
  if (!want_parameters)
    return;
  /* The blocks' partial sums, added in block order. */
  for (int c = 0; c < channels; c++) {
    float sum_weight = 0.0f, sum_bias = 0.0f;
    for (gint64 block = 0; block < n_blocks; block++) {
      sum_weight += workspace[block * 2 * channels + c];
      sum_bias += workspace[block * 2 * channels + channels + c];
    }
    if (d_weight != NULL)
      d_weight[c] += sum_weight;
    if (d_bias != NULL)
      d_bias[c] += sum_bias;
  }
}

/* ---- Instruction-set variants (aclip-nn-vector.inc) ---------------------------------------- */

static gint use_baseline_code;

void
aclip_nn_use_baseline_code (gboolean use_baseline)
{
  g_atomic_int_set (&use_baseline_code, use_baseline ? 1 : 0);
}

const AclipNnVectorKernels *
aclip_nn_vector_kernels (void)
{
#if defined(ACLIP_NN_HAVE_AVX2_VARIANT)
  __builtin_cpu_init ();
  if (!g_atomic_int_get (&use_baseline_code) && __builtin_cpu_supports ("avx2") &&
      __builtin_cpu_supports ("fma"))
    return &aclip_nn_vector_kernels_avx2;
#endif
  return &aclip_nn_vector_kernels_baseline;
}

/* ---- Elementwise kernels ------------------------------------------------------------------- */

typedef enum
{
  ELEMENTWISE_GELU_ERF,
  ELEMENTWISE_GELU_TANH,
  ELEMENTWISE_RELU,
  ELEMENTWISE_ADD,
} ElementwiseOp;

typedef struct
{
  ElementwiseOp op;
  float *out;     /* forward: the output; backward: the input gradient (accumulated) */
  const float *a; /* forward: the input; backward: the output gradient */
  const float *b; /* forward ADD: the second input; backward: the forward input */
  float *out_b;   /* backward ADD: the second input gradient, or NULL */
  const AclipNnVectorKernels *vector;
} ElementwiseJob;

ACLIP_INLINE AclipVec
elementwise_forward_vec (ElementwiseOp op, AclipVec a, AclipVec b)
{
  if (op == ELEMENTWISE_RELU)
    return aclip_vec_select (a > 0.0f, a, aclip_vec_splat (0.0f));
  return a + b;
}

static void
elementwise_forward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ElementwiseJob *job = data;
  float *restrict out = job->out;
  const float *restrict a = job->a;
  const float *restrict b = job->b;
  switch (job->op) {
    case ELEMENTWISE_GELU_ERF:
    case ELEMENTWISE_GELU_TANH:
      job->vector->gelu_forward (
          out, a, begin, end, job->op == ELEMENTWISE_GELU_TANH ? ACLIP_GELU_TANH : ACLIP_GELU_ERF);
      return;
    case ELEMENTWISE_RELU: {
      gint64 i = begin;
      for (; i + ACLIP_VEC_WIDTH <= end; i += ACLIP_VEC_WIDTH)
        aclip_vec_store (out + i, elementwise_forward_vec (ELEMENTWISE_RELU, aclip_vec_load (a + i),
                                                           aclip_vec_splat (0.0f)));
      for (; i < end; i++)
        out[i] = a[i] > 0.0f ? a[i] : 0.0f;
      return;
    }
    case ELEMENTWISE_ADD: {
      gint64 i = begin;
      for (; i + ACLIP_VEC_WIDTH <= end; i += ACLIP_VEC_WIDTH)
        aclip_vec_store (out + i, elementwise_forward_vec (ELEMENTWISE_ADD, aclip_vec_load (a + i),
                                                           aclip_vec_load (b + i)));
      for (; i < end; i++)
        out[i] = a[i] + b[i];
      return;
    }
  }
}

static void
elementwise_backward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ElementwiseJob *job = data;
  float *restrict d_in = job->out;
  float *restrict d_in_b = job->out_b;
  const float *restrict d_out = job->a;
  const float *restrict x = job->b;
  gint64 i = begin;
  switch (job->op) {
    case ELEMENTWISE_GELU_ERF:
    case ELEMENTWISE_GELU_TANH:
      job->vector->gelu_backward (d_in, d_out, x, begin, end,
                                  job->op == ELEMENTWISE_GELU_TANH ? ACLIP_GELU_TANH
                                                                   : ACLIP_GELU_ERF);
      return;
    case ELEMENTWISE_RELU:
      for (; i + ACLIP_VEC_WIDTH <= end; i += ACLIP_VEC_WIDTH) {
        AclipVec g = aclip_vec_select (aclip_vec_load (x + i) > 0.0f, aclip_vec_load (d_out + i),
                                       aclip_vec_splat (0.0f));
        aclip_vec_store (d_in + i, aclip_vec_load (d_in + i) + g);
      }
      for (; i < end; i++)
        d_in[i] += x[i] > 0.0f ? d_out[i] : 0.0f;
      return;
    case ELEMENTWISE_ADD:
      for (; i + ACLIP_VEC_WIDTH <= end; i += ACLIP_VEC_WIDTH) {
        AclipVec g = aclip_vec_load (d_out + i);
        if (d_in != NULL)
          aclip_vec_store (d_in + i, aclip_vec_load (d_in + i) + g);
        if (d_in_b != NULL)
          aclip_vec_store (d_in_b + i, aclip_vec_load (d_in_b + i) + g);
      }
      for (; i < end; i++) {
        if (d_in != NULL)
          d_in[i] += d_out[i];
        if (d_in_b != NULL)
          d_in_b[i] += d_out[i];
      }
      return;
  }
}

static void
run_elementwise (AclipThreadPool *pool, gboolean backward, ElementwiseJob *job, gsize n)
{
  job->vector = aclip_nn_vector_kernels ();
  aclip_parallel_for (pool, (gint64) n, ELEMENTS_PER_CHUNK,
                      backward ? elementwise_backward_worker : elementwise_forward_worker, job);
}

static ElementwiseOp
gelu_op (AclipGeluForm form)
{
  return form == ACLIP_GELU_TANH ? ELEMENTWISE_GELU_TANH : ELEMENTWISE_GELU_ERF;
}

void
aclip_gelu_forward (AclipThreadPool *pool, float *out, const float *in, gsize n, AclipGeluForm form)
{
  ElementwiseJob job = { gelu_op (form), out, in, NULL, NULL };
  run_elementwise (pool, FALSE, &job, n);
}

void
aclip_gelu_backward (AclipThreadPool *pool, float *d_in, const float *d_out, const float *in,
                     gsize n, AclipGeluForm form)
{
  ElementwiseJob job = { gelu_op (form), d_in, d_out, in, NULL };
  run_elementwise (pool, TRUE, &job, n);
}

void
aclip_relu_forward (AclipThreadPool *pool, float *out, const float *in, gsize n)
{
  ElementwiseJob job = { ELEMENTWISE_RELU, out, in, NULL, NULL };
  run_elementwise (pool, FALSE, &job, n);
}

void
aclip_relu_backward (AclipThreadPool *pool, float *d_in, const float *d_out, const float *in,
                     gsize n)
{
  ElementwiseJob job = { ELEMENTWISE_RELU, d_in, d_out, in, NULL };
  run_elementwise (pool, TRUE, &job, n);
}

void
aclip_add_forward (AclipThreadPool *pool, float *out, const float *a, const float *b, gsize n)
{
  ElementwiseJob job = { ELEMENTWISE_ADD, out, a, b, NULL };
  run_elementwise (pool, FALSE, &job, n);
}

void
aclip_add_backward (AclipThreadPool *pool, float *d_a, float *d_b, const float *d_out, gsize n)
{
  if (d_a == NULL && d_b == NULL)
    return;
  ElementwiseJob job = { ELEMENTWISE_ADD, d_a, d_out, NULL, d_b };
  run_elementwise (pool, TRUE, &job, n);
}

/* ---- Softmax ------------------------------------------------------------------------------- */

typedef struct
{
  float *out;
  const float *in;
  const float *extra;
  int length;
  const AclipNnVectorKernels *vector;
} SoftmaxJob;

static void
softmax_forward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const SoftmaxJob *job = data;
  for (gint64 n = begin; n < end; n++)
    job->vector->softmax_row (job->out + n * job->length, job->in + n * job->length, NULL,
                              job->length);
}

void
aclip_softmax_forward (AclipThreadPool *pool, float *out, const float *in, gint64 n_rows,
                       int length)
{
  g_return_if_fail (n_rows >= 0 && length > 0);
  SoftmaxJob job = { out, in, NULL, length, aclip_nn_vector_kernels () };
  aclip_parallel_for (pool, n_rows, rows_grain (length), softmax_forward_worker, &job);
}

static void
softmax_backward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const SoftmaxJob *job = data;
  int length = job->length;
  for (gint64 n = begin; n < end; n++) {
    float *restrict d_in = job->out + n * length;
    const float *restrict d_out = job->in + n * length;
    const float *restrict probs = job->extra + n * length;
    /* d_in += p ⊙ (d_out − Σ p·d_out) */
    float dot = aclip_vec_row_dot (probs, d_out, length);
    int j = 0;
    for (; j + ACLIP_VEC_WIDTH <= length; j += ACLIP_VEC_WIDTH)
      aclip_vec_store (d_in + j,
                       aclip_vec_load (d_in + j) +
                           aclip_vec_load (probs + j) * (aclip_vec_load (d_out + j) - dot));
    for (; j < length; j++)
      d_in[j] += probs[j] * (d_out[j] - dot);
  }
}

void
aclip_softmax_backward (AclipThreadPool *pool, float *d_in, const float *d_out, const float *out,
                        gint64 n_rows, int length)
{
  g_return_if_fail (n_rows >= 0 && length > 0);
  SoftmaxJob job = { d_in, d_out, out, length, NULL };
  aclip_parallel_for (pool, n_rows, rows_grain (length), softmax_backward_worker, &job);
}

/* ---- Positional embedding ------------------------------------------------------------------ */

typedef struct
{
  float *out;
  const float *in;
  const float *table;
  int batch;
  int seq_len;
  int channels;
} PositionalJob;

static void
positional_forward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const PositionalJob *job = data;
  int length = job->channels;
  for (gint64 row = begin; row < end; row++) {
    float *restrict out = job->out + row * length;
    const float *restrict in = job->in + row * length;
    const float *restrict position = job->table + (row % job->seq_len) * length;
    int c = 0;
    for (; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH)
      aclip_vec_store (out + c, aclip_vec_load (in + c) + aclip_vec_load (position + c));
    for (; c < length; c++)
      out[c] = in[c] + position[c];
  }
}

void
aclip_positional_embedding_forward (AclipThreadPool *pool, float *out, const float *in,
                                    const float *table, int batch, int seq_len, int channels)
{
  g_return_if_fail (batch >= 0 && seq_len > 0 && channels > 0);
  PositionalJob job = { out, in, table, batch, seq_len, channels };
  aclip_parallel_for (pool, (gint64) batch * seq_len, rows_grain (channels),
                      positional_forward_worker, &job);
}

/* d_table[t, :] += Σ_b d_out[b, t, :]: each band of columns is summed over the batch in order
 * in registers, then added once, so a second backward adds exactly the same amount. */
static void
positional_table_backward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const PositionalJob *job = data;
  int length = job->channels;
  for (gint64 t = begin; t < end; t++) {
    float *restrict d_table = job->out + t * length;
    int c = 0;
    for (; c + COLUMN_BAND <= length; c += COLUMN_BAND) {
      AclipVec acc[COLUMN_BAND / ACLIP_VEC_WIDTH] = { 0 };
      for (int b = 0; b < job->batch; b++) {
        const float *restrict d_out = job->in + ((gint64) b * job->seq_len + t) * length + c;
        for (int v = 0; v < COLUMN_BAND / ACLIP_VEC_WIDTH; v++)
          acc[v] += aclip_vec_load (d_out + v * ACLIP_VEC_WIDTH);
      }
      for (int v = 0; v < COLUMN_BAND / ACLIP_VEC_WIDTH; v++)
        aclip_vec_store (d_table + c + v * ACLIP_VEC_WIDTH,
                         aclip_vec_load (d_table + c + v * ACLIP_VEC_WIDTH) + acc[v]);
    }
    for (; c < length; c++) {
      float sum = 0.0f;
      for (int b = 0; b < job->batch; b++)
        sum += job->in[((gint64) b * job->seq_len + t) * length + c];
      d_table[c] += sum;
    }
  }
}

void
aclip_positional_embedding_backward (AclipThreadPool *pool, float *d_in, float *d_table,
                                     const float *d_out, int batch, int seq_len, int channels)
{
  g_return_if_fail (batch >= 0 && seq_len > 0 && channels > 0);
  if (d_in != NULL)
    aclip_add_backward (pool, d_in, NULL, d_out, (gsize) batch * seq_len * channels);
  if (d_table != NULL) {
    PositionalJob job = { d_table, d_out, NULL, batch, seq_len, channels };
    aclip_parallel_for (pool, seq_len, MAX (1, rows_grain (channels) / MAX (batch, 1)),
                        positional_table_backward_worker, &job);
  }
}

/* ---- Dropout ------------------------------------------------------------------------------- */

/* The `index`-th output (from 0) of splitmix64 seeded with `seed`. */
static inline guint64
splitmix64_at (guint64 seed, guint64 index)
{
  guint64 z = seed + (index + 1) * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15);
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

typedef struct
{
  float *out;
  guint8 *mask_out;
  const float *in;
  const guint8 *mask_in;
  guint64 threshold;
  float scale;
  guint64 seed;
  guint64 counter;
} DropoutJob;

static void
dropout_forward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const DropoutJob *job = data;
  float *restrict out = job->out;
  guint8 *restrict mask = job->mask_out;
  const float *restrict in = job->in;
  for (gint64 i = begin; i < end; i++) {
    guint8 keep = splitmix64_at (job->seed, job->counter + (guint64) i) >= job->threshold;
    mask[i] = keep;
    out[i] = keep ? in[i] * job->scale : 0.0f;
  }
}

static void
dropout_backward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const DropoutJob *job = data;
  float *restrict d_in = job->out;
  const float *restrict d_out = job->in;
  const guint8 *restrict mask = job->mask_in;
  for (gint64 i = begin; i < end; i++)
    d_in[i] += mask[i] ? d_out[i] * job->scale : 0.0f;
}

static guint64
dropout_threshold (float p)
{
  /* p < 1 in float is at most 1 − 2^−24, so p·2^64 fits a guint64 exactly. */
  return (guint64) ((double) p * 18446744073709551616.0);
}

void
aclip_dropout_forward (AclipThreadPool *pool, float *out, guint8 *mask, const float *in, gsize n,
                       float p, guint64 seed, guint64 counter)
{
  g_return_if_fail (p >= 0.0f && p < 1.0f);
  DropoutJob job = { out, mask, in, NULL, dropout_threshold (p), 1.0f / (1.0f - p), seed, counter };
  aclip_parallel_for (pool, (gint64) n, ELEMENTS_PER_CHUNK, dropout_forward_worker, &job);
}

void
aclip_dropout_backward (AclipThreadPool *pool, float *d_in, const float *d_out, const guint8 *mask,
                        gsize n, float p)
{
  g_return_if_fail (p >= 0.0f && p < 1.0f);
  DropoutJob job = { d_in, NULL, d_out, mask, 0, 1.0f / (1.0f - p), 0, 0 };
  aclip_parallel_for (pool, (gint64) n, ELEMENTS_PER_CHUNK, dropout_backward_worker, &job);
}

/* ---- L2 normalisation ---------------------------------------------------------------------- */

typedef struct
{
  float *out;
  float *norm_out;
  const float *in;
  const float *d_out;
  const float *forward_out;
  const float *norm_in;
  int channels;
  float eps;
} L2NormalizeJob;

static void
l2_normalize_forward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const L2NormalizeJob *job = data;
  int length = job->channels;
  for (gint64 n = begin; n < end; n++) {
    const float *restrict in = job->in + n * length;
    float *restrict out = job->out + n * length;
    float norm = sqrtf (aclip_vec_row_dot (in, in, length));
    float inverse = 1.0f / MAX (norm, job->eps);
    int c = 0;
    for (; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH)
      aclip_vec_store (out + c, aclip_vec_load (in + c) * inverse);
    for (; c < length; c++)
      out[c] = in[c] * inverse;
    if (job->norm_out != NULL)
      job->norm_out[n] = norm;
  }
}

void
aclip_l2_normalize_forward (AclipThreadPool *pool, float *out, float *norm, const float *in,
                            gint64 n_rows, int channels, float eps)
{
  g_return_if_fail (n_rows >= 0 && channels > 0 && eps > 0.0f);
  L2NormalizeJob job = { out, norm, in, NULL, NULL, NULL, channels, eps };
  aclip_parallel_for (pool, n_rows, rows_grain (channels), l2_normalize_forward_worker, &job);
}

static void
l2_normalize_backward_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const L2NormalizeJob *job = data;
  int length = job->channels;
  for (gint64 n = begin; n < end; n++) {
    float *restrict d_in = job->out + n * length;
    const float *restrict d_out = job->d_out + n * length;
    const float *restrict out = job->forward_out + n * length;
    float norm = job->norm_in[n];
    int c = 0;
    if (norm >= job->eps) {
      /* out = in/‖in‖: d_in = (d_out − out·(out·d_out)) / ‖in‖ */
      float dot = aclip_vec_row_dot (out, d_out, length);
      float inverse = 1.0f / norm;
      for (; c + ACLIP_VEC_WIDTH <= length; c += ACLIP_VEC_WIDTH)
        aclip_vec_store (
            d_in + c, aclip_vec_load (d_in + c) +
                          (aclip_vec_load (d_out + c) - aclip_vec_load (out + c) * dot) * inverse);
      for (; c < length; c++)
        d_in[c] += (d_out[c] - out[c] * dot) * inverse;
    } else {
      /* Below eps the divisor is the constant eps. */
      float inverse = 1.0f / job->eps;
      for (; c < length; c++)
        d_in[c] += d_out[c] * inverse;
    }
  }
}

void
aclip_l2_normalize_backward (AclipThreadPool *pool, float *d_in, const float *d_out,
                             const float *out, const float *norm, gint64 n_rows, int channels,
                             float eps)
{
  g_return_if_fail (n_rows >= 0 && channels > 0 && eps > 0.0f);
  L2NormalizeJob job = { d_in, NULL, NULL, d_out, out, norm, channels, eps };
  aclip_parallel_for (pool, n_rows, rows_grain (channels), l2_normalize_backward_worker, &job);
}

/* ---- Feature map to tokens ----------------------------------------------------------------- */

#define TRANSPOSE_TILE 16

typedef struct
{
  float *out;
  const float *in;
  int channels;
  int n_pixels;
  gboolean accumulate_into_map; /* backward: out is [B, C, P] and gets += */
} TransposeJob;

/* Over b: forward out[b, p, c] = in[b, c, p]; backward out[b, c, p] += in[b, p, c]. Tiled so
 * that both sides are read and written in cache-line runs. */
static void
transpose_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  const TransposeJob *job = data;
  gint64 plane = (gint64) job->channels * job->n_pixels;
  for (gint64 b = begin; b < end; b++) {
    float *restrict out = job->out + b * plane;
    const float *restrict in = job->in + b * plane;
    for (int c0 = 0; c0 < job->channels; c0 += TRANSPOSE_TILE)
      for (int p0 = 0; p0 < job->n_pixels; p0 += TRANSPOSE_TILE) {
        int c1 = MIN (c0 + TRANSPOSE_TILE, job->channels);
        int p1 = MIN (p0 + TRANSPOSE_TILE, job->n_pixels);
        if (!job->accumulate_into_map) {
          for (int p = p0; p < p1; p++)
            for (int c = c0; c < c1; c++)
              out[(gint64) p * job->channels + c] = in[(gint64) c * job->n_pixels + p];
        } else {
          for (int c = c0; c < c1; c++)
            for (int p = p0; p < p1; p++)
              out[(gint64) c * job->n_pixels + p] += in[(gint64) p * job->channels + c];
        }
      }
  }
}

void
aclip_feature_map_to_tokens_forward (AclipThreadPool *pool, float *out, const float *in, int batch,
                                     int channels, int n_pixels)
{
  g_return_if_fail (batch >= 0 && channels > 0 && n_pixels > 0);
  TransposeJob job = { out, in, channels, n_pixels, FALSE };
  aclip_parallel_for (pool, batch, 1, transpose_worker, &job);
}

void
aclip_feature_map_to_tokens_backward (AclipThreadPool *pool, float *d_in, const float *d_out,
                                      int batch, int channels, int n_pixels)
{
  g_return_if_fail (batch >= 0 && channels > 0 && n_pixels > 0);
  TransposeJob job = { d_in, d_out, channels, n_pixels, TRUE };
  aclip_parallel_for (pool, batch, 1, transpose_worker, &job);
}
