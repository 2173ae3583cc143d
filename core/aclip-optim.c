/* aclip-optim.c — AdamW, the schedule, gradient clipping (aclip-optim.h). */
#include "aclip-optim.h"

#include <math.h>

#define UPDATE_GRAIN 16384 /* floats per parallel chunk at least */

/* The scalars of one AdamW step, rounded to float once as PyTorch does when it passes Python
 * numbers to its float kernels. */
typedef struct
{
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float neg_step_size;         /* −lr / (1 − β1ᵗ) */
  float bias_correction2_sqrt; /* √(1 − β2ᵗ) */
  float eps;
} AdamScalars;

static void
adam_scalars (AdamScalars *s, const AclipAdamWConfig *config, double lr, gint64 step)
{
  double t = (double) step;
  s->beta1 = (float) config->beta1;
  s->one_minus_beta1 = (float) (1.0 - config->beta1);
  s->beta2 = (float) config->beta2;
  s->one_minus_beta2 = (float) (1.0 - config->beta2);
  s->neg_step_size = (float) -(lr / (1.0 - pow (config->beta1, t)));
  s->bias_correction2_sqrt = (float) sqrt (1.0 - pow (config->beta2, t));
  s->eps = (float) config->eps;
}

/* Keeps `x` as a rounded float at this point: stops the compiler from fusing the product that
 * made it into a later addition (GCC contracts a·b + c into an FMA on targets that have one),
 * which would depart from PyTorch's separately rounded operations. */
#define ROUNDED(x) __asm__("" : "+m"(x))

/* values, grads, m, v: [n]; decay_factor = (float) (1 − lr·λ). The float operations follow
 * torch.optim.AdamW's single-tensor path on the CPU, including where its kernels fuse:
 *   p.mul_(1 − lr·λ)                    p·d, rounded
 *   m.mul_(β1).add_(g, alpha = 1 − β1)  fma (g, 1 − β1, m·β1)  (add_ with alpha is an FMA)
 *   v.mul_(β2).addcmul_(g, g, 1 − β2)   fma ((1 − β2)·g, g, v·β2)
 *   denom = v.sqrt() / √bc2 + ε         divided, not multiplied by a reciprocal
 *   p.addcdiv_(m, denom, −step_size)    p + (−step_size·m) / denom
 * fmaf is exact (correctly rounded) with or without FMA hardware, so the result is the same
 * on every IEEE machine. */
static void
adam_update_range (float *values, const float *grads, float *m, float *v, gsize n,
                   const AdamScalars *s, float decay_factor)
{
  for (gsize i = 0; i < n; i++) {
    float g = grads[i];
    float p = values[i] * decay_factor;
    ROUNDED (p);
    float mi = fmaf (g, s->one_minus_beta1, m[i] * s->beta1);
    float vi = fmaf (s->one_minus_beta2 * g, g, v[i] * s->beta2);
    float denom = sqrtf (vi) / s->bias_correction2_sqrt + s->eps;
    p = p + s->neg_step_size * mi / denom;
    values[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

void
aclip_adamw_update (float *values, const float *grads, float *m, float *v, gsize n,
                    const AclipAdamWConfig *config, double lr, double weight_decay, gint64 step)
{
  g_return_if_fail (step >= 1);
  AdamScalars s;
  adam_scalars (&s, config, lr, step);
  adam_update_range (values, grads, m, v, n, &s, (float) (1.0 - lr * weight_decay));
}

typedef struct
{
  AclipParams *params;
  AdamScalars scalars;
  float decay_factor; /* for ACLIP_PARAM_DECAY tensors */
} AdamJob;

/* Updates floats [begin, end) of the blocks, tensor by tensor (a tensor owns its alignment gap,
 * where everything is zero and stays zero). */
static void
adam_chunk (gint64 begin, gint64 end, int worker, gpointer data)
{
  AdamJob *job = data;
  AclipParams *params = job->params;
  float *values = aclip_params_values (params), *grads = aclip_params_grads (params);
  float *m = aclip_params_adam_m (params), *v = aclip_params_adam_v (params);
  int n_tensors = aclip_params_n_tensors (params);

  /* The last tensor starting at or before `begin` (offsets increase with the index). */
  int low = 0, high = n_tensors - 1;
  while (low < high) {
    int middle = (low + high + 1) / 2;
    if ((gint64) aclip_params_info (params, middle)->offset <= begin)
      low = middle;
    else
      high = middle - 1;
  }
  gint64 position = begin;
  for (int t = low; t < n_tensors && position < end; t++) {
    gint64 tensor_end = t + 1 < n_tensors ? (gint64) aclip_params_info (params, t + 1)->offset
                                          : (gint64) aclip_params_n_floats (params);
    gint64 stop = MIN (end, tensor_end);
    float decay =
        (aclip_params_info (params, t)->flags & ACLIP_PARAM_DECAY) ? job->decay_factor : 1.0f;
    adam_update_range (values + position, grads + position, m + position, v + position,
                       (gsize) (stop - position), &job->scalars, decay);
    position = stop;
  }
}

void
aclip_adamw_step (AclipThreadPool *pool, AclipParams *params, const AclipAdamWConfig *config,
                  double lr)
{
  g_return_if_fail (aclip_params_is_training (params));
  gint64 step = aclip_params_get_step (params) + 1;
  AdamJob job = { .params = params, .decay_factor = (float) (1.0 - lr * config->weight_decay) };
  adam_scalars (&job.scalars, config, lr, step);
  aclip_parallel_for (pool, (gint64) aclip_params_n_floats (params), UPDATE_GRAIN, adam_chunk,
                      &job);
  aclip_params_set_step (params, step);
}

double
aclip_lr_schedule_at (const AclipLrSchedule *schedule, gint64 step)
{
  const gint64 warmup = schedule->warmup_steps, total = schedule->total_steps;
  if (step < 0)
    step = 0;
  if (step < warmup)
    return schedule->peak_lr * (double) (step + 1) / (double) warmup;
  if (step >= total)
    return schedule->final_lr;
  double progress = (double) (step - warmup) / (double) (total - warmup);
  return schedule->final_lr +
         (schedule->peak_lr - schedule->final_lr) * 0.5 * (1.0 + cos (G_PI * progress));
}

/* Gradient norm ------------------------------------------------------------------------- */

#define NORM_MAX_BLOCKS 1024
#define NORM_MIN_BLOCK  16384

typedef struct
{
  const float *x;
  gsize n;
  gint64 n_blocks;
  double *partial; /* [n_blocks] */
} NormJob;

static void
norm_blocks (gint64 begin, gint64 end, int worker, gpointer data)
{
  NormJob *job = data;
  for (gint64 b = begin; b < end; b++) {
    /* Block b is [n·b / n_blocks, n·(b+1) / n_blocks) (n < 2⁴⁴ here, so no overflow). */
    gsize lo = job->n * (gsize) b / (gsize) job->n_blocks;
    gsize hi = job->n * (gsize) (b + 1) / (gsize) job->n_blocks;
    /* Four accumulators in a fixed pattern: exact order fixed by (n, b) alone. */
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    gsize i = lo;
    for (; i + 4 <= hi; i += 4) {
      s0 += (double) job->x[i] * job->x[i];
      s1 += (double) job->x[i + 1] * job->x[i + 1];
      s2 += (double) job->x[i + 2] * job->x[i + 2];
      s3 += (double) job->x[i + 3] * job->x[i + 3];
    }
    for (; i < hi; i++)
      s0 += (double) job->x[i] * job->x[i];
    job->partial[b] = (s0 + s1) + (s2 + s3);
  }
}

double
aclip_grad_norm (AclipThreadPool *pool, const float *grads, gsize n)
{
  double partial[NORM_MAX_BLOCKS];
  gint64 n_blocks = (gint64) CLAMP ((n + NORM_MIN_BLOCK - 1) / NORM_MIN_BLOCK, 1, NORM_MAX_BLOCKS);
  NormJob job = { .x = grads, .n = n, .n_blocks = n_blocks, .partial = partial };
  aclip_parallel_for (pool, n_blocks, 1, norm_blocks, &job);
  double sum = 0.0;
  for (gint64 b = 0; b < n_blocks; b++)
    sum += partial[b];
  return sqrt (sum);
}

typedef struct
{
  float *x;
  float factor;
} ScaleJob;

static void
scale_chunk (gint64 begin, gint64 end, int worker, gpointer data)
{
  ScaleJob *job = data;
  for (gint64 i = begin; i < end; i++)
    job->x[i] *= job->factor;
}

void
aclip_scale_floats (AclipThreadPool *pool, float *x, gsize n, float factor)
{
  ScaleJob job = { .x = x, .factor = factor };
  aclip_parallel_for (pool, (gint64) n, UPDATE_GRAIN, scale_chunk, &job);
}

double
aclip_clip_grad_norm (AclipThreadPool *pool, float *grads, gsize n, double max_norm)
{
  double norm = aclip_grad_norm (pool, grads, n);
  if (!isfinite (norm) || !(max_norm > 0.0) || !isfinite (max_norm))
    return norm;
  /* PyTorch clamps the coefficient at 1 and always multiplies; a multiplication by exactly 1
   * is skipped here. */
  double coefficient = max_norm / (norm + 1e-6);
  if (coefficient < 1.0)
    aclip_scale_floats (pool, grads, n, (float) coefficient);
  return norm;
}
