/* aclip-eval.h — evaluation of embeddings and baselines (docs/evaluation.md): standardisation,
 * exact distance-weighted k-NN regression, R², retrieval recall@k, PCA, and the raw features
 * of the baselines (photometry, pixels, spectra). GTK-free, no drawing.
 *
 * Conventions. Feature matrices are row-major float32, [n_rows, dim]; targets and predictions
 * are double. Sums are accumulated in double. Every function that can be handed bad input
 * (non-finite features, empty sets, impossible sizes) fails with an ACLIP_ERROR and never
 * aborts. Parallel work runs on an AclipThreadPool (NULL: serially); matrix products run
 * between parallel loops on OpenBLAS's own threads, never inside them.
 */
#pragma once

#include "aclip-catalogue.h"
#include "aclip-parallel.h"

#include <glib.h>

G_BEGIN_DECLS

/* The paper's k for zero-shot regression (AstroCLIP v1 and the Multimodal Universe
 * benchmark). */
#define ACLIP_KNN_K_DEFAULT 16

/* Standardisation --------------------------------------------------------------------------- */

/* Per-dimension mean and standard deviation over the rows of x [n_rows, dim] whose values are
 * all finite (rows holding NaN or infinities are skipped):
 *   mean [dim], scale [dim] = population standard deviation (divisor n, as sklearn's
 *   StandardScaler), replaced by 1 where it is 0 (a constant dimension).
 * Two passes in double. Fails (ACLIP_ERROR_VALUE) when no row is finite. n_used (may be NULL)
 * receives the number of rows used. */
gboolean aclip_standardise_fit (const float *x, gint64 n_rows, int dim, double *mean,
                                double *scale, gint64 *n_used, GError **error);
/* out [n_rows, dim] = (x − mean) / scale, rounded to float; out may be x. Non-finite values
 * stay non-finite. */
void aclip_standardise_apply (const double *mean, const double *scale, const float *x,
                              gint64 n_rows, int dim, float *out);

/* Exact k nearest neighbours (Euclidean) ------------------------------------------------------ */

/* A copy of a training set, points [n_points, dim], with its squared norms; read-only once made,
 * so several threads may search it. Fails on n_points < 1, dim < 1 or a non-finite value. */
typedef struct _AclipKnnIndex AclipKnnIndex;

AclipKnnIndex *aclip_knn_index_new (const float *points, gint64 n_points, int dim,
                                    GError **error);
void aclip_knn_index_free (AclipKnnIndex *index);
gint64 aclip_knn_index_n_points (const AclipKnnIndex *index);
int aclip_knn_index_dim (const AclipKnnIndex *index);

/* The k nearest points of each query, queries [n_queries, dim]:
 *   neighbours [n_queries, k] point indices, nearest first
 *   distances  [n_queries, k] their Euclidean distances (double)
 * Exactness: distances are d(q, x) = √Σ (double)(q_i − x_i)², accumulated in double, and the
 * neighbours are the k smallest by (d, index): ties are broken by the lower index. The scan
 * screens with ‖q‖² + ‖x‖² − 2 q·x, the products from sgemm in blocks, whose error is bounded
 * (γ_dim ‖q‖ max‖x‖, γ_dim = dim·2⁻²⁴/(1 − dim·2⁻²⁴)); every point that can be among the
 * k nearest within that bound is re-ranked by the exact distance, so no point is lost to
 * rounding. Selection keeps a bounded heap per query; the n distances are never sorted.
 * With k > n_points every point is returned: columns from n_points on are −1 and NaN.
 * Errors: k < 1, a query that is not finite (ACLIP_ERROR_INVALID_ARG / _VALUE). */
gboolean aclip_knn_search (const AclipKnnIndex *index, AclipThreadPool *pool,
                           const float *queries, gint64 n_queries, int k, gint64 *neighbours,
                           double *distances, GError **error);

/* Distance-weighted mean of the neighbours' targets, as sklearn's weights='distance':
 *   w_j = 1 / d_j,  ŷ = Σ w_j y_j / Σ w_j  over the query's neighbours (index ≥ 0);
 * when any neighbour is at distance exactly 0 (the query coincides with training points),
 * only those count, equally: ŷ = mean of their targets.
 *   neighbours, distances [n_queries, k] as from aclip_knn_search
 *   targets [n_points] by point index; predictions [n_queries] (NaN for a query without
 *   neighbours; a non-finite target makes its query's prediction non-finite). */
void aclip_knn_predict (const gint64 *neighbours, const double *distances, gint64 n_queries,
                        int k, const double *targets, double *predictions);

/* Index, search and prediction in one call: train [n_train, dim] with targets [n_train],
 * queries [n_queries, dim] → predictions [n_queries]. No standardisation here. */
gboolean aclip_knn_regress (const float *train, const double *targets, gint64 n_train, int dim,
                            const float *queries, gint64 n_queries, int k,
                            AclipThreadPool *pool, double *predictions, GError **error);

/* Scores ---------------------------------------------------------------------------------- */

/* Coefficient of determination over the pairs where truth and prediction are both finite:
 *   R² = 1 − Σ (y − ŷ)² / Σ (y − ȳ)²,  ȳ the mean of those y.
 * NaN when fewer than 2 pairs remain or every y is equal. n_used (may be NULL) receives the
 * number of pairs. Accumulated in double, two passes. */
double aclip_r2_score (const double *truth, const double *predicted, gint64 n, gint64 *n_used);
/* Root mean square of y − ŷ over the same pairs; NaN when none. */
double aclip_rmse (const double *truth, const double *predicted, gint64 n);

/* Retrieval ------------------------------------------------------------------------------- */

/* For each i of n pairs (queries [n, dim], targets [n, dim], pair i = (queries[i],
 * targets[i]), e.g. a galaxy's image and spectrum embeddings):
 *   ranks[i] = #{ j ≠ i : cos(q_i, t_j) ≥ cos(q_i, t_i) }
 * so 0 means the galaxy's own partner is strictly the most similar target, and ties count
 * against it (conservative). Cosines are computed exactly in double from the float vectors
 * (their norms included); the sgemm screening is bounded and every comparison it cannot settle
 * is redone exactly. Errors: a row that is not finite or is zero (ACLIP_ERROR_VALUE). */
gboolean aclip_retrieval_ranks (const float *queries, const float *targets, gint64 n, int dim,
                                AclipThreadPool *pool, gint64 *ranks, GError **error);
/* Fraction of ranks below k: recall@k = #{ i : ranks[i] < k } / n (NaN for n = 0). */
double aclip_recall_at_k (const gint64 *ranks, gint64 n, gint64 k);

/* PCA --------------------------------------------------------------------------------------- */

/* Principal components of x [n_rows, dim]: the covariance (divisor n − 1) accumulated in
 * double by dsyrk over blocks of rows, its leading eigenvectors from LAPACK's dsyevr (OpenBLAS
 * ships LAPACK). Each component's sign is chosen so its largest-magnitude element is positive.
 * n_components is clamped to dim. Fails on n_rows < 2, a non-finite value, or LAPACK
 * failing. */
typedef struct _AclipPca AclipPca;

AclipPca *aclip_pca_fit (const float *x, gint64 n_rows, int dim, int n_components,
                         GError **error);
void aclip_pca_free (AclipPca *pca);
int aclip_pca_dim (const AclipPca *pca);
int aclip_pca_n_components (const AclipPca *pca);
const double *aclip_pca_mean (const AclipPca *pca);       /* [dim] */
const float *aclip_pca_components (const AclipPca *pca);  /* [n_components, dim], orthonormal */
const double *aclip_pca_variances (const AclipPca *pca);  /* [n_components], descending */
double aclip_pca_total_variance (const AclipPca *pca);    /* trace of the covariance */
/* scores [n_rows, n_components] = (x − mean) · componentsᵀ (sgemm). Fails on a non-finite
 * value in x. */
gboolean aclip_pca_transform (const AclipPca *pca, const float *x, gint64 n_rows, float *scores,
                              GError **error);

/* Baseline features ------------------------------------------------------------------------- */

#define ACLIP_PHOTOMETRY_DIM 3

/* From total fluxes (g, r, z nanomaggies), AB magnitudes m = 22.5 − 2.5 log10 f and
 * features [3] = (g − r, r − z, r). FALSE, and NaN features, when a flux is not finite or
 * not positive. */
gboolean aclip_photometry_features (const float flux[ACLIP_N_BANDS], float *features);

/* Pixels: the centre crop of side C = min(H, W, ACLIP_PIXEL_CROP), rendered by the Legacy
 * Survey RGB mapping (aclip-render.h, the encoder's input) and averaged over f×f blocks,
 * f = ⌈C / ACLIP_PIXEL_GRID⌉, to an S×S grid, S = ⌊C / f⌋ (the S·f central pixels are used):
 * features [S, S, 3] in [0, 1]. A 152-pixel cutout gives 16×16×3 = 768 values; 24 pixels give
 * 12×12×3 = 432. */
#define ACLIP_PIXEL_CROP 64
#define ACLIP_PIXEL_GRID 16
/* Number of pixel features for an H×W image (0 when H or W < 1). */
int aclip_pixel_features_dim (int height, int width);
/* image [3, H, W] nanomaggies (non-finite treated as 0) → features [dim]. */
void aclip_pixel_features (const float *image, int height, int width, float *features);

/* Spectra: z-scored by the spectrum's own mean and standard deviation over its good pixels
 * (ivar > 0, finite flux), then averaged over bins of b = ⌈n_wave / ACLIP_SPECTRUM_MAX_BINS⌉
 * pixels (good pixels only); a bin without good pixels is 0, the spectrum's mean: features
 * [⌈n_wave / b⌉]. The DESI grid (7781 pixels) gives 973 bins of 8 pixels (6.4 Å). */
#define ACLIP_SPECTRUM_MAX_BINS 1024
int aclip_spectrum_features_dim (int n_wave);
/* FALSE (features NaN) when fewer than 2 good pixels. A flat spectrum (std 0) is centred only. */
gboolean aclip_spectrum_features (const float *flux, const float *ivar, int n_wave,
                                  float *features);

typedef enum
{
  ACLIP_RAW_PIXELS,
  ACLIP_RAW_SPECTRA,
} AclipRawKind;

/* Feature length of a kind for a catalogue; 0 when it lacks images or spectra. */
int aclip_raw_features_dim (AclipCatalogue *catalogue, AclipRawKind kind);
/* Reads catalogue rows rows [n_rows] and computes their features [n_rows, dim] in parallel
 * over `pool` (one AclipCatalogue opened per worker). valid [n_rows] tells which rows gave
 * features (a spectrum with no good pixels does not); their features are NaN. */
gboolean aclip_raw_features_read (const char *catalogue_path, AclipRawKind kind,
                                  const gint64 *rows, gint64 n_rows, AclipThreadPool *pool,
                                  float *features, gboolean *valid, GError **error);

/* Labels ------------------------------------------------------------------------------------- */

/* Whether a catalogue column is evaluated by default (docs/evaluation.md): every numeric column
 * except identity and position (ID, RA, DEC, TARGETID), the photometry inputs (FLUX_*,
 * MAG_*), survey and simulator bookkeeping (PLATE, MJD, FIBER, ZWARN, Z_ERR, SPECTYPE,
 * SPEC_SOURCE, IMAGE_KIND, PIXSCALE_IN, MATCH_SEP, SDSS_ROW, COSMOS_ROW, COEFF_*), observing
 * conditions (EBV, SEEING_*, PSF_BETA, PSFDEPTH_*, FIBER_FRAC, SNR_SPEC, HAS_NEIGHBOUR,
 * HAS_STAR) and angles (POS_ANGLE). */
gboolean aclip_eval_is_default_label (const char *name);

/* Predictions files (the supervised baseline) ----------------------------------------------- */

/* A FITS file with a binary table HDU PREDICTIONS: ID (1K) and one float64 column
 * <LABEL>_PRED per predicted label (Z_PRED, LOGMSTAR_PRED, …). */
typedef struct _AclipPredictions AclipPredictions;

/* Writes n rows: ids [n], values [n_labels, n] (label-major) as columns <labels[l]>_PRED, to a
 * temporary file renamed into place. */
gboolean aclip_predictions_write (const char *path, gint64 n, const gint64 *ids, int n_labels,
                                  const char *const *labels, const double *values,
                                  GError **error);
/* Reads the PREDICTIONS HDU (or else the first binary table) of a file: the ID column and
 * every column whose name ends in _PRED. */
AclipPredictions *aclip_predictions_read (const char *path, GError **error);
void aclip_predictions_free (AclipPredictions *predictions);
gint64 aclip_predictions_n_rows (const AclipPredictions *predictions);
const gint64 *aclip_predictions_ids (const AclipPredictions *predictions); /* [n_rows] */
/* The predictions of `label` ([n_rows], owned by the object), NULL when the file has no
 * <label>_PRED column. */
const double *aclip_predictions_values (const AclipPredictions *predictions, const char *label);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipKnnIndex, aclip_knn_index_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipPca, aclip_pca_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipPredictions, aclip_predictions_free)

G_END_DECLS
