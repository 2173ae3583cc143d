/* aclip-eval.c — standardisation, exact k-NN regression, R², retrieval ranks, PCA and the
 * baselines' raw features (aclip-eval.h, docs/evaluation.md).
 *
 * The two scans (k-NN and retrieval) share one plan: a block of queries against a block of
 * points at a time, the block of inner products from sgemm (on OpenBLAS's threads), then a
 * parallel loop over the block's queries (on the pool's threads) that screens the products
 * with a rounding bound and settles in double precision whatever the bound leaves open.
 */
#include "aclip-eval.h"

#include "aclip-error.h"
#include "aclip-fits.h"
#include "aclip-render.h"

#include <cblas.h>
#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_BLOCK 256  /* queries per pass over the points */
#define POINT_BLOCK 2048 /* points per sgemm: the product block [256, 2048] is 2 MB */
#define PCA_ROW_BLOCK 2048
#define UNIT_ROUNDOFF_F32 (1.0 / 16777216.0)           /* 2⁻²⁴ */
#define UNIT_ROUNDOFF_F64 (1.0 / 9007199254740992.0)   /* 2⁻⁵³ */

/* LAPACK from OpenBLAS (Fortran calling convention; the trailing arguments are the lengths of
 * the character arguments, which gfortran passes by value). Debian's libopenblas exports the
 * LAPACK routines but ships no LAPACKE header. */
extern void dsyevr_ (const char *jobz, const char *range, const char *uplo, const int *n,
                     double *a, const int *lda, const double *vl, const double *vu,
                     const int *il, const int *iu, const double *abstol, int *m, double *w,
                     double *z, const int *ldz, int *isuppz, double *work, const int *lwork,
                     int *iwork, const int *liwork, int *info, size_t jobz_length,
                     size_t range_length, size_t uplo_length);

/* γ_n = n·u / (1 − n·u): the relative bound of a float32 inner product of length n, whatever
 * the order of summation (Higham, Accuracy and Stability, §3.1), with FMA or without. */
static double
gamma_f32 (int n)
{
  double nu = n * UNIT_ROUNDOFF_F32;
  return nu / (1.0 - nu);
}

static gboolean
all_finite (const float *x, gsize count)
{
  for (gsize i = 0; i < count; i++)
    if (!isfinite (x[i]))
      return FALSE;
  return TRUE;
}

/* count values of `size` bytes, or NULL and an error naming what. */
static gpointer
try_alloc (gint64 count, gsize size, const char *what, GError **error)
{
  if (count < 0 || (count > 0 && (guint64) count > G_MAXSIZE / size)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG, _("%s: size out of range"), what);
    return NULL;
  }
  gpointer memory = g_try_malloc (MAX ((gsize) count * size, 1));
  if (memory == NULL)
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("%s: cannot allocate %" PRId64 " values"), what, count);
  return memory;
}

static double
dot_double (const float *a, const float *b, int dim)
{
  double sum = 0.0;
  for (int i = 0; i < dim; i++)
    sum += (double) a[i] * (double) b[i];
  return sum;
}

static double
distance2_double (const float *a, const float *b, int dim)
{
  double sum = 0.0;
  for (int i = 0; i < dim; i++) {
    double d = (double) a[i] - (double) b[i];
    sum += d * d;
  }
  return sum;
}

/* Standardisation ------------------------------------------------------------------------------ */

gboolean
aclip_standardise_fit (const float *x, gint64 n_rows, int dim, double *mean, double *scale,
                       gint64 *n_used, GError **error)
{
  g_return_val_if_fail (n_rows >= 0 && dim >= 1, FALSE);
  g_return_val_if_fail ((x != NULL || n_rows == 0) && mean != NULL && scale != NULL, FALSE);
  gint64 used = 0;
  for (int i = 0; i < dim; i++)
    mean[i] = scale[i] = 0.0;
  for (gint64 r = 0; r < n_rows; r++) {
    const float *row = x + r * dim;
    if (!all_finite (row, dim))
      continue;
    for (int i = 0; i < dim; i++)
      mean[i] += row[i];
    used++;
  }
  if (n_used)
    *n_used = used;
  if (used == 0) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                         _("no row with finite values to standardise on"));
    return FALSE;
  }
  for (int i = 0; i < dim; i++)
    mean[i] /= used;
  for (gint64 r = 0; r < n_rows; r++) {
    const float *row = x + r * dim;
    if (!all_finite (row, dim))
      continue;
    for (int i = 0; i < dim; i++) {
      double d = row[i] - mean[i];
      scale[i] += d * d;
    }
  }
  for (int i = 0; i < dim; i++) {
    scale[i] = sqrt (scale[i] / used);
    if (!(scale[i] > 0.0))
      scale[i] = 1.0;
  }
  return TRUE;
}

void
aclip_standardise_apply (const double *mean, const double *scale, const float *x, gint64 n_rows,
                         int dim, float *out)
{
  g_return_if_fail (mean != NULL && scale != NULL && dim >= 1);
  for (gint64 r = 0; r < n_rows; r++)
    for (int i = 0; i < dim; i++)
      out[r * dim + i] = (float) ((x[r * dim + i] - mean[i]) / scale[i]);
}

/* k nearest neighbours ------------------------------------------------------------------------ */

struct _AclipKnnIndex
{
  gint64 n;
  int dim;
  float *points;   /* [n, dim] */
  double *norms2;  /* [n] ‖x‖² in double */
  double max_norm; /* max ‖x‖ */
};

AclipKnnIndex *
aclip_knn_index_new (const float *points, gint64 n_points, int dim, GError **error)
{
  g_return_val_if_fail (points != NULL || n_points <= 0, NULL);
  if (n_points < 1 || dim < 1) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("a k-NN training set needs at least one point and one dimension (it has "
                   "%" PRId64 " points of %d dimensions)"),
                 n_points, dim);
    return NULL;
  }
  if (n_points > G_MAXINT64 / dim) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                         _("the k-NN training set is too large"));
    return NULL;
  }
  for (gint64 r = 0; r < n_points; r++)
    if (!all_finite (points + r * dim, dim)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("k-NN training point %" PRId64 " is not finite"), r);
      return NULL;
    }
  g_autoptr (AclipKnnIndex) index = g_new0 (AclipKnnIndex, 1);
  index->n = n_points;
  index->dim = dim;
  index->points = try_alloc (n_points * dim, sizeof (float), _("k-NN training set"), error);
  index->norms2 = try_alloc (n_points, sizeof (double), _("k-NN training set"), error);
  if (index->points == NULL || index->norms2 == NULL)
    return NULL;
  memcpy (index->points, points, (gsize) n_points * dim * sizeof (float));
  double max2 = 0.0;
  for (gint64 r = 0; r < n_points; r++) {
    const float *row = points + r * dim;
    index->norms2[r] = dot_double (row, row, dim);
    max2 = MAX (max2, index->norms2[r]);
  }
  index->max_norm = sqrt (max2);
  return g_steal_pointer (&index);
}

void
aclip_knn_index_free (AclipKnnIndex *index)
{
  if (index == NULL)
    return;
  g_free (index->points);
  g_free (index->norms2);
  g_free (index);
}

gint64
aclip_knn_index_n_points (const AclipKnnIndex *index)
{
  g_return_val_if_fail (index != NULL, 0);
  return index->n;
}

int
aclip_knn_index_dim (const AclipKnnIndex *index)
{
  g_return_val_if_fail (index != NULL, 0);
  return index->dim;
}

typedef struct
{
  double key;   /* screening d̃², then the exact d² */
  gint64 index; /* point */
} Candidate;

/* One query's state during a scan: a max-heap of its k smallest screening values (its root is
 * the running k-th smallest, τ) and every point with d̃² ≤ τ + slack seen so far. */
typedef struct
{
  const float *query; /* [dim] */
  double norm2;       /* ‖q‖² */
  double slack;       /* 2ε: a point with d̃² > τ + slack cannot be among the k nearest */
  double *heap;       /* [k] */
  int heap_n;
  Candidate *candidates; /* [capacity] */
  gint64 n_candidates, capacity;
} KnnQuery;

static double
knn_query_limit (const KnnQuery *q, int k)
{
  return q->heap_n == k ? q->heap[0] + q->slack : INFINITY;
}

static void
heap_offer (double *heap, int *n, int k, double value)
{
  if (*n < k) {
    int i = (*n)++;
    heap[i] = value;
    while (i > 0) {
      int parent = (i - 1) / 2;
      if (heap[parent] >= heap[i])
        break;
      double t = heap[parent];
      heap[parent] = heap[i];
      heap[i] = t;
      i = parent;
    }
    return;
  }
  if (value >= heap[0])
    return;
  heap[0] = value;
  int i = 0;
  for (;;) {
    int left = 2 * i + 1, right = left + 1, largest = i;
    if (left < k && heap[left] > heap[largest])
      largest = left;
    if (right < k && heap[right] > heap[largest])
      largest = right;
    if (largest == i)
      break;
    double t = heap[largest];
    heap[largest] = heap[i];
    heap[i] = t;
    i = largest;
  }
}

static void
knn_query_prune (KnnQuery *q, int k)
{
  double limit = knn_query_limit (q, k);
  gint64 kept = 0;
  for (gint64 c = 0; c < q->n_candidates; c++)
    if (q->candidates[c].key <= limit)
      q->candidates[kept++] = q->candidates[c];
  q->n_candidates = kept;
  if (kept > q->capacity / 2) {
    q->capacity *= 2;
    q->candidates = g_renew (Candidate, q->candidates, q->capacity);
  }
}

typedef struct
{
  const AclipKnnIndex *index;
  KnnQuery *queries;   /* [block] */
  int k;
  const float *dots;   /* [block, count] */
  gint64 first, count; /* the point block */
  double *out_distances;
  gint64 *out_neighbours;
} KnnScan;

static void
knn_screen_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  KnnScan *scan = data;
  const double *norms2 = scan->index->norms2 + scan->first;
  int k = scan->k;
  for (gint64 b = begin; b < end; b++) {
    KnnQuery *q = &scan->queries[b];
    const float *dots = scan->dots + b * scan->count;
    for (gint64 j = 0; j < scan->count; j++) {
      double screen = q->norm2 + norms2[j] - 2.0 * (double) dots[j];
      if (screen > knn_query_limit (q, k))
        continue;
      heap_offer (q->heap, &q->heap_n, k, screen);
      if (q->n_candidates == q->capacity)
        knn_query_prune (q, k);
      q->candidates[q->n_candidates++] = (Candidate) { screen, scan->first + j };
    }
  }
}

static int
compare_candidates (const void *a, const void *b)
{
  const Candidate *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

/* Re-ranks each query's surviving candidates by the exact distance and writes its k nearest. */
static void
knn_finish_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  KnnScan *scan = data;
  const AclipKnnIndex *index = scan->index;
  int k = scan->k, dim = index->dim;
  for (gint64 b = begin; b < end; b++) {
    KnnQuery *q = &scan->queries[b];
    double limit = knn_query_limit (q, k);
    gint64 kept = 0;
    for (gint64 c = 0; c < q->n_candidates; c++) {
      Candidate candidate = q->candidates[c];
      if (candidate.key > limit)
        continue;
      candidate.key = distance2_double (q->query, index->points + candidate.index * dim, dim);
      q->candidates[kept++] = candidate;
    }
    qsort (q->candidates, kept, sizeof (Candidate), compare_candidates);
    gint64 *neighbours = scan->out_neighbours + b * k;
    double *distances = scan->out_distances + b * k;
    for (int j = 0; j < k; j++) {
      neighbours[j] = j < kept ? q->candidates[j].index : -1;
      distances[j] = j < kept ? sqrt (q->candidates[j].key) : NAN;
    }
  }
}

gboolean
aclip_knn_search (const AclipKnnIndex *index, AclipThreadPool *pool, const float *queries,
                  gint64 n_queries, int k, gint64 *neighbours, double *distances,
                  GError **error)
{
  g_return_val_if_fail (index != NULL && n_queries >= 0, FALSE);
  g_return_val_if_fail (n_queries == 0 || (queries && neighbours && distances), FALSE);
  if (k < 1) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("k must be at least 1 (it is %d)"), k);
    return FALSE;
  }
  int dim = index->dim;
  for (gint64 q = 0; q < n_queries; q++)
    if (!all_finite (queries + q * dim, dim)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("k-NN query %" PRId64 " is not finite"), q);
      return FALSE;
    }
  if (n_queries == 0)
    return TRUE;

  gint64 block_cap = MIN (n_queries, QUERY_BLOCK);
  gint64 point_cap = MIN (index->n, POINT_BLOCK);
  g_autofree float *dots = try_alloc (block_cap * point_cap, sizeof (float), "k-NN", error);
  g_autofree double *heaps = try_alloc (block_cap * k, sizeof (double), "k-NN", error);
  if (dots == NULL || heaps == NULL)
    return FALSE;
  g_autofree KnnQuery *states = g_new0 (KnnQuery, block_cap);
  /* Error of d̃² = ‖q‖² + ‖x‖² − 2·fl(q·x): 2γ‖q‖‖x‖ from the product, a few double roundings
   * of the sum. A point is kept while d̃² ≤ τ + 2ε. */
  double gamma = gamma_f32 (dim);
  int init_capacity = 2 * k + 32;
  for (gint64 b = 0; b < block_cap; b++) {
    states[b].heap = heaps + b * k;
    states[b].capacity = init_capacity;
    states[b].candidates = g_new (Candidate, init_capacity);
  }

  KnnScan scan = { index, states, k, dots, 0, 0, distances, neighbours };
  for (gint64 q0 = 0; q0 < n_queries; q0 += QUERY_BLOCK) {
    gint64 nq = MIN (QUERY_BLOCK, n_queries - q0);
    for (gint64 b = 0; b < nq; b++) {
      KnnQuery *state = &states[b];
      state->query = queries + (q0 + b) * dim;
      state->norm2 = dot_double (state->query, state->query, dim);
      double qn = sqrt (state->norm2), xn = index->max_norm;
      double epsilon = 2.0 * gamma * qn * xn + 8.0 * UNIT_ROUNDOFF_F64 * (qn + xn) * (qn + xn);
      state->slack = 2.0 * epsilon * 1.001 + 1e-300;
      state->heap_n = 0;
      state->n_candidates = 0;
    }
    scan.queries = states;
    scan.out_neighbours = neighbours + q0 * k;
    scan.out_distances = distances + q0 * k;
    for (gint64 p0 = 0; p0 < index->n; p0 += POINT_BLOCK) {
      gint64 np = MIN (POINT_BLOCK, index->n - p0);
      /* dots [nq, np] = queries [nq, dim] · points [np, dim]ᵀ */
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) nq, (int) np, dim, 1.0f,
                   queries + q0 * dim, dim, index->points + p0 * dim, dim, 0.0f, dots,
                   (int) np);
      scan.first = p0;
      scan.count = np;
      aclip_parallel_for (pool, nq, 4, knn_screen_worker, &scan);
    }
    aclip_parallel_for (pool, nq, 4, knn_finish_worker, &scan);
  }
  for (gint64 b = 0; b < block_cap; b++)
    g_free (states[b].candidates);
  return TRUE;
}

void
aclip_knn_predict (const gint64 *neighbours, const double *distances, gint64 n_queries, int k,
                   const double *targets, double *predictions)
{
  g_return_if_fail (k >= 1 && n_queries >= 0);
  for (gint64 q = 0; q < n_queries; q++) {
    const gint64 *rows = neighbours + q * k;
    const double *d = distances + q * k;
    double exact_sum = 0.0, weighted = 0.0, weights = 0.0;
    int n_exact = 0, n = 0;
    for (int j = 0; j < k && rows[j] >= 0; j++) {
      n++;
      if (d[j] == 0.0) {
        exact_sum += targets[rows[j]];
        n_exact++;
      } else {
        weighted += targets[rows[j]] / d[j];
        weights += 1.0 / d[j];
      }
    }
    if (n == 0)
      predictions[q] = NAN;
    else if (n_exact > 0)
      predictions[q] = exact_sum / n_exact;
    else
      predictions[q] = weighted / weights;
  }
}

gboolean
aclip_knn_regress (const float *train, const double *targets, gint64 n_train, int dim,
                   const float *queries, gint64 n_queries, int k, AclipThreadPool *pool,
                   double *predictions, GError **error)
{
  g_autoptr (AclipKnnIndex) index = aclip_knn_index_new (train, n_train, dim, error);
  if (index == NULL)
    return FALSE;
  if (k < 1) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("k must be at least 1 (it is %d)"), k);
    return FALSE;
  }
  g_autofree gint64 *neighbours = try_alloc (n_queries * k, sizeof (gint64), "k-NN", error);
  g_autofree double *distances = try_alloc (n_queries * k, sizeof (double), "k-NN", error);
  if (neighbours == NULL || distances == NULL ||
      !aclip_knn_search (index, pool, queries, n_queries, k, neighbours, distances, error))
    return FALSE;
  aclip_knn_predict (neighbours, distances, n_queries, k, targets, predictions);
  return TRUE;
}

/* Scores --------------------------------------------------------------------------------------- */

double
aclip_r2_score (const double *truth, const double *predicted, gint64 n, gint64 *n_used)
{
  double sum = 0.0;
  gint64 used = 0;
  for (gint64 i = 0; i < n; i++)
    if (isfinite (truth[i]) && isfinite (predicted[i])) {
      sum += truth[i];
      used++;
    }
  if (n_used)
    *n_used = used;
  if (used < 2)
    return NAN;
  double mean = sum / used, residual = 0.0, total = 0.0;
  for (gint64 i = 0; i < n; i++)
    if (isfinite (truth[i]) && isfinite (predicted[i])) {
      double e = truth[i] - predicted[i], d = truth[i] - mean;
      residual += e * e;
      total += d * d;
    }
  return total > 0.0 ? 1.0 - residual / total : NAN;
}

double
aclip_rmse (const double *truth, const double *predicted, gint64 n)
{
  double sum = 0.0;
  gint64 used = 0;
  for (gint64 i = 0; i < n; i++)
    if (isfinite (truth[i]) && isfinite (predicted[i])) {
      double e = truth[i] - predicted[i];
      sum += e * e;
      used++;
    }
  return used > 0 ? sqrt (sum / used) : NAN;
}

/* Retrieval ---------------------------------------------------------------------------------- */

typedef struct
{
  const float *queries, *targets; /* [n, dim] */
  int dim;
  const double *query_norms, *target_norms; /* [n] */
  const double *inverse_target_norms;       /* [n] */
  const double *own;                        /* [n] cos(q_i, t_i) */
  double epsilon;                           /* bound on |s̃ − s| */
  const float *dots;                        /* [block, count] */
  gint64 q0, first, count;
  gint64 *ranks;
} RankScan;

static void
rank_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  RankScan *scan = data;
  int dim = scan->dim;
  const double *inverse_t = scan->inverse_target_norms + scan->first;
  for (gint64 b = begin; b < end; b++) {
    gint64 i = scan->q0 + b;
    const float *dots = scan->dots + b * scan->count;
    double own = scan->own[i], qn = scan->query_norms[i];
    /* s̃ ‖q‖ = fl(q·t) / ‖t‖, compared with (own ± ε) ‖q‖ */
    double above_all = (own + scan->epsilon) * qn, below_all = (own - scan->epsilon) * qn;
    gint64 above = 0;
    for (gint64 c = 0; c < scan->count; c++) {
      double screen = (double) dots[c] * inverse_t[c];
      if (screen > above_all) {
        above++;
      } else if (screen >= below_all) {
        gint64 j = scan->first + c;
        if (j == i)
          continue;
        double exact = dot_double (scan->queries + i * dim, scan->targets + j * dim, dim) /
                       (scan->query_norms[i] * scan->target_norms[j]);
        above += exact >= own;
      }
    }
    /* the galaxy's own pair, if it fell in this block, was counted when clearly above */
    if (i >= scan->first && i < scan->first + scan->count &&
        (double) dots[i - scan->first] * inverse_t[i - scan->first] > above_all)
      above--;
    scan->ranks[i] += above;
  }
}

gboolean
aclip_retrieval_ranks (const float *queries, const float *targets, gint64 n, int dim,
                       AclipThreadPool *pool, gint64 *ranks, GError **error)
{
  g_return_val_if_fail (n >= 0 && dim >= 1, FALSE);
  g_return_val_if_fail (n == 0 || (queries && targets && ranks), FALSE);
  if (n == 0)
    return TRUE;
  g_autofree double *norms = try_alloc (3 * n, sizeof (double), "retrieval", error);
  g_autofree double *own = try_alloc (n, sizeof (double), "retrieval", error);
  gint64 block_cap = MIN (n, QUERY_BLOCK), point_cap = MIN (n, POINT_BLOCK);
  g_autofree float *dots = try_alloc (block_cap * point_cap, sizeof (float), "retrieval", error);
  if (norms == NULL || own == NULL || dots == NULL)
    return FALSE;
  for (gint64 i = 0; i < n; i++) {
    const float *rows[2] = { queries + i * dim, targets + i * dim };
    for (int side = 0; side < 2; side++) {
      double norm = all_finite (rows[side], dim) ? sqrt (dot_double (rows[side], rows[side], dim))
                                                 : NAN;
      if (!(norm > 0.0) || !isfinite (norm)) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                     side == 0 ? _("retrieval query %" PRId64 " is not finite or is zero")
                               : _("retrieval target %" PRId64 " is not finite or is zero"),
                     i);
        return FALSE;
      }
      norms[side * n + i] = norm;
    }
    norms[2 * n + i] = 1.0 / norms[n + i];
    own[i] = dot_double (rows[0], rows[1], dim) / (norms[i] * norms[n + i]);
    ranks[i] = 0;
  }
  RankScan scan = { queries, targets, dim, norms, norms + n, norms + 2 * n, own,
                    1.01 * gamma_f32 (dim) + 64 * UNIT_ROUNDOFF_F64, dots, 0, 0, 0, ranks };
  for (gint64 q0 = 0; q0 < n; q0 += QUERY_BLOCK) {
    gint64 nq = MIN (QUERY_BLOCK, n - q0);
    for (gint64 p0 = 0; p0 < n; p0 += POINT_BLOCK) {
      gint64 np = MIN (POINT_BLOCK, n - p0);
      /* dots [nq, np] = queries [nq, dim] · targets [np, dim]ᵀ */
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) nq, (int) np, dim, 1.0f,
                   queries + q0 * dim, dim, targets + p0 * dim, dim, 0.0f, dots, (int) np);
      scan.q0 = q0;
      scan.first = p0;
      scan.count = np;
      aclip_parallel_for (pool, nq, 4, rank_worker, &scan);
    }
  }
  return TRUE;
}

double
aclip_recall_at_k (const gint64 *ranks, gint64 n, gint64 k)
{
  if (n <= 0)
    return NAN;
  gint64 hits = 0;
  for (gint64 i = 0; i < n; i++)
    hits += ranks[i] < k;
  return (double) hits / n;
}

/* PCA ---------------------------------------------------------------------------------------- */

struct _AclipPca
{
  int dim, n_components;
  double *mean;      /* [dim] */
  float *components; /* [n_components, dim] */
  double *variances; /* [n_components] */
  double total_variance;
};

void
aclip_pca_free (AclipPca *pca)
{
  if (pca == NULL)
    return;
  g_free (pca->mean);
  g_free (pca->components);
  g_free (pca->variances);
  g_free (pca);
}

AclipPca *
aclip_pca_fit (const float *x, gint64 n_rows, int dim, int n_components, GError **error)
{
  g_return_val_if_fail (x != NULL || n_rows <= 0, NULL);
  if (n_rows < 2 || dim < 1 || n_components < 1) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("PCA needs at least 2 rows, 1 dimension and 1 component (it has %" PRId64
                   " rows of %d dimensions, %d components asked for)"),
                 n_rows, dim, n_components);
    return NULL;
  }
  if (dim > 16384) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("PCA of %d dimensions is beyond this implementation (at most 16384)"), dim);
    return NULL;
  }
  for (gint64 r = 0; r < n_rows; r++)
    if (!all_finite (x + r * dim, dim)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("PCA input row %" PRId64 " is not finite"), r);
      return NULL;
    }
  int m = MIN (n_components, dim);
  g_autoptr (AclipPca) pca = g_new0 (AclipPca, 1);
  pca->dim = dim;
  pca->n_components = m;
  pca->mean = g_new0 (double, dim);
  pca->components = g_new (float, (gsize) m * dim);
  pca->variances = g_new (double, m);

  for (gint64 r = 0; r < n_rows; r++)
    for (int i = 0; i < dim; i++)
      pca->mean[i] += x[r * dim + i];
  for (int i = 0; i < dim; i++)
    pca->mean[i] /= n_rows;

  /* covariance [dim, dim] (upper triangle from dsyrk, then mirrored) */
  g_autofree double *covariance = try_alloc ((gint64) dim * dim, sizeof (double), "PCA", error);
  g_autofree double *block =
      try_alloc ((gint64) MIN (n_rows, PCA_ROW_BLOCK) * dim, sizeof (double), "PCA", error);
  if (covariance == NULL || block == NULL)
    return NULL;
  memset (covariance, 0, (gsize) dim * dim * sizeof (double));
  for (gint64 r0 = 0; r0 < n_rows; r0 += PCA_ROW_BLOCK) {
    gint64 nr = MIN (PCA_ROW_BLOCK, n_rows - r0);
    for (gint64 r = 0; r < nr; r++)
      for (int i = 0; i < dim; i++)
        block[r * dim + i] = x[(r0 + r) * dim + i] - pca->mean[i];
    /* covariance += blockᵀ · block, block [nr, dim] */
    cblas_dsyrk (CblasRowMajor, CblasUpper, CblasTrans, dim, (int) nr, 1.0, block, dim, 1.0,
                 covariance, dim);
  }
  pca->total_variance = 0.0;
  for (int i = 0; i < dim; i++) {
    for (int j = i; j < dim; j++) {
      covariance[i * dim + j] /= (double) (n_rows - 1);
      covariance[j * dim + i] = covariance[i * dim + j];
    }
    pca->total_variance += covariance[i * dim + i];
  }

  /* The m largest eigenpairs. The matrix is symmetric and full, so LAPACK's column-major view
   * of it is the same matrix. */
  int n = dim, il = dim - m + 1, iu = dim, found = 0, info = 0, lwork = -1, liwork = -1;
  double vl = 0.0, vu = 0.0, abstol = 0.0, work_query = 0.0;
  int iwork_query = 0;
  g_autofree double *values = g_new (double, dim);
  g_autofree double *vectors = g_new (double, (gsize) dim * m); /* [m][dim]: column-major */
  g_autofree int *support = g_new (int, 2 * (gsize) m);
  dsyevr_ ("V", "I", "U", &n, covariance, &n, &vl, &vu, &il, &iu, &abstol, &found, values,
           vectors, &n, support, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1, 1);
  if (info == 0) {
    lwork = (int) work_query + 1;
    liwork = iwork_query;
    g_autofree double *work = g_try_new (double, lwork);
    g_autofree int *iwork = g_try_new (int, MAX (liwork, 1));
    if (work == NULL || iwork == NULL)
      info = -1000;
    else
      dsyevr_ ("V", "I", "U", &n, covariance, &n, &vl, &vu, &il, &iu, &abstol, &found, values,
               vectors, &n, support, work, &lwork, iwork, &liwork, &info, 1, 1, 1);
  }
  if (info != 0 || found != m) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("PCA: the eigen-decomposition failed (LAPACK dsyevr info %d, %d of %d "
                   "components)"),
                 info, found, m);
    return NULL;
  }
  /* dsyevr returns ascending eigenvalues: component c is eigenpair m − 1 − c. */
  for (int c = 0; c < m; c++) {
    const double *v = vectors + (gsize) (m - 1 - c) * dim;
    int largest = 0;
    for (int i = 1; i < dim; i++)
      if (fabs (v[i]) > fabs (v[largest]))
        largest = i;
    double sign = v[largest] < 0 ? -1.0 : 1.0;
    for (int i = 0; i < dim; i++)
      pca->components[(gsize) c * dim + i] = (float) (sign * v[i]);
    pca->variances[c] = MAX (values[m - 1 - c], 0.0);
  }
  return g_steal_pointer (&pca);
}

int
aclip_pca_dim (const AclipPca *pca)
{
  g_return_val_if_fail (pca != NULL, 0);
  return pca->dim;
}

int
aclip_pca_n_components (const AclipPca *pca)
{
  g_return_val_if_fail (pca != NULL, 0);
  return pca->n_components;
}

const double *
aclip_pca_mean (const AclipPca *pca)
{
  g_return_val_if_fail (pca != NULL, NULL);
  return pca->mean;
}

const float *
aclip_pca_components (const AclipPca *pca)
{
  g_return_val_if_fail (pca != NULL, NULL);
  return pca->components;
}

const double *
aclip_pca_variances (const AclipPca *pca)
{
  g_return_val_if_fail (pca != NULL, NULL);
  return pca->variances;
}

double
aclip_pca_total_variance (const AclipPca *pca)
{
  g_return_val_if_fail (pca != NULL, NAN);
  return pca->total_variance;
}

gboolean
aclip_pca_transform (const AclipPca *pca, const float *x, gint64 n_rows, float *scores,
                     GError **error)
{
  g_return_val_if_fail (pca != NULL && n_rows >= 0, FALSE);
  g_return_val_if_fail (n_rows == 0 || (x && scores), FALSE);
  int dim = pca->dim, m = pca->n_components;
  for (gint64 r = 0; r < n_rows; r++)
    if (!all_finite (x + r * dim, dim)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("PCA input row %" PRId64 " is not finite"), r);
      return FALSE;
    }
  g_autofree float *block =
      try_alloc ((gint64) MIN (MAX (n_rows, 1), PCA_ROW_BLOCK) * dim, sizeof (float), "PCA",
                 error);
  if (block == NULL)
    return FALSE;
  for (gint64 r0 = 0; r0 < n_rows; r0 += PCA_ROW_BLOCK) {
    gint64 nr = MIN (PCA_ROW_BLOCK, n_rows - r0);
    for (gint64 r = 0; r < nr; r++)
      for (int i = 0; i < dim; i++)
        block[r * dim + i] = (float) (x[(r0 + r) * dim + i] - pca->mean[i]);
    /* scores [nr, m] = block [nr, dim] · components [m, dim]ᵀ */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) nr, m, dim, 1.0f, block, dim,
                 pca->components, dim, 0.0f, scores + r0 * m, m);
  }
  return TRUE;
}

/* Baseline features ----------------------------------------------------------------------------- */

gboolean
aclip_photometry_features (const float flux[ACLIP_N_BANDS], float *features)
{
  double mag[ACLIP_N_BANDS];
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    if (!isfinite (flux[b]) || !(flux[b] > 0.0f)) {
      for (int i = 0; i < ACLIP_PHOTOMETRY_DIM; i++)
        features[i] = NAN;
      return FALSE;
    }
    mag[b] = 22.5 - 2.5 * log10 (flux[b]);
  }
  features[0] = (float) (mag[0] - mag[1]);
  features[1] = (float) (mag[1] - mag[2]);
  features[2] = (float) mag[1];
  return TRUE;
}

/* The crop: side S·f, its offset, the grid side S and block f. */
static void
pixel_layout (int height, int width, int *grid, int *factor, int *y0, int *x0)
{
  int crop = MIN (MIN (height, width), ACLIP_PIXEL_CROP);
  int f = (crop + ACLIP_PIXEL_GRID - 1) / ACLIP_PIXEL_GRID;
  *factor = MAX (f, 1);
  *grid = crop / *factor;
  int used = *grid * *factor;
  *y0 = (height - used) / 2;
  *x0 = (width - used) / 2;
}

int
aclip_pixel_features_dim (int height, int width)
{
  if (height < 1 || width < 1)
    return 0;
  int grid, factor, y0, x0;
  pixel_layout (height, width, &grid, &factor, &y0, &x0);
  return 3 * grid * grid;
}

void
aclip_pixel_features (const float *image, int height, int width, float *features)
{
  g_return_if_fail (image != NULL && features != NULL && height >= 1 && width >= 1);
  int grid, f, y0, x0;
  pixel_layout (height, width, &grid, &f, &y0, &x0);
  int side = grid * f;
  g_autofree float *crop = g_new (float, 3 * (gsize) side * side); /* [3, side, side] */
  g_autofree float *rgb = g_new (float, 3 * (gsize) side * side);  /* [side, side, 3] */
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < side; y++)
      memcpy (crop + ((gsize) b * side + y) * side,
              image + ((gsize) b * height + y0 + y) * width + x0, side * sizeof (float));
  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  aclip_rgb_forward (&params, crop, side, side, rgb);
  double norm = 1.0 / (f * f);
  for (int gy = 0; gy < grid; gy++)
    for (int gx = 0; gx < grid; gx++)
      for (int c = 0; c < 3; c++) {
        double sum = 0.0;
        for (int dy = 0; dy < f; dy++)
          for (int dx = 0; dx < f; dx++)
            sum += rgb[(((gsize) gy * f + dy) * side + gx * f + dx) * 3 + c];
        features[((gsize) gy * grid + gx) * 3 + c] = (float) (sum * norm);
      }
}

static int
spectrum_bin (int n_wave)
{
  return MAX (1, (n_wave + ACLIP_SPECTRUM_MAX_BINS - 1) / ACLIP_SPECTRUM_MAX_BINS);
}

int
aclip_spectrum_features_dim (int n_wave)
{
  if (n_wave < 1)
    return 0;
  int bin = spectrum_bin (n_wave);
  return (n_wave + bin - 1) / bin;
}

gboolean
aclip_spectrum_features (const float *flux, const float *ivar, int n_wave, float *features)
{
  g_return_val_if_fail (flux != NULL && ivar != NULL && features != NULL && n_wave >= 1, FALSE);
  int dim = aclip_spectrum_features_dim (n_wave), bin = spectrum_bin (n_wave);
  double sum = 0.0, sum2 = 0.0;
  gint64 good = 0;
  for (int i = 0; i < n_wave; i++)
    if (ivar[i] > 0.0f && isfinite (ivar[i]) && isfinite (flux[i])) {
      sum += flux[i];
      good++;
    }
  if (good < 2) {
    for (int i = 0; i < dim; i++)
      features[i] = NAN;
    return FALSE;
  }
  double mean = sum / good;
  for (int i = 0; i < n_wave; i++)
    if (ivar[i] > 0.0f && isfinite (ivar[i]) && isfinite (flux[i]))
      sum2 += (flux[i] - mean) * (flux[i] - mean);
  double std = sqrt (sum2 / good);
  double inverse = std > 0.0 ? 1.0 / std : 1.0;
  for (int b = 0; b < dim; b++) {
    double total = 0.0;
    int count = 0;
    for (int i = b * bin; i < MIN (n_wave, (b + 1) * bin); i++)
      if (ivar[i] > 0.0f && isfinite (ivar[i]) && isfinite (flux[i])) {
        total += (flux[i] - mean) * inverse;
        count++;
      }
    features[b] = count > 0 ? (float) (total / count) : 0.0f;
  }
  return TRUE;
}

int
aclip_raw_features_dim (AclipCatalogue *catalogue, AclipRawKind kind)
{
  g_return_val_if_fail (catalogue != NULL, 0);
  if (kind == ACLIP_RAW_PIXELS)
    return aclip_catalogue_has_images (catalogue)
               ? aclip_pixel_features_dim (aclip_catalogue_image_height (catalogue),
                                           aclip_catalogue_image_width (catalogue))
               : 0;
  return aclip_catalogue_has_spectra (catalogue)
             ? aclip_spectrum_features_dim (aclip_catalogue_n_wave (catalogue))
             : 0;
}

typedef struct
{
  const char *path;
  AclipRawKind kind;
  const gint64 *rows;
  float *features;
  gboolean *valid;
  int dim;
  AclipCatalogue **catalogues; /* [n_threads], one per worker, opened on first use */
  GMutex lock;
  GError *error; /* the first failure */
  gint failed;
} RawRead;

static void
raw_read_fail (RawRead *read, GError *error)
{
  g_mutex_lock (&read->lock);
  if (read->error == NULL)
    read->error = error;
  else
    g_error_free (error);
  g_mutex_unlock (&read->lock);
  g_atomic_int_set (&read->failed, 1);
}

static void
raw_read_worker (gint64 begin, gint64 end, int worker, gpointer data)
{
  RawRead *read = data;
  GError *error = NULL;
  if (read->catalogues[worker] == NULL) {
    read->catalogues[worker] = aclip_catalogue_open (read->path, &error);
    if (read->catalogues[worker] == NULL) {
      raw_read_fail (read, error);
      return;
    }
  }
  AclipCatalogue *catalogue = read->catalogues[worker];
  int height = aclip_catalogue_image_height (catalogue);
  int width = aclip_catalogue_image_width (catalogue);
  int n_wave = aclip_catalogue_n_wave (catalogue);
  g_autofree float *image = NULL, *flux = NULL, *ivar = NULL;
  if (read->kind == ACLIP_RAW_PIXELS) {
    image = g_new (float, 3 * (gsize) height * width);
  } else {
    flux = g_new (float, n_wave);
    ivar = g_new (float, n_wave);
  }
  for (gint64 i = begin; i < end; i++) {
    if (g_atomic_int_get (&read->failed))
      return;
    AclipGalaxy galaxy = { 0 };
    galaxy.image = image;
    galaxy.spectrum = flux;
    galaxy.spectrum_ivar = ivar;
    if (!aclip_catalogue_read_galaxy (catalogue, read->rows[i], &galaxy, &error)) {
      raw_read_fail (read, error);
      return;
    }
    float *out = read->features + i * read->dim;
    if (read->kind == ACLIP_RAW_PIXELS) {
      aclip_pixel_features (image, height, width, out);
      read->valid[i] = TRUE;
    } else {
      read->valid[i] = aclip_spectrum_features (flux, ivar, n_wave, out);
    }
  }
}

gboolean
aclip_raw_features_read (const char *catalogue_path, AclipRawKind kind, const gint64 *rows,
                         gint64 n_rows, AclipThreadPool *pool, float *features,
                         gboolean *valid, GError **error)
{
  g_return_val_if_fail (catalogue_path != NULL && n_rows >= 0, FALSE);
  g_return_val_if_fail (n_rows == 0 || (rows && features && valid), FALSE);
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (catalogue_path, error);
  if (catalogue == NULL)
    return FALSE;
  int dim = aclip_raw_features_dim (catalogue, kind);
  if (dim == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 kind == ACLIP_RAW_PIXELS ? _("%s: the catalogue holds no images")
                                          : _("%s: the catalogue holds no spectra"),
                 catalogue_path);
    return FALSE;
  }
  gint64 n_catalogue = aclip_catalogue_n_rows (catalogue);
  for (gint64 i = 0; i < n_rows; i++)
    if (rows[i] < 0 || rows[i] >= n_catalogue) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                   _("%s: there is no row %" PRId64 " (the catalogue has %" PRId64 ")"),
                   catalogue_path, rows[i], n_catalogue);
      return FALSE;
    }
  int n_threads = aclip_thread_pool_n_threads (pool);
  RawRead read = { catalogue_path, kind, rows, features, valid, dim, NULL, { 0 }, NULL, 0 };
  read.catalogues = g_new0 (AclipCatalogue *, n_threads);
  g_mutex_init (&read.lock);
  /* Worker 0 reuses the catalogue opened here. */
  read.catalogues[0] = g_steal_pointer (&catalogue);
  aclip_parallel_for (pool, n_rows, 16, raw_read_worker, &read);
  for (int t = 0; t < n_threads; t++)
    g_clear_pointer (&read.catalogues[t], aclip_catalogue_free);
  g_free (read.catalogues);
  g_mutex_clear (&read.lock);
  if (read.error) {
    g_propagate_error (error, read.error);
    return FALSE;
  }
  return TRUE;
}

/* Labels ---------------------------------------------------------------------------------------- */

gboolean
aclip_eval_is_default_label (const char *name)
{
  static const char *const excluded[] = {
    /* identity and position */
    "ID", "RA", "DEC", "TARGETID",
    /* survey and simulator bookkeeping */
    "PLATE", "MJD", "FIBER", "ZWARN", "Z_ERR", "SPECTYPE", "SPEC_SOURCE", "IMAGE_KIND",
    "PIXSCALE_IN", "MATCH_SEP", "SDSS_ROW", "COSMOS_ROW",
    /* observing conditions */
    "EBV", "PSF_BETA", "FIBER_FRAC", "SNR_SPEC", "HAS_NEIGHBOUR", "HAS_STAR",
    /* angles */
    "POS_ANGLE",
  };
  static const char *const excluded_prefixes[] = {
    "FLUX_", "MAG_", "COEFF_", "SEEING_", "PSFDEPTH_",
  };
  g_return_val_if_fail (name != NULL, FALSE);
  for (gsize i = 0; i < G_N_ELEMENTS (excluded); i++)
    if (g_ascii_strcasecmp (name, excluded[i]) == 0)
      return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (excluded_prefixes); i++)
    if (g_ascii_strncasecmp (name, excluded_prefixes[i], strlen (excluded_prefixes[i])) == 0)
      return FALSE;
  return TRUE;
}

/* Predictions files ------------------------------------------------------------------------------ */

#define PREDICTIONS_EXTNAME "PREDICTIONS"
#define PREDICTION_SUFFIX   "_PRED"

struct _AclipPredictions
{
  gint64 n;
  gint64 *ids;         /* [n] */
  GHashTable *columns; /* upper-case label → double [n] */
};

void
aclip_predictions_free (AclipPredictions *predictions)
{
  if (predictions == NULL)
    return;
  g_free (predictions->ids);
  g_clear_pointer (&predictions->columns, g_hash_table_unref);
  g_free (predictions);
}

gboolean
aclip_predictions_write (const char *path, gint64 n, const gint64 *ids, int n_labels,
                         const char *const *labels, const double *values, GError **error)
{
  g_return_val_if_fail (path != NULL && n >= 0 && n_labels >= 0, FALSE);
  g_return_val_if_fail (n == 0 || ids != NULL, FALSE);
  g_return_val_if_fail (n_labels == 0 || (labels != NULL && (n == 0 || values != NULL)), FALSE);
  g_autoptr (AclipFits) fits = aclip_fits_create_temporary (path, error);
  if (fits == NULL || !aclip_fits_write_empty_primary (fits, error))
    return FALSE;
  g_autofree AclipFitsColumnSpec *specs = g_new0 (AclipFitsColumnSpec, n_labels + 1);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  specs[0] = (AclipFitsColumnSpec) { "ID", "1K", NULL, 0, { 0 }, 1.0, 0.0 };
  for (int l = 0; l < n_labels; l++) {
    char *name = g_ascii_strup (labels[l], -1);
    char *column = g_strconcat (name, PREDICTION_SUFFIX, NULL);
    g_free (name);
    g_ptr_array_add (names, column);
    specs[l + 1] = (AclipFitsColumnSpec) { column, "1D", NULL, 0, { 0 }, 1.0, 0.0 };
  }
  if (!aclip_fits_append_table (fits, PREDICTIONS_EXTNAME, n_labels + 1, specs, error) ||
      !aclip_fits_write_comment (fits, "Predicted labels per galaxy (docs/evaluation.md).",
                                 error))
    return FALSE;
  if (n > 0) {
    if (!aclip_fits_write_column_int64 (fits, 1, 0, 0, n, ids, error))
      return FALSE;
    for (int l = 0; l < n_labels; l++)
      if (!aclip_fits_write_column_double (fits, l + 2, 0, 0, n, values + (gsize) l * n, error))
        return FALSE;
  }
  return aclip_fits_commit (fits, error);
}

AclipPredictions *
aclip_predictions_read (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  if (fits == NULL)
    return NULL;
  AclipFitsHduType type;
  if (aclip_fits_has_hdu (fits, PREDICTIONS_EXTNAME)) {
    if (!aclip_fits_move_to_name (fits, PREDICTIONS_EXTNAME, &type, error))
      return NULL;
  } else {
    gboolean found = FALSE;
    for (int h = 2; h <= aclip_fits_n_hdus (fits) && !found; h++) {
      if (!aclip_fits_move_to_index (fits, h, &type, error))
        return NULL;
      found = type == ACLIP_FITS_BINARY_TABLE;
    }
    if (!found) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   _("%s: no %s table (nor any binary table) in the file"), path,
                   PREDICTIONS_EXTNAME);
      return NULL;
    }
  }
  if (type != ACLIP_FITS_BINARY_TABLE) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: HDU %s is not a binary table"),
                 path, PREDICTIONS_EXTNAME);
    return NULL;
  }
  gint64 n = 0;
  AclipFitsColumn id_column;
  if (!aclip_fits_table_n_rows (fits, &n, error) ||
      !aclip_fits_column (fits, "ID", &id_column, error))
    return NULL;
  if (id_column.repeat != 1 || (id_column.type != ACLIP_FITS_TYPE_INT64 &&
                                id_column.type != ACLIP_FITS_TYPE_INT32)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: column ID must hold one integer per row"), path);
    return NULL;
  }
  g_autoptr (AclipPredictions) predictions = g_new0 (AclipPredictions, 1);
  predictions->n = n;
  predictions->ids = g_try_new (gint64, MAX (n, 1));
  predictions->columns = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (predictions->ids == NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, _("%s: too many rows (%" PRId64 ")"),
                 path, n);
    return NULL;
  }
  if (n > 0 && !aclip_fits_read_column_int64 (fits, id_column.number, 0, 0, n,
                                              predictions->ids, error))
    return NULL;
  int n_columns = aclip_fits_table_n_columns (fits);
  gsize suffix = strlen (PREDICTION_SUFFIX);
  for (int c = 1; c <= n_columns; c++) {
    g_autofree char *name = aclip_fits_column_name (fits, c);
    g_autofree char *upper = name ? g_ascii_strup (name, -1) : NULL;
    gsize length = upper ? strlen (upper) : 0;
    if (length <= suffix || strcmp (upper + length - suffix, PREDICTION_SUFFIX) != 0)
      continue;
    AclipFitsColumn column;
    if (!aclip_fits_column (fits, name, &column, error))
      return NULL;
    if (column.repeat != 1 || column.type == ACLIP_FITS_TYPE_STRING ||
        column.type == ACLIP_FITS_TYPE_LOGICAL || column.type == ACLIP_FITS_TYPE_OTHER) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("%s: column %s must hold one number per row"), path, name);
      return NULL;
    }
    double *values = g_new (double, MAX (n, 1));
    if (n > 0 && !aclip_fits_read_column_double (fits, column.number, 0, 0, n, values, error)) {
      g_free (values);
      return NULL;
    }
    g_hash_table_replace (predictions->columns, g_strndup (upper, length - suffix), values);
  }
  return g_steal_pointer (&predictions);
}

gint64
aclip_predictions_n_rows (const AclipPredictions *predictions)
{
  g_return_val_if_fail (predictions != NULL, 0);
  return predictions->n;
}

const gint64 *
aclip_predictions_ids (const AclipPredictions *predictions)
{
  g_return_val_if_fail (predictions != NULL, NULL);
  return predictions->ids;
}

const double *
aclip_predictions_values (const AclipPredictions *predictions, const char *label)
{
  g_return_val_if_fail (predictions != NULL && label != NULL, NULL);
  g_autofree char *upper = g_ascii_strup (label, -1);
  return g_hash_table_lookup (predictions->columns, upper);
}
