/* aclip-optim.h — training machinery: AdamW, the learning-rate schedule, global gradient-norm
 * clipping and gradient accumulation.
 *
 * A training step, with the parameter table of aclip-params.h:
 *
 *   aclip_params_zero_grads (params);
 *   for each of K micro-batches:
 *     forward; loss backward with dloss = 1/K; backward      (gradients accumulate, += )
 *   norm = aclip_clip_grad_norm (pool, aclip_params_grads (params),
 *                                aclip_params_n_floats (params), max_norm);
 *   if (!isfinite (norm)) skip the step;
 *   aclip_adamw_step (pool, params, &config,
 *                     aclip_lr_schedule_at (&schedule, aclip_params_get_step (params)));
 *
 * Gradient accumulation: K micro-batches of equal size whose losses are means give the
 * gradient of the whole batch's mean loss when each backward gets dloss = 1/K (free), or
 * when the accumulated gradient block is multiplied by 1/K with aclip_scale_floats before
 * clipping. Nothing here allocates.
 */
#pragma once

#include "aclip-parallel.h"
#include "aclip-params.h"

#include <glib.h>

G_BEGIN_DECLS

/* AdamW as torch.optim.AdamW (amsgrad off): for step t (1, 2, ...),
 *   p ← p · (1 − lr·λ)                       (decoupled weight decay, ACLIP_PARAM_DECAY only)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 * evaluated in float in PyTorch's order of operations (with the two fused multiply–adds of
 * its CPU kernels), the scalar factors in double then rounded to float as PyTorch does: given
 * the same gradients, the parameters are bit-identical to PyTorch 1.13's on the CPU. */
typedef struct
{
  double beta1;
  double beta2;
  double eps;
  double weight_decay; /* λ */
} AclipAdamWConfig;

/* PyTorch's defaults; AstroCLIP uses weight_decay 0.05 with lr 1e-4. */
#define ACLIP_ADAMW_CONFIG_DEFAULT                                                                 \
  {                                                                                                \
    0.9, 0.999, 1e-8, 0.01                                                                         \
  }

/* One step over the whole table (sealed for training): increments the table's step count and
 * updates values, m and v from the gradient block; the decay applies to tensors flagged
 * ACLIP_PARAM_DECAY. pool: NULL runs serially; the result does not depend on the pool. */
void aclip_adamw_step (AclipThreadPool *pool, AclipParams *params, const AclipAdamWConfig *config,
                       double lr);

/* The same update on one flat array: values, grads, m, v [n]; `step` is the step being taken
 * (≥ 1); weight_decay is λ for this array (0 for none). */
void aclip_adamw_update (float *values, const float *grads, float *m, float *v, gsize n,
                         const AclipAdamWConfig *config, double lr, double weight_decay,
                         gint64 step);

/* Linear warm-up, then a half cosine from peak_lr down to final_lr.
 *
 * `step` is the number of optimiser steps already taken (aclip_params_get_step): the first
 * step uses step = 0. With W = warmup_steps and T = total_steps:
 *   step < W:        peak_lr · (step + 1) / W   (the first step already moves; the W-th uses
 *                    the peak)
 *   W ≤ step < T:    final_lr + (peak_lr − final_lr) · ½ (1 + cos (π (step − W) / (T − W)))
 *   step ≥ T:        final_lr */
typedef struct
{
  double peak_lr;
  double final_lr;
  gint64 warmup_steps;
  gint64 total_steps;
} AclipLrSchedule;

double aclip_lr_schedule_at (const AclipLrSchedule *schedule, gint64 step);

/* The L2 norm of grads [n], summed in double over fixed blocks (fixed by n alone), so the
 * result does not depend on the pool. */
double aclip_grad_norm (AclipThreadPool *pool, const float *grads, gsize n);

/* Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_: computes the norm N of
 * grads [n] and, when c = max_norm / (N + 1e-6) < 1, multiplies every gradient by c.
 * Returns N (before clipping); a non-finite N leaves the gradients untouched and tells the
 * caller to skip the step. max_norm ≤ 0 or infinite: no clipping, just the norm. */
double aclip_clip_grad_norm (AclipThreadPool *pool, float *grads, gsize n, double max_norm);

/* x [n] ← factor · x (e.g. 1/K after accumulating K micro-batches). */
void aclip_scale_floats (AclipThreadPool *pool, float *x, gsize n, float factor);

G_END_DECLS
