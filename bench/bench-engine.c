/* bench-engine.c — throughput of the learning core on whole models, the engine's half of
 * bench/bench-engine.sh (bench/bench_torch.py is PyTorch's half, with the same models).
 *
 * Cases (the first argument):
 *   sgemm                      OpenBLAS sgemm rate on 1024³ and on shapes the models use
 *   transformer-w256-forward   4 pre-LayerNorm blocks (width 256, 8 heads, MLP 1024, GELU) and a
 *   transformer-w256-train     final LayerNorm, on 32 sequences of 400 tokens
 *   transformer-w128-forward   the same at the spectrum encoder's default size: width 128,
 *   transformer-w128-train     4 heads, MLP 512, 32 sequences of 389 tokens
 *   resnet18-forward           ResNet-18 (torchvision's stem: 7×7/2 convolution, 3×3/2 max-pool)
 *   resnet18-train             on 32 images 3×64×64, 10 classes
 *   resnet18-stem3x3-forward   ResNet-18 with a 3×3/1 stem and no max-pool (the usual variant
 *   resnet18-stem3x3-train     for small images), on the same images
 *
 * "-forward" is inference: the forward alone, batch normalisation in evaluation mode, no
 * attention probabilities kept. "-train" is one training step: zero the gradients, forward,
 * loss (MSE against a random target for the transformer, cross-entropy for the ResNet),
 * backward, AdamW (lr 1e-4, weight decay 0.05 on weights only).
 *
 * Timing (the default): --warmup iterations, then --reps timed ones; prints one JSON line with
 * every iteration's wall time, the median, items (sequences or images) per second and the
 * GFLOP/s of the counted FLOPs. Counted FLOPs are those of matrix products and convolutions
 * only, 2·M·N·K per product (a convolution as its direct form, 2·B·OC·OH·OW·IC·KH·KW, even where
 * Winograd does fewer multiplications); the backward of each is twice its forward (input and
 * weight gradients), except where no input gradient is needed (the network's input).
 *
 * --profile: the same iterations with each block composed kernel by kernel, as
 * aclip-transformer.c and aclip-resblock.c compose it, and every kernel call timed with
 * g_get_monotonic_time; prints the time per kernel per iteration, summed over layers. (The
 * ResNet block's fused element-wise loops are replaced by aclip_relu_* and aclip_add_* calls,
 * so that part of its profile is close to, not exactly, the block's own cost.) With --profile,
 * --conv-algorithm and --conv-images-per-gemm override the convolutions' automatic choices, to
 * see what another choice would give.
 */
#include "aclip-loss.h"
#include "aclip-nn-conv.h"
#include "aclip-nn.h"
#include "aclip-optim.h"
#include "aclip-parallel.h"
#include "aclip-params.h"
#include "aclip-resblock.h"
#include "aclip-rng.h"
#include "aclip-transformer.h"
#include "bench-support.h"

#include <cblas.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define LEARNING_RATE      1e-4
#define WEIGHT_DECAY       0.05
#define LAYERNORM_EPS      1e-5f
#define BATCHNORM_EPS      1e-5f
#define BATCHNORM_MOMENTUM 0.1f

/* The first and the last loss of a run's training steps, to show that training does train. */
typedef struct
{
  gint64 n_steps;
  double first;
  double last;
} LossTrace;

static void
loss_trace_add (LossTrace *trace, double loss)
{
  if (trace->n_steps++ == 0)
    trace->first = loss;
  trace->last = loss;
}

typedef struct
{
  int warmup;
  int reps;
  double min_time; /* seconds: more than `reps` iterations until this much is timed */
  int threads;
  int blas_threads; /* 0: as `threads` */
  gboolean profile;
  gboolean recompute_probs;
  char *conv_algorithm;     /* profile mode: "auto", "im2col" or "winograd" (3×3/1 layers) */
  int conv_images_per_gemm; /* profile mode: 0 lets the kernel choose */
} Options;

/* ---- Small helpers ------------------------------------------------------------------------- */

static void
die_on_error (GError *error, const char *what)
{
  if (error == NULL)
    return;
  fprintf (stderr, "bench-engine: %s: %s\n", what, error->message);
  exit (1);
}

static double
seconds_since (gint64 start)
{
  return (double) (g_get_monotonic_time () - start) * 1e-6;
}

static void
fill_normal (float *data, gsize n, guint64 seed, float scale)
{
  AclipRng rng;
  aclip_rng_init (&rng, seed, 0, 0);
  aclip_rng_fill_normal (&rng, n, data);
  for (gsize i = 0; i < n; i++)
    data[i] *= scale;
}

typedef struct
{
  float *data;
} ZeroFillJob;

static void
zero_fill_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  ZeroFillJob *job = data;
  memset (job->data + begin, 0, (gsize) (end - begin) * sizeof (float));
}

static void
zero_fill (AclipThreadPool *pool, float *data, gsize n)
{
  ZeroFillJob job = { data };
  aclip_parallel_for (pool, (gint64) n, 1 << 16, zero_fill_range, &job);
}

/* ---- Profile: time per kernel ------------------------------------------------------------- */

typedef struct
{
  char *kernel;    /* "linear", "conv2d", ... */
  char *direction; /* "forward", "backward", "step" */
  char *detail;    /* the layer or shape, "" for none */
  double flops;    /* counted FLOPs, summed over calls */
  gint64 microseconds;
  gint64 calls;
} ProfileEntry;

typedef struct
{
  GPtrArray *entries; /* ProfileEntry*, in order of first appearance */
} Profile;

static void
profile_entry_free (gpointer data)
{
  ProfileEntry *entry = data;
  g_free (entry->kernel);
  g_free (entry->direction);
  g_free (entry->detail);
  g_free (entry);
}

static Profile *
profile_new (void)
{
  Profile *profile = g_new0 (Profile, 1);
  profile->entries = g_ptr_array_new_with_free_func (profile_entry_free);
  return profile;
}

static void
profile_free (Profile *profile)
{
  g_ptr_array_unref (profile->entries);
  g_free (profile);
}

/* Returns the start time to hand to profile_stop, or 0 when not profiling. */
static gint64
profile_start (Profile *profile)
{
  return profile != NULL ? g_get_monotonic_time () : 0;
}

static void
profile_stop (Profile *profile, gint64 start, const char *kernel, const char *direction,
              const char *detail, double flops)
{
  if (profile == NULL)
    return;
  gint64 elapsed = g_get_monotonic_time () - start;
  ProfileEntry *entry = NULL;
  for (guint i = 0; i < profile->entries->len && entry == NULL; i++) {
    ProfileEntry *candidate = g_ptr_array_index (profile->entries, i);
    if (strcmp (candidate->kernel, kernel) == 0 && strcmp (candidate->direction, direction) == 0 &&
        strcmp (candidate->detail, detail) == 0)
      entry = candidate;
  }
  if (entry == NULL) {
    entry = g_new0 (ProfileEntry, 1);
    entry->kernel = g_strdup (kernel);
    entry->direction = g_strdup (direction);
    entry->detail = g_strdup (detail);
    g_ptr_array_add (profile->entries, entry);
  }
  entry->microseconds += elapsed;
  entry->flops += flops;
  entry->calls++;
}

static void
print_profile_row (const char *kernel, const char *direction, const char *detail, double ms,
                   double total_ms, double flops, double calls, double sgemm_gflops)
{
  char rate[64] = "";
  if (flops > 0.0 && ms > 0.0) {
    double gflops = flops / (ms * 1e6);
    if (sgemm_gflops > 0.0)
      g_snprintf (rate, sizeof rate, "%7.1f GFLOP/s %4.0f%%", gflops,
                  100.0 * gflops / sgemm_gflops);
    else
      g_snprintf (rate, sizeof rate, "%7.1f GFLOP/s", gflops);
  }
  printf ("  %-16s %-9s %-30s %9.2f ms %5.1f%% %6.0f calls  %s\n", kernel, direction, detail, ms,
          100.0 * ms / total_ms, calls, rate);
}

/* Prints the profile of n_iterations iterations as time per iteration: first summed by kernel
 * and direction, then by layer or shape. */
static void
profile_print (const Profile *profile, const char *case_name, int n_iterations,
               double timed_median_s, double sgemm_gflops)
{
  double total_ms = 0.0;
  for (guint i = 0; i < profile->entries->len; i++) {
    const ProfileEntry *entry = g_ptr_array_index (profile->entries, i);
    total_ms += (double) entry->microseconds * 1e-3 / n_iterations;
  }
  printf ("profile %s: %.1f ms per iteration in kernels (the unprofiled median was %.1f ms); "
          "percentages of the kernels' time; GFLOP/s against sgemm 1024^3 = %.1f\n",
          case_name, total_ms, timed_median_s * 1e3, sgemm_gflops);

  printf (" by kernel:\n");
  GPtrArray *seen = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < profile->entries->len; i++) {
    const ProfileEntry *first = g_ptr_array_index (profile->entries, i);
    char *key = g_strconcat (first->kernel, " ", first->direction, NULL);
    gboolean done = FALSE;
    for (guint s = 0; s < seen->len && !done; s++)
      done = strcmp (g_ptr_array_index (seen, s), key) == 0;
    if (done) {
      g_free (key);
      continue;
    }
    g_ptr_array_add (seen, key);
    double us = 0.0, flops = 0.0, calls = 0.0;
    for (guint j = i; j < profile->entries->len; j++) {
      const ProfileEntry *entry = g_ptr_array_index (profile->entries, j);
      if (strcmp (entry->kernel, first->kernel) == 0 &&
          strcmp (entry->direction, first->direction) == 0) {
        us += (double) entry->microseconds;
        flops += entry->flops;
        calls += (double) entry->calls;
      }
    }
    print_profile_row (first->kernel, first->direction, "", us * 1e-3 / n_iterations, total_ms,
                       flops / n_iterations, calls / n_iterations, sgemm_gflops);
  }
  g_ptr_array_unref (seen);

  printf (" by layer or shape:\n");
  for (guint i = 0; i < profile->entries->len; i++) {
    const ProfileEntry *entry = g_ptr_array_index (profile->entries, i);
    if (entry->detail[0] == '\0')
      continue;
    print_profile_row (entry->kernel, entry->direction, entry->detail,
                       (double) entry->microseconds * 1e-3 / n_iterations, total_ms,
                       entry->flops / n_iterations, (double) entry->calls / n_iterations,
                       sgemm_gflops);
  }
  fflush (stdout);
}

/* ---- sgemm rate ---------------------------------------------------------------------------- */

typedef struct
{
  const char *name;
  CBLAS_TRANSPOSE transpose_a;
  CBLAS_TRANSPOSE transpose_b;
  int m, n, k;
  int lda, ldb; /* 0: packed */
} SgemmShape;

/* C [m, n] = op(A) [m, k] · op(B) [k, n], row-major; the median rate over `reps` calls. */
static double
measure_sgemm (const SgemmShape *shape, int reps)
{
  int rows_a = shape->transpose_a == CblasNoTrans ? shape->m : shape->k;
  int cols_a = shape->transpose_a == CblasNoTrans ? shape->k : shape->m;
  int rows_b = shape->transpose_b == CblasNoTrans ? shape->k : shape->n;
  int cols_b = shape->transpose_b == CblasNoTrans ? shape->n : shape->k;
  int lda = shape->lda > 0 ? shape->lda : cols_a;
  int ldb = shape->ldb > 0 ? shape->ldb : cols_b;
  gsize a_floats = (gsize) rows_a * lda, b_floats = (gsize) rows_b * ldb;
  float *a = g_new (float, a_floats);
  float *b = g_new (float, b_floats);
  float *c = g_new0 (float, (gsize) shape->m * shape->n);
  fill_normal (a, a_floats, 1, 1.0f);
  fill_normal (b, b_floats, 2, 1.0f);
  double *times = g_new (double, reps);
  for (int rep = -2; rep < reps; rep++) {
    gint64 start = g_get_monotonic_time ();
    cblas_sgemm (CblasRowMajor, shape->transpose_a, shape->transpose_b, shape->m, shape->n,
                 shape->k, 1.0f, a, lda, b, ldb, 0.0f, c, shape->n);
    if (rep >= 0)
      times[rep] = seconds_since (start);
  }
  double rate = 2.0 * shape->m * shape->n * shape->k / median_of (times, reps) * 1e-9;
  g_free (times);
  g_free (a);
  g_free (b);
  g_free (c);
  return rate;
}

static void
run_sgemm (const Options *options)
{
  static const SgemmShape shapes[] = {
    { "1024^3", CblasNoTrans, CblasNoTrans, 1024, 1024, 1024, 0, 0 },
    /* transformer-w256: linear1 forward (N·T × M × C), linear2 forward, a weight gradient */
    { "w256 mlp-in forward", CblasNoTrans, CblasTrans, 12800, 1024, 256, 0, 0 },
    { "w256 mlp-out forward", CblasNoTrans, CblasTrans, 12800, 256, 1024, 0, 0 },
    { "w256 mlp-in weight grad", CblasTrans, CblasNoTrans, 1024, 256, 12800, 0, 0 },
    /* one head's scores q·kᵀ inside the packed qkv [T, 3C] (T = 400, D = 32) */
    { "w256 attention scores", CblasNoTrans, CblasTrans, 400, 400, 32, 768, 768 },
    /* one head's probs·v */
    { "w256 attention probs.v", CblasNoTrans, CblasNoTrans, 400, 32, 400, 400, 768 },
    /* a ResNet stage-1 3×3 convolution as im2col: OC × pixels of 32 images × IC·9 */
    { "resnet 64ch 16x16 im2col", CblasNoTrans, CblasNoTrans, 64, 8192, 576, 0, 0 },
  };
  CpuSample before, after;
  cpu_sample (&before);
  printf ("{\"engine\":\"ours\",\"case\":\"sgemm\",\"threads\":%d,\"shapes\":[", options->threads);
  for (gsize i = 0; i < G_N_ELEMENTS (shapes); i++) {
    const SgemmShape *s = &shapes[i];
    /* about 0.3 s per shape at 150 GFLOP/s, at least 5 calls */
    double flops = 2.0 * s->m * s->n * s->k;
    int reps = (int) CLAMP (0.3 * 150e9 / flops, 5, 2000);
    double gflops = measure_sgemm (s, reps);
    printf ("%s{\"name\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,\"gflops\":%.2f}", i > 0 ? "," : "",
            s->name, s->m, s->n, s->k, gflops);
    fflush (stdout);
  }
  cpu_sample (&after);
  printf ("],\"foreign_load\":%.3f}\n", foreign_load (&before, &after));
}

/* ---- Parameter registration ---------------------------------------------------------------- */

static const AclipInit init_zeros = { ACLIP_INIT_ZEROS, 0.0f, 0, 0 };
static const AclipInit init_ones = { ACLIP_INIT_ONES, 0.0f, 0, 0 };
static const AclipInit init_linear = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 0, 0 };
static const AclipInit init_xavier = { ACLIP_INIT_XAVIER_UNIFORM, 1.0f, 0, 0 };

static int
register_tensor (AclipParams *params, const char *name, int n_dims, const gint64 *shape,
                 AclipInit init, AclipParamFlags flags)
{
  GError *error = NULL;
  int index = aclip_params_add (params, name, n_dims, shape, init, flags, &error);
  die_on_error (error, name);
  return index;
}

/* Registers a weight of 1 to 4 dimensions (zero sizes end the shape) under "prefix.suffix". */
static int
register_named (AclipParams *params, const char *prefix, const char *suffix, AclipInit init,
                AclipParamFlags flags, gint64 d0, gint64 d1, gint64 d2, gint64 d3)
{
  gint64 shape[4] = { d0, d1, d2, d3 };
  int n_dims = 0;
  while (n_dims < 4 && shape[n_dims] > 0)
    n_dims++;
  char *name = g_strdup_printf ("%s.%s", prefix, suffix);
  int index = register_tensor (params, name, n_dims, shape, init, flags);
  g_free (name);
  return index;
}

/* ---- Transformer encoder ------------------------------------------------------------------- */

#define MAX_LAYERS 8

typedef struct
{
  int channels;
  int n_layers;
  int n_heads;
  int hidden;
  int seq_len;
  int batch;
} TransformerSize;

static const TransformerSize transformer_w256 = { 256, 4, 8, 1024, 400, 32 };
static const TransformerSize transformer_w128 = { 128, 4, 4, 512, 389, 32 };

/* Tensor indices of one block in the parameter table. */
typedef struct
{
  int attn_in_weight, attn_in_bias, attn_out_weight, attn_out_bias;
  int mlp_in_weight, mlp_in_bias, mlp_out_weight, mlp_out_bias;
  int ln1_weight, ln1_bias, ln2_weight, ln2_bias;
} TransformerBlockIndices;

typedef struct
{
  AclipThreadPool *pool;
  TransformerSize size;
  AclipTransformerConfig config;
  gboolean training;
  gboolean store_probs;
  AclipAdamWConfig adamw;
  AclipParams *params;
  AclipTransformerParams blocks[MAX_LAYERS];
  AclipTransformerParams block_grads[MAX_LAYERS];
  float *norm_weight, *norm_bias, *norm_weight_grad, *norm_bias_grad;
  AclipArena *arena;
  /* Training: one set per block; inference: set 0 serves every block in turn. */
  AclipTransformerActivations activations[MAX_LAYERS];
  float *hidden[MAX_LAYERS + 1]; /* [N, C]: the input, then each block's output */
  float *output;                 /* [N, C] after the final LayerNorm */
  float *norm_mean, *norm_rstd;  /* [N] */
  float *target;                 /* [N, C] */
  float *d_output;               /* [N, C] */
  float *d_hidden[2];            /* [N, C] */
  float *workspace;
  LossTrace losses;
} TransformerModel;

/* aclip_params_value or aclip_params_grad */
typedef float *(*TensorAccessor) (AclipParams *params, int index);

static void
bind_block (AclipParams *params, const TransformerBlockIndices *ix, AclipTransformerParams *out,
            TensorAccessor tensor)
{
  out->attn_in_weight = tensor (params, ix->attn_in_weight);
  out->attn_in_bias = tensor (params, ix->attn_in_bias);
  out->attn_out_weight = tensor (params, ix->attn_out_weight);
  out->attn_out_bias = tensor (params, ix->attn_out_bias);
  out->mlp_in_weight = tensor (params, ix->mlp_in_weight);
  out->mlp_in_bias = tensor (params, ix->mlp_in_bias);
  out->mlp_out_weight = tensor (params, ix->mlp_out_weight);
  out->mlp_out_bias = tensor (params, ix->mlp_out_bias);
  out->ln1_weight = tensor (params, ix->ln1_weight);
  out->ln1_bias = tensor (params, ix->ln1_bias);
  out->ln2_weight = tensor (params, ix->ln2_weight);
  out->ln2_bias = tensor (params, ix->ln2_bias);
}

/* The scratch of the profiled block, laid out as aclip-transformer.c lays out its own. */
typedef struct
{
  float *wide_a; /* [N, max(M, 3C)] */
  float *wide_b; /* [N, M] */
  float *d_mid;  /* [N, C] */
  float *narrow; /* [N, C] */
  float *layernorm;
  float *attention;
} ProfiledScratch;

static gsize
profiled_scratch_layout (const TransformerModel *model, float *base, ProfiledScratch *scratch)
{
  gsize n = (gsize) model->size.batch * model->size.seq_len;
  gsize c = (gsize) model->size.channels, m = (gsize) model->size.hidden;
  gsize wide = MAX (m, 3 * c);
  gsize offsets[6], size = 0;
  offsets[0] = size, size += n * wide;
  offsets[1] = size, size += n * m;
  offsets[2] = size, size += n * c;
  offsets[3] = size, size += n * c;
  offsets[4] = size, size += aclip_layernorm_backward_workspace_size ((gint64) n, (int) c);
  offsets[5] = size,
  size += aclip_attention_workspace_size (model->size.batch, model->size.seq_len,
                                          model->size.seq_len, model->size.n_heads);
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

static TransformerModel *
transformer_new (AclipThreadPool *pool, const TransformerSize *size, gboolean training,
                 gboolean store_probs)
{
  g_assert (size->n_layers <= MAX_LAYERS);
  TransformerModel *model = g_new0 (TransformerModel, 1);
  model->pool = pool;
  model->size = *size;
  model->training = training;
  model->store_probs = training && store_probs;
  model->config = (AclipTransformerConfig){ size->channels, size->n_heads, size->hidden,
                                            LAYERNORM_EPS, ACLIP_GELU_ERF };
  model->adamw = (AclipAdamWConfig){ 0.9, 0.999, 1e-8, WEIGHT_DECAY };
  gint64 c = size->channels, m = size->hidden;

  /* Parameters, named as the state_dict of nn.TransformerEncoder, initialised as PyTorch
   * initialises them (in_proj Xavier-uniform with zero bias; Linear's default elsewhere). */
  model->params = aclip_params_new ();
  TransformerBlockIndices indices[MAX_LAYERS];
  for (int l = 0; l < size->n_layers; l++) {
    char *p = g_strdup_printf ("layers.%d", l);
    AclipInit bias_c = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, c, 0 };
    AclipInit bias_m = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, m, 0 };
    TransformerBlockIndices *ix = &indices[l];
    AclipParams *t = model->params;
    ix->attn_in_weight = register_named (t, p, "self_attn.in_proj_weight", init_xavier,
                                         ACLIP_PARAM_DECAY, 3 * c, c, 0, 0);
    ix->attn_in_bias = register_named (t, p, "self_attn.in_proj_bias", init_zeros, ACLIP_PARAM_NONE,
                                       3 * c, 0, 0, 0);
    ix->attn_out_weight = register_named (t, p, "self_attn.out_proj.weight", init_linear,
                                          ACLIP_PARAM_DECAY, c, c, 0, 0);
    ix->attn_out_bias =
        register_named (t, p, "self_attn.out_proj.bias", init_zeros, ACLIP_PARAM_NONE, c, 0, 0, 0);
    ix->mlp_in_weight =
        register_named (t, p, "linear1.weight", init_linear, ACLIP_PARAM_DECAY, m, c, 0, 0);
    ix->mlp_in_bias = register_named (t, p, "linear1.bias", bias_c, ACLIP_PARAM_NONE, m, 0, 0, 0);
    ix->mlp_out_weight =
        register_named (t, p, "linear2.weight", init_linear, ACLIP_PARAM_DECAY, c, m, 0, 0);
    ix->mlp_out_bias = register_named (t, p, "linear2.bias", bias_m, ACLIP_PARAM_NONE, c, 0, 0, 0);
    ix->ln1_weight = register_named (t, p, "norm1.weight", init_ones, ACLIP_PARAM_NONE, c, 0, 0, 0);
    ix->ln1_bias = register_named (t, p, "norm1.bias", init_zeros, ACLIP_PARAM_NONE, c, 0, 0, 0);
    ix->ln2_weight = register_named (t, p, "norm2.weight", init_ones, ACLIP_PARAM_NONE, c, 0, 0, 0);
    ix->ln2_bias = register_named (t, p, "norm2.bias", init_zeros, ACLIP_PARAM_NONE, c, 0, 0, 0);
    g_free (p);
  }
  int norm_weight =
      register_named (model->params, "norm", "weight", init_ones, ACLIP_PARAM_NONE, c, 0, 0, 0);
  int norm_bias =
      register_named (model->params, "norm", "bias", init_zeros, ACLIP_PARAM_NONE, c, 0, 0, 0);
  GError *error = NULL;
  aclip_params_seal (model->params, training ? ACLIP_PARAMS_TRAINING : ACLIP_PARAMS_INFERENCE,
                     &error);
  die_on_error (error, "sealing the parameters");
  aclip_params_init (model->params, 1, pool);
  for (int l = 0; l < size->n_layers; l++) {
    bind_block (model->params, &indices[l], &model->blocks[l], aclip_params_value);
    if (training)
      bind_block (model->params, &indices[l], &model->block_grads[l], aclip_params_grad);
  }
  model->norm_weight = aclip_params_value (model->params, norm_weight);
  model->norm_bias = aclip_params_value (model->params, norm_bias);
  if (training) {
    model->norm_weight_grad = aclip_params_grad (model->params, norm_weight);
    model->norm_bias_grad = aclip_params_grad (model->params, norm_bias);
  }

  /* Activations and scratch. */
  gsize n = (gsize) size->batch * size->seq_len;
  gsize map = n * (gsize) c;
  int n_activation_sets = training ? size->n_layers : 1;
  gsize activation_floats = aclip_transformer_activations_size (&model->config, size->batch,
                                                                size->seq_len, model->store_probs);
  gsize workspace_floats =
      MAX (aclip_transformer_workspace_size (&model->config, size->batch, size->seq_len),
           aclip_layernorm_backward_workspace_size ((gint64) n, size->channels));
  workspace_floats = MAX (workspace_floats, profiled_scratch_layout (model, NULL, NULL));

  model->arena = aclip_arena_new ();
  AclipArena *arena = model->arena;
  gsize activation_offsets[MAX_LAYERS], hidden_offsets[MAX_LAYERS + 1];
  for (int s = 0; s < n_activation_sets; s++)
    activation_offsets[s] = aclip_arena_reserve (arena, activation_floats);
  for (int l = 0; l <= size->n_layers; l++)
    hidden_offsets[l] = aclip_arena_reserve (arena, map);
  gsize output_offset = aclip_arena_reserve (arena, map);
  gsize mean_offset = aclip_arena_reserve (arena, n);
  gsize rstd_offset = aclip_arena_reserve (arena, n);
  gsize target_offset = aclip_arena_reserve (arena, map);
  gsize d_output_offset = aclip_arena_reserve (arena, map);
  gsize d_hidden_offsets[2] = { aclip_arena_reserve (arena, map),
                                aclip_arena_reserve (arena, map) };
  gsize workspace_offset = aclip_arena_reserve (arena, workspace_floats);
  aclip_arena_seal (arena, &error);
  die_on_error (error, "allocating the activations");

  for (int s = 0; s < n_activation_sets; s++)
    aclip_transformer_activations_bind (&model->activations[s], &model->config, size->batch,
                                        size->seq_len, model->store_probs,
                                        aclip_arena_at (arena, activation_offsets[s]));
  for (int l = 0; l <= size->n_layers; l++)
    model->hidden[l] = aclip_arena_at (arena, hidden_offsets[l]);
  model->output = aclip_arena_at (arena, output_offset);
  model->norm_mean = aclip_arena_at (arena, mean_offset);
  model->norm_rstd = aclip_arena_at (arena, rstd_offset);
  model->target = aclip_arena_at (arena, target_offset);
  model->d_output = aclip_arena_at (arena, d_output_offset);
  model->d_hidden[0] = aclip_arena_at (arena, d_hidden_offsets[0]);
  model->d_hidden[1] = aclip_arena_at (arena, d_hidden_offsets[1]);
  model->workspace = aclip_arena_at (arena, workspace_offset);

  fill_normal (model->hidden[0], map, 11, 1.0f);
  fill_normal (model->target, map, 12, 1.0f);
  return model;
}

static void
transformer_free (TransformerModel *model)
{
  aclip_arena_free (model->arena);
  aclip_params_free (model->params);
  g_free (model);
}

/* The FLOPs of one block's forward: the four linear layers and the two attention products. */
static double
linear_flops (const TransformerModel *model, int in_features, int out_features)
{
  return 2.0 * model->size.batch * model->size.seq_len * in_features * out_features;
}

static double
attention_flops (const TransformerModel *model)
{
  /* scores q·kᵀ and probs·v: 2 · 2·T·T·D per head, summed over heads and sequences */
  return 4.0 * model->size.batch * (double) model->size.seq_len * model->size.seq_len *
         model->size.channels;
}

static double
transformer_block_flops (const TransformerModel *model)
{
  int c = model->size.channels, m = model->size.hidden;
  return linear_flops (model, c, 3 * c) + attention_flops (model) + linear_flops (model, c, c) +
         linear_flops (model, c, m) + linear_flops (model, m, c);
}

static double
transformer_flops (const TransformerModel *model)
{
  double forward = model->size.n_layers * transformer_block_flops (model);
  return model->training ? 3.0 * forward : forward;
}

/* aclip_transformer_block_forward, kernel by kernel, timed. */
static void
profiled_block_forward (TransformerModel *model, const AclipTransformerParams *p,
                        AclipTransformerActivations *a, float *out, const float *in,
                        Profile *profile)
{
  AclipThreadPool *pool = model->pool;
  int c = model->size.channels, m = model->size.hidden;
  int batch = model->size.batch, seq_len = model->size.seq_len;
  gint64 n = (gint64) batch * seq_len;
  ProfiledScratch scratch;
  profiled_scratch_layout (model, model->workspace, &scratch);
  gint64 t;

  t = profile_start (profile);
  aclip_layernorm_forward (pool, a->ln1_out, a->ln1_mean, a->ln1_rstd, in, p->ln1_weight,
                           p->ln1_bias, n, c, LAYERNORM_EPS);
  profile_stop (profile, t, "layernorm", "forward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_forward (pool, a->qkv, a->ln1_out, p->attn_in_weight, p->attn_in_bias, n, c, 3 * c);
  profile_stop (profile, t, "linear", "forward", "qkv C->3C", linear_flops (model, c, 3 * c));
  t = profile_start (profile);
  aclip_self_attention_forward (pool, a->attn, a->probs, a->qkv, NULL, batch, seq_len, c,
                                model->size.n_heads, scratch.attention);
  profile_stop (profile, t, "self-attention", "forward", "", attention_flops (model));
  t = profile_start (profile);
  aclip_linear_residual_forward (pool, a->mid, in, a->attn, p->attn_out_weight, p->attn_out_bias, n,
                                 c, c);
  profile_stop (profile, t, "linear", "forward", "attn-out C->C", linear_flops (model, c, c));
  t = profile_start (profile);
  aclip_layernorm_forward (pool, a->ln2_out, a->ln2_mean, a->ln2_rstd, a->mid, p->ln2_weight,
                           p->ln2_bias, n, c, LAYERNORM_EPS);
  profile_stop (profile, t, "layernorm", "forward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_forward (pool, a->mlp_hidden, a->ln2_out, p->mlp_in_weight, p->mlp_in_bias, n, c, m);
  profile_stop (profile, t, "linear", "forward", "mlp-in C->M", linear_flops (model, c, m));
  t = profile_start (profile);
  aclip_gelu_forward (pool, a->mlp_act, a->mlp_hidden, (gsize) n * m, ACLIP_GELU_ERF);
  profile_stop (profile, t, "gelu", "forward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_residual_forward (pool, out, a->mid, a->mlp_act, p->mlp_out_weight, p->mlp_out_bias,
                                 n, m, c);
  profile_stop (profile, t, "linear", "forward", "mlp-out M->C", linear_flops (model, m, c));
}

/* aclip_transformer_block_backward, kernel by kernel, timed. */
static void
profiled_block_backward (TransformerModel *model, const AclipTransformerParams *p,
                         const AclipTransformerParams *g, const AclipTransformerActivations *a,
                         float *d_in, const float *d_out, const float *in, Profile *profile)
{
  AclipThreadPool *pool = model->pool;
  int c = model->size.channels, m = model->size.hidden;
  int batch = model->size.batch, seq_len = model->size.seq_len;
  gint64 n = (gint64) batch * seq_len;
  ProfiledScratch scratch;
  profiled_scratch_layout (model, model->workspace, &scratch);
  gint64 t;

  float *d_mid = scratch.d_mid;
  t = profile_start (profile);
  memcpy (d_mid, d_out, (gsize) n * c * sizeof (float));
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);

  float *d_act = scratch.wide_a;
  t = profile_start (profile);
  zero_fill (pool, d_act, (gsize) n * m);
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_backward (pool, d_act, g->mlp_out_weight, g->mlp_out_bias, d_out, a->mlp_act,
                         p->mlp_out_weight, n, m, c);
  profile_stop (profile, t, "linear", "backward", "mlp-out M->C", 2.0 * linear_flops (model, m, c));

  float *d_hidden = scratch.wide_b;
  t = profile_start (profile);
  zero_fill (pool, d_hidden, (gsize) n * m);
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
  t = profile_start (profile);
  aclip_gelu_backward (pool, d_hidden, d_act, a->mlp_hidden, (gsize) n * m, ACLIP_GELU_ERF);
  profile_stop (profile, t, "gelu", "backward", "", 0.0);

  float *d_ln2 = scratch.narrow;
  t = profile_start (profile);
  zero_fill (pool, d_ln2, (gsize) n * c);
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_backward (pool, d_ln2, g->mlp_in_weight, g->mlp_in_bias, d_hidden, a->ln2_out,
                         p->mlp_in_weight, n, c, m);
  profile_stop (profile, t, "linear", "backward", "mlp-in C->M", 2.0 * linear_flops (model, c, m));
  t = profile_start (profile);
  aclip_layernorm_backward (pool, d_mid, g->ln2_weight, g->ln2_bias, d_ln2, a->mid, a->ln2_mean,
                            a->ln2_rstd, p->ln2_weight, n, c, scratch.layernorm);
  profile_stop (profile, t, "layernorm", "backward", "", 0.0);

  float *d_attn = scratch.narrow;
  t = profile_start (profile);
  zero_fill (pool, d_attn, (gsize) n * c);
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_backward (pool, d_attn, g->attn_out_weight, g->attn_out_bias, d_mid, a->attn,
                         p->attn_out_weight, n, c, c);
  profile_stop (profile, t, "linear", "backward", "attn-out C->C",
                2.0 * linear_flops (model, c, c));

  float *d_qkv = scratch.wide_a;
  t = profile_start (profile);
  zero_fill (pool, d_qkv, (gsize) n * 3 * c);
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
  t = profile_start (profile);
  aclip_self_attention_backward (pool, d_qkv, d_attn, a->probs, a->qkv, NULL, batch, seq_len, c,
                                 model->size.n_heads, scratch.attention);
  profile_stop (profile, t, "self-attention", "backward", "", 2.0 * attention_flops (model));

  float *d_ln1 = scratch.narrow;
  t = profile_start (profile);
  zero_fill (pool, d_ln1, (gsize) n * c);
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_backward (pool, d_ln1, g->attn_in_weight, g->attn_in_bias, d_qkv, a->ln1_out,
                         p->attn_in_weight, n, c, 3 * c);
  profile_stop (profile, t, "linear", "backward", "qkv C->3C",
                2.0 * linear_flops (model, c, 3 * c));
  t = profile_start (profile);
  aclip_layernorm_backward (pool, d_in, g->ln1_weight, g->ln1_bias, d_ln1, in, a->ln1_mean,
                            a->ln1_rstd, p->ln1_weight, n, c, scratch.layernorm);
  profile_stop (profile, t, "layernorm", "backward", "", 0.0);
  if (d_in != NULL) {
    t = profile_start (profile);
    aclip_add_backward (pool, d_in, NULL, d_mid, (gsize) n * c);
    profile_stop (profile, t, "residual add", "backward", "", 0.0);
  }
}

static void
transformer_forward (TransformerModel *model, Profile *profile)
{
  const TransformerSize *size = &model->size;
  gint64 n = (gint64) size->batch * size->seq_len;
  for (int l = 0; l < size->n_layers; l++) {
    AclipTransformerActivations *a = &model->activations[model->training ? l : 0];
    if (profile == NULL)
      aclip_transformer_block_forward (model->pool, &model->config, &model->blocks[l], a,
                                       model->hidden[l + 1], model->hidden[l], NULL, size->batch,
                                       size->seq_len, model->workspace);
    else
      profiled_block_forward (model, &model->blocks[l], a, model->hidden[l + 1], model->hidden[l],
                              profile);
  }
  gint64 t = profile_start (profile);
  aclip_layernorm_forward (model->pool, model->output, model->norm_mean, model->norm_rstd,
                           model->hidden[size->n_layers], model->norm_weight, model->norm_bias, n,
                           size->channels, LAYERNORM_EPS);
  profile_stop (profile, t, "layernorm", "forward", "", 0.0);
}

static void
transformer_iteration (gpointer data, Profile *profile)
{
  TransformerModel *model = data;
  if (!model->training) {
    transformer_forward (model, profile);
    return;
  }
  const TransformerSize *size = &model->size;
  AclipThreadPool *pool = model->pool;
  gint64 n = (gint64) size->batch * size->seq_len;
  gsize map = (gsize) n * size->channels;
  gint64 t;

  t = profile_start (profile);
  aclip_params_zero_grads (model->params);
  profile_stop (profile, t, "zero grads", "step", "", 0.0);

  transformer_forward (model, profile);

  t = profile_start (profile);
  float loss = aclip_mse_forward (model->output, model->target, n, size->channels);
  zero_fill (pool, model->d_output, map);
  aclip_mse_backward (model->d_output, model->output, model->target, n, size->channels, 1.0f);
  profile_stop (profile, t, "mse loss", "both", "", 0.0);
  loss_trace_add (&model->losses, loss);

  float *d_current = model->d_hidden[0];
  t = profile_start (profile);
  zero_fill (pool, d_current, map);
  profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
  t = profile_start (profile);
  aclip_layernorm_backward (pool, d_current, model->norm_weight_grad, model->norm_bias_grad,
                            model->d_output, model->hidden[size->n_layers], model->norm_mean,
                            model->norm_rstd, model->norm_weight, n, size->channels,
                            model->workspace);
  profile_stop (profile, t, "layernorm", "backward", "", 0.0);

  for (int l = size->n_layers - 1; l >= 0; l--) {
    /* The network's input needs no gradient. */
    float *d_previous = NULL;
    if (l > 0) {
      d_previous = d_current == model->d_hidden[0] ? model->d_hidden[1] : model->d_hidden[0];
      t = profile_start (profile);
      zero_fill (pool, d_previous, map);
      profile_stop (profile, t, "zero/copy", "backward", "", 0.0);
    }
    if (profile == NULL)
      aclip_transformer_block_backward (pool, &model->config, &model->blocks[l],
                                        &model->block_grads[l], &model->activations[l], d_previous,
                                        d_current, model->hidden[l], NULL, size->batch,
                                        size->seq_len, model->workspace);
    else
      profiled_block_backward (model, &model->blocks[l], &model->block_grads[l],
                               &model->activations[l], d_previous, d_current, model->hidden[l],
                               profile);
    d_current = d_previous;
  }

  t = profile_start (profile);
  aclip_adamw_step (pool, model->params, &model->adamw, LEARNING_RATE);
  profile_stop (profile, t, "adamw", "step", "", 0.0);
}

/* ---- ResNet-18 ----------------------------------------------------------------------------- */

#define RESNET_BLOCKS 8
#define RESNET_WIDTH  512 /* channels of the last stage */

typedef struct
{
  AclipResBlockShape shape;
  AclipResBlockParams params;
  AclipResBlockParams grads;
  AclipResBlockRunningStats running;
  float *activations; /* [aclip_resblock_activations_size] */
  float *output;      /* [B, OC, OH, OW] */
} ResNetBlock;

typedef struct
{
  AclipThreadPool *pool;
  gboolean training;
  gboolean small_stem; /* 3×3/1 stem convolution, no max-pool */
  int batch;
  int image_size;
  int n_classes;
  AclipAdamWConfig adamw;
  AclipParams *params;
  AclipArena *arena;

  AclipConv2dShape stem_conv;
  AclipPool2dShape stem_pool;
  float *stem_weight, *stem_bn_weight, *stem_bn_bias;
  float *stem_weight_grad, *stem_bn_weight_grad, *stem_bn_bias_grad;
  float *stem_running_mean, *stem_running_var;
  float *images;        /* [B, 3, S, S] */
  float *stem_conv_out; /* [B, 64, S', S'] before BN */
  float *stem_bn_out;   /* after BN */
  float *stem_relu_out; /* after ReLU */
  float *stem_pool_out; /* after the max-pool (torchvision stem) */
  gint32 *stem_argmax;
  float *stem_mean, *stem_invstd;

  ResNetBlock blocks[RESNET_BLOCKS];
  float *fc_weight, *fc_bias, *fc_weight_grad, *fc_bias_grad;
  float *pooled, *logits, *probs; /* [B, 512], [B, K], [B, K] */
  gint32 *labels;
  float *d_logits, *d_pooled;
  gsize largest_map;
  float *gradients[3]; /* [largest_map] each */
  float *profile_maps; /* [4 · largest block map]: the profiled block's gradients in flight */
  float *workspace;
  LossTrace losses;
  /* Profile mode: the convolutions' algorithm (for 3×3/1 layers) and images per sgemm. */
  AclipConvAlgorithm conv_algorithm;
  int conv_images_per_gemm;
} ResNetModel;

static const float *
stem_output (const ResNetModel *model)
{
  return model->small_stem ? model->stem_relu_out : model->stem_pool_out;
}

static gsize
block_map_floats (const AclipResBlockShape *shape)
{
  return (gsize) shape->batch * shape->out_channels * aclip_resblock_out_height (shape) *
         aclip_resblock_out_width (shape);
}

static gsize
block_input_floats (const AclipResBlockShape *shape)
{
  return (gsize) shape->batch * shape->in_channels * shape->in_height * shape->in_width;
}

static double
conv_flops (const AclipConv2dShape *s)
{
  return 2.0 * s->batch * s->out_channels * aclip_conv2d_out_height (s) *
         aclip_conv2d_out_width (s) * s->in_channels * s->kernel_height * s->kernel_width;
}

/* The convolutions of a block, as aclip-resblock.c builds them. */
static AclipConv2dShape
resnet_conv (int batch, int in_channels, int size, int out_channels, int kernel, int stride)
{
  AclipConv2dShape shape = { 0 };
  shape.batch = batch;
  shape.in_channels = in_channels;
  shape.in_height = shape.in_width = size;
  shape.out_channels = out_channels;
  shape.kernel_height = shape.kernel_width = kernel;
  shape.stride_height = shape.stride_width = stride;
  shape.pad_height = shape.pad_width = (kernel - 1) / 2;
  return shape;
}

static void
block_convs (const AclipResBlockShape *s, AclipConv2dShape *conv1, AclipConv2dShape *conv2,
             AclipConv2dShape *shortcut)
{
  int out_size = aclip_resblock_out_height (s);
  *conv1 = resnet_conv (s->batch, s->in_channels, s->in_height, s->out_channels, 3, s->stride);
  *conv2 = resnet_conv (s->batch, s->out_channels, out_size, s->out_channels, 3, 1);
  *shortcut = resnet_conv (s->batch, s->in_channels, s->in_height, s->out_channels, 1, s->stride);
}

/* A convolution of the profiled model, with the choices of --conv-algorithm and
 * --conv-images-per-gemm. */
static AclipConv2dShape
profiled_conv_shape (const ResNetModel *model, const AclipConv2dShape *shape)
{
  AclipConv2dShape chosen = *shape;
  chosen.images_per_gemm = model->conv_images_per_gemm;
  if (shape->kernel_height == 3 && shape->stride_height == 1)
    chosen.algorithm = model->conv_algorithm;
  return chosen;
}

static double
resnet_flops (const ResNetModel *model)
{
  double stem = conv_flops (&model->stem_conv);
  double rest = 2.0 * model->batch * RESNET_WIDTH * model->n_classes;
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    AclipConv2dShape c1, c2, sc;
    block_convs (&model->blocks[i].shape, &c1, &c2, &sc);
    rest += conv_flops (&c1) + conv_flops (&c2);
    if (aclip_resblock_has_projection (&model->blocks[i].shape))
      rest += conv_flops (&sc);
  }
  /* Backward: input and weight gradients everywhere but the stem (weight gradient only). */
  return model->training ? 2.0 * stem + 3.0 * rest : stem + rest;
}

static void
register_batchnorm (AclipParams *params, const char *prefix, gint64 channels, int *weight,
                    int *bias)
{
  *weight =
      register_named (params, prefix, "weight", init_ones, ACLIP_PARAM_NONE, channels, 0, 0, 0);
  *bias = register_named (params, prefix, "bias", init_zeros, ACLIP_PARAM_NONE, channels, 0, 0, 0);
}

typedef struct
{
  int conv1, bn1_weight, bn1_bias, conv2, bn2_weight, bn2_bias;
  int shortcut, shortcut_bn_weight, shortcut_bn_bias; /* −1 without projection */
} ResNetBlockIndices;

static void
bind_resblock (AclipParams *params, const ResNetBlockIndices *ix, AclipResBlockParams *out,
               TensorAccessor tensor)
{
  out->conv1_weight = tensor (params, ix->conv1);
  out->bn1_weight = tensor (params, ix->bn1_weight);
  out->bn1_bias = tensor (params, ix->bn1_bias);
  out->conv2_weight = tensor (params, ix->conv2);
  out->bn2_weight = tensor (params, ix->bn2_weight);
  out->bn2_bias = tensor (params, ix->bn2_bias);
  gboolean projection = ix->shortcut >= 0;
  out->shortcut_weight = projection ? tensor (params, ix->shortcut) : NULL;
  out->shortcut_bn_weight = projection ? tensor (params, ix->shortcut_bn_weight) : NULL;
  out->shortcut_bn_bias = projection ? tensor (params, ix->shortcut_bn_bias) : NULL;
}

/* Running statistics: mean 0, variance 1, as PyTorch starts them. */
static float *
running_stats (AclipArena *arena, gsize offset, int channels, gboolean variance)
{
  float *stats = aclip_arena_at (arena, offset);
  for (int i = 0; i < channels; i++)
    stats[i] = variance ? 1.0f : 0.0f;
  return stats;
}

static ResNetModel *
resnet_new (AclipThreadPool *pool, gboolean small_stem, gboolean training, gboolean profile,
            AclipConvAlgorithm conv_algorithm, int conv_images_per_gemm)
{
  ResNetModel *model = g_new0 (ResNetModel, 1);
  model->conv_algorithm = conv_algorithm;
  model->conv_images_per_gemm = conv_images_per_gemm;
  model->pool = pool;
  model->training = training;
  model->small_stem = small_stem;
  model->batch = 32;
  model->image_size = 64;
  model->n_classes = 10;
  model->adamw = (AclipAdamWConfig){ 0.9, 0.999, 1e-8, WEIGHT_DECAY };
  int B = model->batch;

  /* Stem: 7×7/2 convolution (pad 3) and 3×3/2 max-pool (pad 1), or a 3×3/1 convolution. */
  model->stem_conv = small_stem ? resnet_conv (B, 3, model->image_size, 64, 3, 1)
                                : resnet_conv (B, 3, model->image_size, 64, 7, 2);
  int stem_size = aclip_conv2d_out_height (&model->stem_conv);
  model->stem_pool = (AclipPool2dShape){ B, 64, stem_size, stem_size, 3, 3, 2, 2, 1, 1 };
  int stage_input = small_stem ? stem_size : aclip_pool2d_out_height (&model->stem_pool);

  /* Four stages of two basic blocks. */
  static const int widths[4] = { 64, 128, 256, 512 };
  int in_channels = 64, size = stage_input;
  for (int stage = 0; stage < 4; stage++)
    for (int j = 0; j < 2; j++) {
      ResNetBlock *block = &model->blocks[2 * stage + j];
      int stride = stage > 0 && j == 0 ? 2 : 1;
      block->shape = (AclipResBlockShape){ B, in_channels, widths[stage], size, size, stride };
      in_channels = widths[stage];
      size = aclip_resblock_out_height (&block->shape);
    }

  /* Parameters, named as a torchvision ResNet's state_dict. */
  AclipParams *params = aclip_params_new ();
  model->params = params;
  int stem_weight =
      register_named (params, "conv1", "weight", init_linear, ACLIP_PARAM_DECAY, 64, 3,
                      model->stem_conv.kernel_height, model->stem_conv.kernel_width);
  int stem_bn_weight, stem_bn_bias;
  register_batchnorm (params, "bn1", 64, &stem_bn_weight, &stem_bn_bias);
  ResNetBlockIndices indices[RESNET_BLOCKS];
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    const AclipResBlockShape *s = &model->blocks[i].shape;
    char *p = g_strdup_printf ("layer%d.%d", i / 2 + 1, i % 2);
    char *bn = NULL;
    ResNetBlockIndices *ix = &indices[i];
    ix->conv1 = register_named (params, p, "conv1.weight", init_linear, ACLIP_PARAM_DECAY,
                                s->out_channels, s->in_channels, 3, 3);
    bn = g_strconcat (p, ".bn1", NULL);
    register_batchnorm (params, bn, s->out_channels, &ix->bn1_weight, &ix->bn1_bias);
    g_free (bn);
    ix->conv2 = register_named (params, p, "conv2.weight", init_linear, ACLIP_PARAM_DECAY,
                                s->out_channels, s->out_channels, 3, 3);
    bn = g_strconcat (p, ".bn2", NULL);
    register_batchnorm (params, bn, s->out_channels, &ix->bn2_weight, &ix->bn2_bias);
    g_free (bn);
    ix->shortcut = ix->shortcut_bn_weight = ix->shortcut_bn_bias = -1;
    if (aclip_resblock_has_projection (s)) {
      ix->shortcut = register_named (params, p, "downsample.0.weight", init_linear,
                                     ACLIP_PARAM_DECAY, s->out_channels, s->in_channels, 1, 1);
      bn = g_strconcat (p, ".downsample.1", NULL);
      register_batchnorm (params, bn, s->out_channels, &ix->shortcut_bn_weight,
                          &ix->shortcut_bn_bias);
      g_free (bn);
    }
    g_free (p);
  }
  AclipInit fc_bias_init = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, RESNET_WIDTH, 0 };
  int fc_weight = register_named (params, "fc", "weight", init_linear, ACLIP_PARAM_DECAY,
                                  model->n_classes, RESNET_WIDTH, 0, 0);
  int fc_bias = register_named (params, "fc", "bias", fc_bias_init, ACLIP_PARAM_NONE,
                                model->n_classes, 0, 0, 0);
  GError *error = NULL;
  aclip_params_seal (params, training ? ACLIP_PARAMS_TRAINING : ACLIP_PARAMS_INFERENCE, &error);
  die_on_error (error, "sealing the parameters");
  aclip_params_init (params, 1, pool);

  model->stem_weight = aclip_params_value (params, stem_weight);
  model->stem_bn_weight = aclip_params_value (params, stem_bn_weight);
  model->stem_bn_bias = aclip_params_value (params, stem_bn_bias);
  model->fc_weight = aclip_params_value (params, fc_weight);
  model->fc_bias = aclip_params_value (params, fc_bias);
  if (training) {
    model->stem_weight_grad = aclip_params_grad (params, stem_weight);
    model->stem_bn_weight_grad = aclip_params_grad (params, stem_bn_weight);
    model->stem_bn_bias_grad = aclip_params_grad (params, stem_bn_bias);
    model->fc_weight_grad = aclip_params_grad (params, fc_weight);
    model->fc_bias_grad = aclip_params_grad (params, fc_bias);
  }
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    bind_resblock (params, &indices[i], &model->blocks[i].params, aclip_params_value);
    if (training)
      bind_resblock (params, &indices[i], &model->blocks[i].grads, aclip_params_grad);
  }

  /* Activations, running statistics and scratch. */
  AclipArena *arena = aclip_arena_new ();
  model->arena = arena;
  gsize stem_map = (gsize) B * 64 * stem_size * stem_size;
  gsize pool_map = (gsize) B * 64 * stage_input * stage_input;
  AclipConv2dShape profiled_stem = profiled_conv_shape (model, &model->stem_conv);
  gsize largest_block_map = 0;
  gsize workspace_floats = MAX (aclip_conv2d_workspace_size (&model->stem_conv),
                                aclip_conv2d_workspace_size (&profiled_stem));
  model->largest_map = stem_map;
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    const AclipResBlockShape *s = &model->blocks[i].shape;
    largest_block_map = MAX (largest_block_map, block_map_floats (s));
    model->largest_map = MAX (model->largest_map, block_input_floats (s));
    workspace_floats = MAX (workspace_floats, aclip_resblock_workspace_size (s));
    AclipConv2dShape convs[3];
    block_convs (s, &convs[0], &convs[1], &convs[2]);
    for (int k = 0; k < 3; k++) {
      AclipConv2dShape chosen = profiled_conv_shape (model, &convs[k]);
      workspace_floats = MAX (workspace_floats, aclip_conv2d_workspace_size (&chosen));
    }
  }
  gsize images_offset =
      aclip_arena_reserve (arena, (gsize) B * 3 * model->image_size * model->image_size);
  gsize stem_offsets[4], stats_offsets[4];
  for (int i = 0; i < 3; i++)
    stem_offsets[i] = aclip_arena_reserve (arena, stem_map);
  stem_offsets[3] = aclip_arena_reserve (arena, pool_map);
  gsize argmax_offset = aclip_arena_reserve (arena, pool_map); /* gint32, as many as floats */
  for (int i = 0; i < 4; i++)
    stats_offsets[i] = aclip_arena_reserve (arena, 64);
  gsize block_offsets[RESNET_BLOCKS][2], block_stats_offsets[RESNET_BLOCKS][6];
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    const AclipResBlockShape *s = &model->blocks[i].shape;
    block_offsets[i][0] = aclip_arena_reserve (arena, aclip_resblock_activations_size (s));
    block_offsets[i][1] = aclip_arena_reserve (arena, block_map_floats (s));
    for (int k = 0; k < 6; k++)
      block_stats_offsets[i][k] = aclip_arena_reserve (arena, (gsize) s->out_channels);
  }
  gsize pooled_offset = aclip_arena_reserve (arena, (gsize) B * RESNET_WIDTH);
  gsize logits_offset = aclip_arena_reserve (arena, (gsize) B * model->n_classes);
  gsize probs_offset = aclip_arena_reserve (arena, (gsize) B * model->n_classes);
  gsize d_logits_offset = aclip_arena_reserve (arena, (gsize) B * model->n_classes);
  gsize d_pooled_offset = aclip_arena_reserve (arena, (gsize) B * RESNET_WIDTH);
  gsize gradient_offsets[3] = { 0, 0, 0 };
  if (training)
    for (int i = 0; i < 3; i++)
      gradient_offsets[i] = aclip_arena_reserve (arena, model->largest_map);
  gsize profile_maps_offset = 0;
  if (profile)
    profile_maps_offset = aclip_arena_reserve (arena, 4 * largest_block_map);
  gsize workspace_offset = aclip_arena_reserve (arena, workspace_floats);
  aclip_arena_seal (arena, &error);
  die_on_error (error, "allocating the activations");

  model->images = aclip_arena_at (arena, images_offset);
  model->stem_conv_out = aclip_arena_at (arena, stem_offsets[0]);
  model->stem_bn_out = aclip_arena_at (arena, stem_offsets[1]);
  model->stem_relu_out = aclip_arena_at (arena, stem_offsets[2]);
  model->stem_pool_out = aclip_arena_at (arena, stem_offsets[3]);
  model->stem_argmax = (gint32 *) aclip_arena_at (arena, argmax_offset);
  model->stem_mean = aclip_arena_at (arena, stats_offsets[0]);
  model->stem_invstd = aclip_arena_at (arena, stats_offsets[1]);
  model->stem_running_mean = running_stats (arena, stats_offsets[2], 64, FALSE);
  model->stem_running_var = running_stats (arena, stats_offsets[3], 64, TRUE);
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    ResNetBlock *block = &model->blocks[i];
    int oc = block->shape.out_channels;
    gboolean projection = aclip_resblock_has_projection (&block->shape);
    block->activations = aclip_arena_at (arena, block_offsets[i][0]);
    block->output = aclip_arena_at (arena, block_offsets[i][1]);
    block->running.bn1_mean = running_stats (arena, block_stats_offsets[i][0], oc, FALSE);
    block->running.bn1_var = running_stats (arena, block_stats_offsets[i][1], oc, TRUE);
    block->running.bn2_mean = running_stats (arena, block_stats_offsets[i][2], oc, FALSE);
    block->running.bn2_var = running_stats (arena, block_stats_offsets[i][3], oc, TRUE);
    block->running.shortcut_bn_mean =
        projection ? running_stats (arena, block_stats_offsets[i][4], oc, FALSE) : NULL;
    block->running.shortcut_bn_var =
        projection ? running_stats (arena, block_stats_offsets[i][5], oc, TRUE) : NULL;
  }
  model->pooled = aclip_arena_at (arena, pooled_offset);
  model->logits = aclip_arena_at (arena, logits_offset);
  model->probs = aclip_arena_at (arena, probs_offset);
  model->d_logits = aclip_arena_at (arena, d_logits_offset);
  model->d_pooled = aclip_arena_at (arena, d_pooled_offset);
  if (training)
    for (int i = 0; i < 3; i++)
      model->gradients[i] = aclip_arena_at (arena, gradient_offsets[i]);
  if (profile)
    model->profile_maps = aclip_arena_at (arena, profile_maps_offset);
  model->workspace = aclip_arena_at (arena, workspace_offset);

  fill_normal (model->images, (gsize) B * 3 * model->image_size * model->image_size, 21, 1.0f);
  model->labels = g_new (gint32, B);
  AclipRng rng;
  aclip_rng_init (&rng, 22, 0, 0);
  for (int b = 0; b < B; b++)
    model->labels[b] = (gint32) aclip_rng_below (&rng, (guint64) model->n_classes);
  return model;
}

static void
resnet_free (ResNetModel *model)
{
  aclip_arena_free (model->arena);
  aclip_params_free (model->params);
  g_free (model->labels);
  g_free (model);
}

/* What the profiled block keeps for its backward, within the block's activations (the same
 * amount as aclip-resblock.c keeps). */
typedef struct
{
  float *conv1_out, *relu1_out, *conv2_out, *shortcut_conv_out;
  float *bn1_mean, *bn1_invstd, *bn2_mean, *bn2_invstd, *shortcut_mean, *shortcut_invstd;
} ProfiledBlockSaved;

static ProfiledBlockSaved
profiled_block_saved (const ResNetBlock *block)
{
  gsize map = block_map_floats (&block->shape), oc = (gsize) block->shape.out_channels;
  gboolean projection = aclip_resblock_has_projection (&block->shape);
  float *base = block->activations;
  ProfiledBlockSaved saved;
  saved.conv1_out = base;
  saved.relu1_out = base + map;
  saved.conv2_out = base + 2 * map;
  float *next = base + 3 * map;
  saved.shortcut_conv_out = projection ? next : NULL;
  next += projection ? map : 0;
  saved.bn1_mean = next;
  saved.bn1_invstd = next + oc;
  saved.bn2_mean = next + 2 * oc;
  saved.bn2_invstd = next + 3 * oc;
  saved.shortcut_mean = projection ? next + 4 * oc : NULL;
  saved.shortcut_invstd = projection ? next + 5 * oc : NULL;
  g_assert ((gsize) ((projection ? next + 6 * oc : next + 4 * oc) - base) ==
            aclip_resblock_activations_size (&block->shape));
  return saved;
}

static void
conv_detail (const AclipConv2dShape *s, char *detail, gsize size)
{
  g_snprintf (detail, size, "%dx%d/%d %d->%d @%dx%d", s->kernel_height, s->kernel_width,
              s->stride_height, s->in_channels, s->out_channels, s->in_height, s->in_width);
}

static void
profiled_conv_forward (ResNetModel *model, const AclipConv2dShape *shape, float *output,
                       const float *input, const float *weight, Profile *profile)
{
  char detail[64];
  conv_detail (shape, detail, sizeof detail);
  AclipConv2dShape chosen = profiled_conv_shape (model, shape);
  gint64 t = profile_start (profile);
  aclip_conv2d_forward (model->pool, &chosen, output, input, weight, NULL, model->workspace);
  profile_stop (profile, t, "conv2d", "forward", detail, conv_flops (shape));
}

static void
profiled_conv_backward (ResNetModel *model, const AclipConv2dShape *shape, float *dinput,
                        float *dweight, const float *doutput, const float *input,
                        const float *weight, Profile *profile)
{
  char detail[64];
  conv_detail (shape, detail, sizeof detail);
  AclipConv2dShape chosen = profiled_conv_shape (model, shape);
  gint64 t = profile_start (profile);
  aclip_conv2d_backward (model->pool, &chosen, dinput, dweight, NULL, doutput, input, weight,
                         model->workspace);
  profile_stop (profile, t, "conv2d", "backward", detail,
                (dinput != NULL ? 2.0 : 1.0) * conv_flops (shape));
}

static void
profiled_batchnorm_forward (ResNetModel *model, float *output, float *mean, float *invstd,
                            float *running_mean, float *running_var, const float *input,
                            const float *weight, const float *bias, int channels, int spatial,
                            Profile *profile)
{
  gint64 t = profile_start (profile);
  aclip_batchnorm2d_forward (model->pool, output, mean, invstd, running_mean, running_var, input,
                             weight, bias, model->batch, channels, spatial, BATCHNORM_EPS,
                             BATCHNORM_MOMENTUM, model->training);
  profile_stop (profile, t, "batchnorm", "forward", "", 0.0);
}

static void
profiled_batchnorm_backward (ResNetModel *model, float *dinput, float *dweight, float *dbias,
                             const float *doutput, const float *input, const float *mean,
                             const float *invstd, const float *weight, int channels, int spatial,
                             Profile *profile)
{
  gint64 t = profile_start (profile);
  aclip_batchnorm2d_backward (model->pool, dinput, dweight, dbias, doutput, input, mean, invstd,
                              weight, model->batch, channels, spatial, model->training);
  profile_stop (profile, t, "batchnorm", "backward", "", 0.0);
}

static void
profiled_zero (ResNetModel *model, float *data, gsize n, const char *direction, Profile *profile)
{
  gint64 t = profile_start (profile);
  zero_fill (model->pool, data, n);
  profile_stop (profile, t, "zero/copy", direction, "", 0.0);
}

/* aclip_resblock_forward, kernel by kernel, timed. The block's own fused element-wise loops
 * (ReLU in place; add and ReLU) become aclip_relu_forward and aclip_add_forward calls. */
static void
profiled_resblock_forward (ResNetModel *model, ResNetBlock *block, const float *input,
                           Profile *profile)
{
  const AclipResBlockShape *s = &block->shape;
  const AclipResBlockParams *p = &block->params;
  const AclipResBlockRunningStats *r = &block->running;
  ProfiledBlockSaved saved = profiled_block_saved (block);
  AclipConv2dShape c1, c2, sc;
  block_convs (s, &c1, &c2, &sc);
  int oc = s->out_channels;
  int spatial = aclip_resblock_out_height (s) * aclip_resblock_out_width (s);
  gsize map = block_map_floats (s);
  float *normalised = model->profile_maps; /* [map] */
  float *shortcut_out = normalised + map;  /* [map] */
  float *sum = shortcut_out + map;         /* [map] */
  gint64 t;

  profiled_conv_forward (model, &c1, saved.conv1_out, input, p->conv1_weight, profile);
  profiled_batchnorm_forward (model, normalised, saved.bn1_mean, saved.bn1_invstd, r->bn1_mean,
                              r->bn1_var, saved.conv1_out, p->bn1_weight, p->bn1_bias, oc, spatial,
                              profile);
  t = profile_start (profile);
  aclip_relu_forward (model->pool, saved.relu1_out, normalised, map);
  profile_stop (profile, t, "relu/add", "forward", "", 0.0);

  profiled_conv_forward (model, &c2, saved.conv2_out, saved.relu1_out, p->conv2_weight, profile);
  profiled_batchnorm_forward (model, normalised, saved.bn2_mean, saved.bn2_invstd, r->bn2_mean,
                              r->bn2_var, saved.conv2_out, p->bn2_weight, p->bn2_bias, oc, spatial,
                              profile);
  const float *shortcut = input;
  if (aclip_resblock_has_projection (s)) {
    profiled_conv_forward (model, &sc, saved.shortcut_conv_out, input, p->shortcut_weight, profile);
    profiled_batchnorm_forward (model, shortcut_out, saved.shortcut_mean, saved.shortcut_invstd,
                                r->shortcut_bn_mean, r->shortcut_bn_var, saved.shortcut_conv_out,
                                p->shortcut_bn_weight, p->shortcut_bn_bias, oc, spatial, profile);
    shortcut = shortcut_out;
  }
  t = profile_start (profile);
  aclip_add_forward (model->pool, sum, normalised, shortcut, map);
  aclip_relu_forward (model->pool, block->output, sum, map);
  profile_stop (profile, t, "relu/add", "forward", "", 0.0);
}

/* aclip_resblock_backward, kernel by kernel, timed. */
static void
profiled_resblock_backward (ResNetModel *model, ResNetBlock *block, float *dinput,
                            const float *doutput, const float *input, Profile *profile)
{
  const AclipResBlockShape *s = &block->shape;
  const AclipResBlockParams *p = &block->params;
  const AclipResBlockParams *g = &block->grads;
  ProfiledBlockSaved saved = profiled_block_saved (block);
  AclipConv2dShape c1, c2, sc;
  block_convs (s, &c1, &c2, &sc);
  int oc = s->out_channels;
  int spatial = aclip_resblock_out_height (s) * aclip_resblock_out_width (s);
  gsize map = block_map_floats (s);
  float *dsum = model->profile_maps;
  float *gradient_a = dsum + map, *gradient_b = gradient_a + map, *gradient_c = gradient_b + map;
  gint64 t;

  profiled_zero (model, dsum, map, "backward", profile);
  t = profile_start (profile);
  aclip_relu_backward (model->pool, dsum, doutput, block->output, map);
  profile_stop (profile, t, "relu/add", "backward", "", 0.0);

  profiled_zero (model, gradient_a, map, "backward", profile);
  profiled_batchnorm_backward (model, gradient_a, g->bn2_weight, g->bn2_bias, dsum, saved.conv2_out,
                               saved.bn2_mean, saved.bn2_invstd, p->bn2_weight, oc, spatial,
                               profile);
  profiled_zero (model, gradient_b, map, "backward", profile);
  profiled_conv_backward (model, &c2, gradient_b, g->conv2_weight, gradient_a, saved.relu1_out,
                          p->conv2_weight, profile);
  profiled_zero (model, gradient_c, map, "backward", profile);
  t = profile_start (profile);
  aclip_relu_backward (model->pool, gradient_c, gradient_b, saved.relu1_out, map);
  profile_stop (profile, t, "relu/add", "backward", "", 0.0);
  profiled_zero (model, gradient_a, map, "backward", profile);
  profiled_batchnorm_backward (model, gradient_a, g->bn1_weight, g->bn1_bias, gradient_c,
                               saved.conv1_out, saved.bn1_mean, saved.bn1_invstd, p->bn1_weight, oc,
                               spatial, profile);
  profiled_conv_backward (model, &c1, dinput, g->conv1_weight, gradient_a, input, p->conv1_weight,
                          profile);

  if (aclip_resblock_has_projection (s)) {
    profiled_zero (model, gradient_a, map, "backward", profile);
    profiled_batchnorm_backward (model, gradient_a, g->shortcut_bn_weight, g->shortcut_bn_bias,
                                 dsum, saved.shortcut_conv_out, saved.shortcut_mean,
                                 saved.shortcut_invstd, p->shortcut_bn_weight, oc, spatial,
                                 profile);
    profiled_conv_backward (model, &sc, dinput, g->shortcut_weight, gradient_a, input,
                            p->shortcut_weight, profile);
  } else {
    t = profile_start (profile);
    aclip_add_backward (model->pool, dinput, NULL, dsum, map);
    profile_stop (profile, t, "relu/add", "backward", "", 0.0);
  }
}

static void
resnet_forward (ResNetModel *model, Profile *profile)
{
  AclipThreadPool *pool = model->pool;
  int B = model->batch;
  int stem_spatial =
      aclip_conv2d_out_height (&model->stem_conv) * aclip_conv2d_out_width (&model->stem_conv);
  gsize stem_map = (gsize) B * 64 * stem_spatial;
  gint64 t;

  profiled_conv_forward (model, &model->stem_conv, model->stem_conv_out, model->images,
                         model->stem_weight, profile);
  profiled_batchnorm_forward (model, model->stem_bn_out, model->stem_mean, model->stem_invstd,
                              model->stem_running_mean, model->stem_running_var,
                              model->stem_conv_out, model->stem_bn_weight, model->stem_bn_bias, 64,
                              stem_spatial, profile);
  t = profile_start (profile);
  aclip_relu_forward (pool, model->stem_relu_out, model->stem_bn_out, stem_map);
  profile_stop (profile, t, "relu/add", "forward", "", 0.0);
  if (!model->small_stem) {
    t = profile_start (profile);
    aclip_maxpool2d_forward (pool, &model->stem_pool, model->stem_pool_out, model->stem_argmax,
                             model->stem_relu_out);
    profile_stop (profile, t, "maxpool", "forward", "", 0.0);
  }

  const float *input = stem_output (model);
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    ResNetBlock *block = &model->blocks[i];
    if (profile == NULL)
      aclip_resblock_forward (pool, &block->shape, block->output, block->activations, input,
                              &block->params, &block->running, BATCHNORM_EPS, BATCHNORM_MOMENTUM,
                              model->training, model->workspace);
    else
      profiled_resblock_forward (model, block, input, profile);
    input = block->output;
  }

  const AclipResBlockShape *last = &model->blocks[RESNET_BLOCKS - 1].shape;
  int last_spatial = aclip_resblock_out_height (last) * aclip_resblock_out_width (last);
  t = profile_start (profile);
  aclip_global_avgpool_forward (pool, model->pooled, input, B, RESNET_WIDTH, last_spatial);
  profile_stop (profile, t, "global avgpool", "forward", "", 0.0);
  t = profile_start (profile);
  aclip_linear_forward (pool, model->logits, model->pooled, model->fc_weight, model->fc_bias, B,
                        RESNET_WIDTH, model->n_classes);
  profile_stop (profile, t, "linear", "forward", "fc", 2.0 * B * RESNET_WIDTH * model->n_classes);
}

static void
resnet_iteration (gpointer data, Profile *profile)
{
  ResNetModel *model = data;
  if (!model->training) {
    resnet_forward (model, profile);
    return;
  }
  AclipThreadPool *pool = model->pool;
  int B = model->batch, K = model->n_classes;
  gint64 t;

  t = profile_start (profile);
  aclip_params_zero_grads (model->params);
  profile_stop (profile, t, "zero grads", "step", "", 0.0);

  resnet_forward (model, profile);

  t = profile_start (profile);
  float loss = aclip_cross_entropy_forward (model->logits, model->labels, B, K, model->probs);
  memset (model->d_logits, 0, sizeof (float) * (gsize) B * K);
  aclip_cross_entropy_backward (model->d_logits, model->probs, model->labels, B, K, 1.0f);
  profile_stop (profile, t, "cross-entropy", "both", "", 0.0);
  loss_trace_add (&model->losses, loss);

  t = profile_start (profile);
  memset (model->d_pooled, 0, sizeof (float) * (gsize) B * RESNET_WIDTH);
  aclip_linear_backward (pool, model->d_pooled, model->fc_weight_grad, model->fc_bias_grad,
                         model->d_logits, model->pooled, model->fc_weight, B, RESNET_WIDTH, K);
  profile_stop (profile, t, "linear", "backward", "fc", 4.0 * B * RESNET_WIDTH * K);

  const AclipResBlockShape *last = &model->blocks[RESNET_BLOCKS - 1].shape;
  int last_spatial = aclip_resblock_out_height (last) * aclip_resblock_out_width (last);
  int current = 0;
  float *d_current = model->gradients[current];
  profiled_zero (model, d_current, block_map_floats (last), "backward", profile);
  t = profile_start (profile);
  aclip_global_avgpool_backward (pool, d_current, model->d_pooled, B, RESNET_WIDTH, last_spatial);
  profile_stop (profile, t, "global avgpool", "backward", "", 0.0);

  for (int i = RESNET_BLOCKS - 1; i >= 0; i--) {
    ResNetBlock *block = &model->blocks[i];
    const float *input = i > 0 ? model->blocks[i - 1].output : stem_output (model);
    int next = (current + 1) % 3;
    float *d_input = model->gradients[next];
    profiled_zero (model, d_input, block_input_floats (&block->shape), "backward", profile);
    if (profile == NULL)
      aclip_resblock_backward (pool, &block->shape, d_input, &block->grads, d_current,
                               block->output, block->activations, input, &block->params, TRUE,
                               model->workspace);
    else
      profiled_resblock_backward (model, block, d_input, d_current, input, profile);
    current = next;
    d_current = d_input;
  }

  int stem_spatial =
      aclip_conv2d_out_height (&model->stem_conv) * aclip_conv2d_out_width (&model->stem_conv);
  gsize stem_map = (gsize) B * 64 * stem_spatial;
  if (!model->small_stem) {
    current = (current + 1) % 3;
    float *d_relu = model->gradients[current];
    profiled_zero (model, d_relu, stem_map, "backward", profile);
    t = profile_start (profile);
    aclip_maxpool2d_backward (pool, &model->stem_pool, d_relu, d_current, model->stem_argmax);
    profile_stop (profile, t, "maxpool", "backward", "", 0.0);
    d_current = d_relu;
  }
  current = (current + 1) % 3;
  float *d_bn = model->gradients[current];
  profiled_zero (model, d_bn, stem_map, "backward", profile);
  t = profile_start (profile);
  aclip_relu_backward (pool, d_bn, d_current, model->stem_bn_out, stem_map);
  profile_stop (profile, t, "relu/add", "backward", "", 0.0);
  current = (current + 1) % 3;
  float *d_conv = model->gradients[current];
  profiled_zero (model, d_conv, stem_map, "backward", profile);
  profiled_batchnorm_backward (model, d_conv, model->stem_bn_weight_grad, model->stem_bn_bias_grad,
                               d_bn, model->stem_conv_out, model->stem_mean, model->stem_invstd,
                               model->stem_bn_weight, 64, stem_spatial, profile);
  /* The images need no gradient. */
  profiled_conv_backward (model, &model->stem_conv, NULL, model->stem_weight_grad, d_conv,
                          model->images, model->stem_weight, profile);

  t = profile_start (profile);
  aclip_adamw_step (pool, model->params, &model->adamw, LEARNING_RATE);
  profile_stop (profile, t, "adamw", "step", "", 0.0);
}

/* ---- Convolution algorithms, layer by layer -------------------------------------------------- */

typedef struct
{
  const char *name;
  AclipConvAlgorithm algorithm;
  int images_per_gemm;
} ConvVariant;

/* Times every distinct convolution of the ResNet-18 case, forward and backward (input and
 * weight gradients), with each algorithm and grouping in turn: the variants alternate within
 * each repetition, so that a change in the machine's load affects them alike. Prints the
 * median time per call and the GFLOP/s of the direct form's FLOPs. */
static void
run_conv_variants (AclipThreadPool *pool, const Options *options)
{
  static const ConvVariant variants[] = {
    { "im2col", ACLIP_CONV_IM2COL, 0 },
    { "im2col/32", ACLIP_CONV_IM2COL, 32 },
    { "winograd", ACLIP_CONV_WINOGRAD, 0 },
    { "winograd/32", ACLIP_CONV_WINOGRAD, 32 },
  };
  const int n_variants = G_N_ELEMENTS (variants);
  ResNetModel *model = resnet_new (pool, FALSE, FALSE, FALSE, ACLIP_CONV_AUTO, 0);
  GPtrArray *shapes = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (shapes, g_memdup2 (&model->stem_conv, sizeof (AclipConv2dShape)));
  for (int i = 0; i < RESNET_BLOCKS; i++) {
    AclipConv2dShape convs[3];
    block_convs (&model->blocks[i].shape, &convs[0], &convs[1], &convs[2]);
    int n_convs = aclip_resblock_has_projection (&model->blocks[i].shape) ? 3 : 2;
    for (int k = 0; k < n_convs; k++) {
      gboolean seen = FALSE;
      for (guint j = 0; j < shapes->len && !seen; j++)
        seen = memcmp (g_ptr_array_index (shapes, j), &convs[k], sizeof convs[k]) == 0;
      if (!seen)
        g_ptr_array_add (shapes, g_memdup2 (&convs[k], sizeof convs[k]));
    }
  }
  resnet_free (model);

  printf ("convolutions of resnet18 (batch 32), median ms per call over %d repetitions; "
          "GFLOP/s of the direct form\n",
          options->reps);
  printf ("  %-26s %-12s %10s %8s %10s %8s\n", "layer", "variant", "forward", "GFLOP/s", "backward",
          "GFLOP/s");
  for (guint j = 0; j < shapes->len; j++) {
    const AclipConv2dShape *base = g_ptr_array_index (shapes, j);
    gboolean winograd_possible = base->kernel_height == 3 && base->stride_height == 1;
    AclipConv2dShape chosen[G_N_ELEMENTS (variants)];
    gsize workspace_floats = 0;
    for (int v = 0; v < n_variants; v++) {
      chosen[v] = *base;
      chosen[v].algorithm = variants[v].algorithm;
      chosen[v].images_per_gemm = variants[v].images_per_gemm;
      if (variants[v].algorithm == ACLIP_CONV_WINOGRAD && !winograd_possible)
        continue;
      workspace_floats = MAX (workspace_floats, aclip_conv2d_workspace_size (&chosen[v]));
    }
    gsize in_floats = (gsize) base->batch * base->in_channels * base->in_height * base->in_width;
    gsize out_floats = (gsize) base->batch * base->out_channels * aclip_conv2d_out_height (base) *
                       aclip_conv2d_out_width (base);
    gsize weight_floats =
        (gsize) base->out_channels * base->in_channels * base->kernel_height * base->kernel_width;
    float *input = g_new (float, in_floats), *dinput = g_new0 (float, in_floats);
    float *output = g_new (float, out_floats), *doutput = g_new (float, out_floats);
    float *weight = g_new (float, weight_floats), *dweight = g_new0 (float, weight_floats);
    float *workspace = g_new (float, workspace_floats);
    fill_normal (input, in_floats, 31, 1.0f);
    fill_normal (doutput, out_floats, 32, 1.0f);
    fill_normal (weight, weight_floats, 33, 0.05f);

    double *forward_times = g_new0 (double, (gsize) n_variants * options->reps);
    double *backward_times = g_new0 (double, (gsize) n_variants * options->reps);
    for (int rep = -options->warmup; rep < options->reps; rep++)
      for (int v = 0; v < n_variants; v++) {
        if (variants[v].algorithm == ACLIP_CONV_WINOGRAD && !winograd_possible)
          continue;
        gint64 start = g_get_monotonic_time ();
        aclip_conv2d_forward (pool, &chosen[v], output, input, weight, NULL, workspace);
        double forward = seconds_since (start);
        start = g_get_monotonic_time ();
        aclip_conv2d_backward (pool, &chosen[v], dinput, dweight, NULL, doutput, input, weight,
                               workspace);
        double backward = seconds_since (start);
        if (rep >= 0) {
          forward_times[v * options->reps + rep] = forward;
          backward_times[v * options->reps + rep] = backward;
        }
      }

    char detail[64];
    conv_detail (base, detail, sizeof detail);
    double flops = conv_flops (base);
    for (int v = 0; v < n_variants; v++) {
      if (variants[v].algorithm == ACLIP_CONV_WINOGRAD && !winograd_possible)
        continue;
      double forward = median_of (forward_times + v * options->reps, options->reps);
      double backward = median_of (backward_times + v * options->reps, options->reps);
      printf ("  %-26s %-12s %10.3f %8.1f %10.3f %8.1f\n", detail, variants[v].name, forward * 1e3,
              flops / forward * 1e-9, backward * 1e3, 2.0 * flops / backward * 1e-9);
    }
    fflush (stdout);
    g_free (forward_times);
    g_free (backward_times);
    g_free (input);
    g_free (dinput);
    g_free (output);
    g_free (doutput);
    g_free (weight);
    g_free (dweight);
    g_free (workspace);
  }
  g_ptr_array_unref (shapes);
}

/* ---- Timing -------------------------------------------------------------------------------- */

typedef void (*IterationFunc) (gpointer model, Profile *profile);

/* Times iterations after `warmup`: at least `reps`, and more until `min_time` seconds are
 * timed (at most 1000). Fills `times` (GArray of double); returns the foreign load. */
static double
time_iterations (IterationFunc iteration, gpointer model, const Options *options, GArray *times)
{
  for (int i = 0; i < options->warmup; i++)
    iteration (model, NULL);
  CpuSample before, after;
  cpu_sample (&before);
  double total = 0.0;
  while ((times->len < (guint) options->reps || total < options->min_time) && times->len < 1000) {
    gint64 start = g_get_monotonic_time ();
    iteration (model, NULL);
    double elapsed = seconds_since (start);
    g_array_append_val (times, elapsed);
    total += elapsed;
  }
  cpu_sample (&after);
  return foreign_load (&before, &after);
}

static void
run_model_case (const char *case_name, IterationFunc iteration, gpointer model, int batch,
                double flops, const LossTrace *losses, const Options *options)
{
  GArray *times = g_array_new (FALSE, FALSE, sizeof (double));
  double foreign = time_iterations (iteration, model, options, times);
  double median = median_of ((const double *) times->data, (int) times->len);

  if (!options->profile) {
    printf ("{\"engine\":\"ours\",\"case\":\"%s\",\"threads\":%d,\"batch\":%d,\"warmup\":%d,"
            "\"foreign_load\":%.3f,\"times_s\":[",
            case_name, options->threads, batch, options->warmup, foreign);
    for (guint i = 0; i < times->len; i++)
      printf ("%s%.5f", i > 0 ? "," : "", g_array_index (times, double, i));
    printf ("],\"median_s\":%.5f,\"items_per_s\":%.3f,\"gflop_per_iteration\":%.4f,"
            "\"gflops\":%.2f",
            median, batch / median, flops * 1e-9, flops * 1e-9 / median);
    if (losses->n_steps > 0)
      printf (",\"loss_first\":%.6f,\"loss_last\":%.6f", losses->first, losses->last);
    printf ("}\n");
  } else {
    /* The sgemm reference of the profile: 1024³ on the same threads. */
    SgemmShape cube = { "1024^3", CblasNoTrans, CblasNoTrans, 1024, 1024, 1024, 0, 0 };
    double sgemm_gflops = measure_sgemm (&cube, 20);
    Profile *profile = profile_new ();
    for (int i = 0; i < options->reps; i++)
      iteration (model, profile);
    profile_print (profile, case_name, options->reps, median, sgemm_gflops);
    printf ("  other processes used %.2f cores during the unprofiled iterations\n", foreign);
    printf ("  counted FLOPs %.2f GFLOP per iteration: %.1f GFLOP/s over the unprofiled median\n",
            flops * 1e-9, flops * 1e-9 / median);
    profile_free (profile);
  }
  fflush (stdout);
  g_array_unref (times);
}

static gboolean
parse_case (const char *name, const char *prefix, gboolean *training)
{
  gsize length = strlen (prefix);
  if (strncmp (name, prefix, length) != 0)
    return FALSE;
  if (strcmp (name + length, "-forward") == 0)
    *training = FALSE;
  else if (strcmp (name + length, "-train") == 0)
    *training = TRUE;
  else
    return FALSE;
  return TRUE;
}

int
main (int argc, char **argv)
{
  Options options = { 2, 5, 1.0, 2, 0, FALSE, FALSE, NULL, 0 };
  GOptionEntry entries[] = {
    { "warmup", 'w', 0, G_OPTION_ARG_INT, &options.warmup, "Untimed iterations first (2)", "N" },
    { "reps", 'r', 0, G_OPTION_ARG_INT, &options.reps, "Timed iterations, at least (5)", "N" },
    { "min-time", 0, 0, G_OPTION_ARG_DOUBLE, &options.min_time,
      "Time iterations until at least this many seconds are timed (1)", "S" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &options.threads,
      "Threads of the pool and of OpenBLAS (2)", "N" },
    { "blas-threads", 0, 0, G_OPTION_ARG_INT, &options.blas_threads,
      "OpenBLAS's threads, when they should differ from the pool's", "N" },
    { "profile", 'p', 0, G_OPTION_ARG_NONE, &options.profile,
      "Print the time per kernel instead of the JSON line", NULL },
    { "recompute-probs", 0, 0, G_OPTION_ARG_NONE, &options.recompute_probs,
      "Transformer training: recompute the attention probabilities in the backward", NULL },
    { "conv-algorithm", 0, 0, G_OPTION_ARG_STRING, &options.conv_algorithm,
      "With --profile: auto, im2col or winograd for the 3×3 stride-1 convolutions", "NAME" },
    { "conv-images-per-gemm", 0, 0, G_OPTION_ARG_INT, &options.conv_images_per_gemm,
      "With --profile: images per convolution sgemm (0: the kernel's choice)", "N" },
    { NULL },
  };
  GOptionContext *context = g_option_context_new (
      "CASE — sgemm, transformer-w256-{forward,train}, transformer-w128-{forward,train}, "
      "resnet18-{forward,train}, resnet18-stem3x3-{forward,train}, or resnet18-convs (each "
      "convolution of the ResNet with each algorithm)");
  g_option_context_add_main_entries (context, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error))
    die_on_error (error, "options");
  g_option_context_free (context);
  if (argc != 2 || options.reps < 1 || options.warmup < 0 || options.threads < 1) {
    fprintf (stderr, "usage: bench-engine [OPTION…] CASE (see --help)\n");
    return 2;
  }
  const char *case_name = argv[1];
  AclipConvAlgorithm conv_algorithm = ACLIP_CONV_AUTO;
  if (options.conv_algorithm != NULL && strcmp (options.conv_algorithm, "im2col") == 0)
    conv_algorithm = ACLIP_CONV_IM2COL;
  else if (options.conv_algorithm != NULL && strcmp (options.conv_algorithm, "winograd") == 0)
    conv_algorithm = ACLIP_CONV_WINOGRAD;
  else if (options.conv_algorithm != NULL && strcmp (options.conv_algorithm, "auto") != 0) {
    fprintf (stderr, "bench-engine: --conv-algorithm is auto, im2col or winograd\n");
    return 2;
  }
  if ((options.conv_algorithm != NULL || options.conv_images_per_gemm != 0) && !options.profile) {
    fprintf (stderr, "bench-engine: --conv-* options need --profile\n");
    return 2;
  }

  aclip_set_blas_threads (options.blas_threads > 0 ? options.blas_threads : options.threads);
  AclipThreadPool *pool = aclip_thread_pool_new (options.threads);
  gboolean training = FALSE;
  int status = 0;
  if (strcmp (case_name, "sgemm") == 0) {
    run_sgemm (&options);
  } else if (strcmp (case_name, "resnet18-convs") == 0) {
    run_conv_variants (pool, &options);
  } else if (parse_case (case_name, "transformer-w256", &training) ||
             parse_case (case_name, "transformer-w128", &training)) {
    const TransformerSize *size =
        strstr (case_name, "w256") != NULL ? &transformer_w256 : &transformer_w128;
    TransformerModel *model = transformer_new (pool, size, training, !options.recompute_probs);
    run_model_case (case_name, transformer_iteration, model, size->batch, transformer_flops (model),
                    &model->losses, &options);
    transformer_free (model);
  } else if (parse_case (case_name, "resnet18", &training) ||
             parse_case (case_name, "resnet18-stem3x3", &training)) {
    gboolean small_stem = strstr (case_name, "stem3x3") != NULL;
    ResNetModel *model = resnet_new (pool, small_stem, training, options.profile, conv_algorithm,
                                     MAX (options.conv_images_per_gemm, 0));
    run_model_case (case_name, resnet_iteration, model, model->batch, resnet_flops (model),
                    &model->losses, &options);
    resnet_free (model);
  } else {
    fprintf (stderr, "bench-engine: unknown case %s (see --help)\n", case_name);
    status = 2;
  }
  aclip_thread_pool_free (pool);
  g_free (options.conv_algorithm);
  return status;
}
