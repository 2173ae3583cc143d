/* aclip-loss.c — losses (aclip-loss.h). Sums run in double in a fixed order, so a loss does not
 * depend on the thread count and single-threaded runs are bit-reproducible. */
#include "aclip-loss.h"

#include <cblas.h>
#include <math.h>

/* Mean squared error -------------------------------------------------------------------- */

float
aclip_masked_mse_forward (const float *pred, const float *target, const guint8 *mask, gint64 n,
                          gint64 c)
{
  double sum = 0.0;
  gint64 n_masked = 0;
  for (gint64 row = 0; row < n; row++) {
    if (mask && !mask[row])
      continue;
    n_masked++;
    const float *p = pred + row * c, *t = target + row * c;
    for (gint64 j = 0; j < c; j++) {
      double d = (double) p[j] - (double) t[j];
      sum += d * d;
    }
  }
  if (n_masked == 0 || c == 0)
    return 0.0f;
  return (float) (sum / ((double) n_masked * (double) c));
}

void
aclip_masked_mse_backward (float *dpred, const float *pred, const float *target, const guint8 *mask,
                           gint64 n, gint64 c, float dloss)
{
  gint64 n_masked = 0;
  for (gint64 row = 0; row < n; row++)
    n_masked += !mask || mask[row];
  if (n_masked == 0 || c == 0)
    return;
  /* 2·dloss / count, formed once in double and rounded once. */
  float factor = (float) (2.0 * (double) dloss / ((double) n_masked * (double) c));
  for (gint64 row = 0; row < n; row++) {
    if (mask && !mask[row])
      continue;
    const float *p = pred + row * c, *t = target + row * c;
    float *d = dpred + row * c;
    for (gint64 j = 0; j < c; j++)
      d[j] += factor * (p[j] - t[j]);
  }
}

float
aclip_mse_forward (const float *pred, const float *target, gint64 n, gint64 k)
{
  return aclip_masked_mse_forward (pred, target, NULL, n, k);
}

void
aclip_mse_backward (float *dpred, const float *pred, const float *target, gint64 n, gint64 k,
                    float dloss)
{
  aclip_masked_mse_backward (dpred, pred, target, NULL, n, k, dloss);
}

/* Softmax helpers ------------------------------------------------------------------------ */

/* log Σ exp x[i·stride] over i < n, in double, shifted by the maximum for range. */
static double
log_sum_exp (const float *x, gint64 n, gint64 stride)
{
  double max = -INFINITY;
  for (gint64 i = 0; i < n; i++)
    max = MAX (max, (double) x[i * stride]);
  if (!isfinite (max))
    return max; /* all −inf (→ −inf) or a +inf/NaN input (propagates) */
  double sum = 0.0;
  for (gint64 i = 0; i < n; i++)
    sum += exp ((double) x[i * stride] - max);
  return max + log (sum);
}

/* InfoNCE -------------------------------------------------------------------------------- */

gsize
aclip_infonce_workspace_size (gint64 batch)
{
  return 4 * (gsize) batch * (gsize) batch;
}

float
aclip_infonce_forward (const float *a, const float *b, gint64 batch, gint64 dim, float scale,
                       float *workspace, float *accuracy)
{
  const gint64 B = batch;
  float *logits = workspace;            /* [B, B] */
  float *row_probs = logits + B * B;    /* [B, B], rows sum to 1 */
  float *col_probs = row_probs + B * B; /* [B, B], columns sum to 1 */

  if (B == 0) {
    if (accuracy)
      accuracy[0] = accuracy[1] = 0.0f;
    return 0.0f;
  }

  /* logits[i, j] = s · a_i · b_j */
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) B, (int) B, (int) dim, scale, a,
               (int) dim, b, (int) dim, 0.0f, logits, (int) B);

  double row_loss = 0.0, col_loss = 0.0;
  gint64 row_hits = 0, col_hits = 0;
  for (gint64 i = 0; i < B; i++) {
    const float *l = logits + i * B;
    double lse = log_sum_exp (l, B, 1);
    row_loss += lse - (double) l[i];
    gboolean hit = TRUE;
    for (gint64 j = 0; j < B; j++) {
      row_probs[i * B + j] = (float) exp ((double) l[j] - lse);
      if (j != i && !(l[j] < l[i]))
        hit = FALSE;
    }
    row_hits += hit;
  }
  for (gint64 j = 0; j < B; j++) {
    const float *l = logits + j; /* column j, stride B */
    double lse = log_sum_exp (l, B, B);
    col_loss += lse - (double) l[j * B];
    gboolean hit = TRUE;
    for (gint64 i = 0; i < B; i++) {
      col_probs[i * B + j] = (float) exp ((double) l[i * B] - lse);
      if (i != j && !(l[i * B] < l[j * B]))
        hit = FALSE;
    }
    col_hits += hit;
  }
  if (accuracy) {
    accuracy[0] = (float) ((double) row_hits / (double) B);
    accuracy[1] = (float) ((double) col_hits / (double) B);
  }
  return (float) (0.5 * (row_loss + col_loss) / (double) B);
}

void
aclip_infonce_backward (float *da, float *db, float *dlog_scale, const float *a, const float *b,
                        gint64 batch, gint64 dim, float scale, float *workspace, float dloss)
{
  const gint64 B = batch;
  const float *logits = workspace;
  const float *row_probs = logits + B * B;
  const float *col_probs = row_probs + B * B;
  float *dlogits = workspace + 3 * B * B; /* [B, B] */
  if (B == 0)
    return;

  /* ∂L/∂logits[i, j] = ½ (P[i, j] − δ_ij + Q[i, j] − δ_ij) / B, times dloss. */
  const double factor = 0.5 * (double) dloss / (double) B;
  double dlog = 0.0;
  for (gint64 i = 0; i < B; i++)
    for (gint64 j = 0; j < B; j++) {
      double g = (double) row_probs[i * B + j] + (double) col_probs[i * B + j];
      if (i == j)
        g -= 2.0;
      g *= factor;
      dlogits[i * B + j] = (float) g;
      /* logits = exp(t)·S, so ∂L/∂t = Σ ∂L/∂logits ∘ logits. */
      dlog += g * (double) logits[i * B + j];
    }

  /* da += s · G b; db += s · Gᵀ a */
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) B, (int) dim, (int) B, scale,
               dlogits, (int) B, b, (int) dim, 1.0f, da, (int) dim);
  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) B, (int) dim, (int) B, scale, dlogits,
               (int) B, a, (int) dim, 1.0f, db, (int) dim);
  if (dlog_scale)
    *dlog_scale += (float) dlog;
}

/* Cross-entropy -------------------------------------------------------------------------- */

float
aclip_cross_entropy_forward (const float *logits, const gint32 *targets, gint64 n, gint64 k,
                             float *probs)
{
  double sum = 0.0;
  gint64 counted = 0;
  gboolean bad_target = FALSE;
  for (gint64 row = 0; row < n; row++) {
    const float *l = logits + row * k;
    double lse = log_sum_exp (l, k, 1);
    for (gint64 j = 0; j < k; j++)
      probs[row * k + j] = (float) exp ((double) l[j] - lse);
    gint32 t = targets[row];
    if (t < 0)
      continue;
    if (t >= k) {
      bad_target = TRUE;
      continue;
    }
    sum += lse - (double) l[t];
    counted++;
  }
  if (bad_target)
    return NAN;
  return counted ? (float) (sum / (double) counted) : 0.0f;
}

void
aclip_cross_entropy_backward (float *dlogits, const float *probs, const gint32 *targets, gint64 n,
                              gint64 k, float dloss)
{
  gint64 counted = 0;
  for (gint64 row = 0; row < n; row++)
    counted += targets[row] >= 0 && targets[row] < k;
  if (counted == 0)
    return;
  float factor = (float) ((double) dloss / (double) counted);
  for (gint64 row = 0; row < n; row++) {
    gint32 t = targets[row];
    if (t < 0 || t >= k)
      continue;
    const float *p = probs + row * k;
    float *d = dlogits + row * k;
    for (gint64 j = 0; j < k; j++)
      d[j] += factor * (p[j] - (j == t ? 1.0f : 0.0f));
  }
}
