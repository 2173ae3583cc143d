/* aclip-loss.h — the training losses: masked and plain mean squared error, symmetric InfoNCE
 * (CLIP) and cross-entropy.
 *
 * Conventions of docs/kernels.md: plain float arrays with their shapes in comments; a forward
 * returns the loss (a scalar, accumulated in double) and writes whatever its backward needs
 * into a buffer the caller passes; a backward ACCUMULATES (+=) into the gradients it produces
 * and takes `dloss`, the gradient of the final objective with respect to this loss (1 for a
 * plain step, 1/K when K micro-batches are accumulated into one step, a weight when losses are
 * summed). No function here allocates.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Mean squared error over the masked rows — the spectrum pretraining loss (reconstruct the
 * masked tokens only).
 *
 * pred, target: [N, C] (for a batch of token sequences, N = B·T and C the token width).
 * mask: [N], one flag per row (token): a nonzero row counts, a zero row is ignored; NULL
 *   counts every row.
 * Returns Σ_{masked rows n, all c} (pred − target)² / (n_masked · C), the mean over the masked
 * elements (PyTorch's F.mse_loss (pred[mask], target[mask])); 0 when no row is masked, and then
 * the backward adds nothing. */
float aclip_masked_mse_forward (const float *pred, const float *target, const guint8 *mask,
                                gint64 n, gint64 c);
/* dpred: [N, C] += dloss · 2 (pred − target) / (n_masked · C) on masked rows. */
void aclip_masked_mse_backward (float *dpred, const float *pred, const float *target,
                                const guint8 *mask, gint64 n, gint64 c, float dloss);

/* Mean squared error of a regression head: pred, target [N, K]; the mean over all N·K
 * elements (F.mse_loss with reduction "mean"). */
float aclip_mse_forward (const float *pred, const float *target, gint64 n, gint64 k);
/* dpred: [N, K] += dloss · 2 (pred − target) / (N·K). */
void aclip_mse_backward (float *dpred, const float *pred, const float *target, gint64 n, gint64 k,
                         float dloss);

/* Symmetric InfoNCE (the CLIP loss) over a batch of B matching pairs.
 *
 * a, b: [B, D] embeddings of the two modalities, row i of a matching row i of b, each row
 *   L2-normalised by the caller (the kernel does not normalise).
 * scale: the logit scale s > 0 (AstroCLIP fixes it at 15.5, i.e. temperature 1/15.5).
 * logits = s · a bᵀ  [B, B];
 * loss = ½ (CE (logits, diag) + CE (logitsᵀ, diag)), each CE the mean over the B rows of
 *   −log softmax (row)[i].
 *
 * workspace: aclip_infonce_workspace_size (B) floats, laid out as four [B, B] arrays:
 *   logits, row softmax P (P[i, j] = softmax over j of logits[i, :]), column softmax Q
 *   (Q[i, j] = softmax over i of logits[:, j]) and a scratch array for the backward. The
 *   forward fills the first three; the backward reads them and uses the fourth, so it may be
 *   called more than once after one forward.
 * accuracy: NULL or [2]: the fraction of rows whose largest logit is on the diagonal (a → b
 *   retrieval, top-1) and the same for columns (b → a). Ties count as misses.
 * Matrix products go through cblas_sgemm. */
gsize aclip_infonce_workspace_size (gint64 batch);
float aclip_infonce_forward (const float *a, const float *b, gint64 batch, gint64 dim, float scale,
                             float *workspace, float *accuracy);
/* da, db: [B, D] += gradients (with respect to the normalised embeddings as given).
 * dlog_scale: NULL for a fixed scale; otherwise the scale is learnable and parameterised, as
 *   in CLIP, by its logarithm t (s = exp t, so a model stores t, applies any clamp itself and
 *   passes s = exp t to the forward); *dlog_scale += ∂L/∂t = s · ∂L/∂s.
 * workspace: as left by aclip_infonce_forward with the same a, b and scale. */
void aclip_infonce_backward (float *da, float *db, float *dlog_scale, const float *a,
                             const float *b, gint64 batch, gint64 dim, float scale,
                             float *workspace, float dloss);

/* Cross-entropy of a classification head.
 *
 * logits: [N, K]; targets: [N] class indices; a negative target marks an ignored row (like
 *   PyTorch's ignore_index). Returns the mean over the rows not ignored of
 *   −log softmax (logits[n])[targets[n]], 0 when every row is ignored, and NaN when a target
 *   is ≥ K (so that the training loop's non-finite-loss check stops the run).
 * probs: [N, K], written: the softmax of each row, for the backward. */
float aclip_cross_entropy_forward (const float *logits, const gint32 *targets, gint64 n, gint64 k,
                                   float *probs);
/* dlogits: [N, K] += dloss · (probs − onehot (target)) / n_counted on rows not ignored. */
void aclip_cross_entropy_backward (float *dlogits, const float *probs, const gint32 *targets,
                                   gint64 n, gint64 k, float dloss);

G_END_DECLS
