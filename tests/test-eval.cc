/* The evaluation library (core/aclip-eval.h) against brute-force double-precision references
 * and hand-computed values — standardisation, k-NN regression (weights, ties, exact matches,
 * k > n, near-cancellation), R², retrieval ranks and recall@k, PCA of a known low-rank data
 * set, the baselines' features, predictions files — and `astroclip eval` end to end on a
 * simulated catalogue with constructed embeddings, its JSON checked against a reference
 * computed here and its figures decoded. */
#include "test-support.h"

extern "C" {
#include "aclip-catalogue.h"
#include "aclip-embeddings.h"
#include "aclip-error.h"
#include "aclip-eval.h"
#include "aclip-parallel.h"
#include "aclip-render.h"
#include "aclip-split.h"
}

#include <gdk-pixbuf/gdk-pixbuf.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace {

std::vector<float>
random_matrix (std::mt19937_64 &rng, gint64 rows, int dim, double scale = 1.0)
{
  std::normal_distribution<double> normal;
  std::vector<float> m ((size_t) rows * dim);
  for (auto &x : m)
    x = (float) (scale * normal (rng));
  return m;
}

/* Reference k-NN: exact d² in double as Σ ((double) q − (double) x)², sorted by (d², index). */
struct RefNeighbour
{
  double d2;
  gint64 index;
};

std::vector<RefNeighbour>
reference_knn (const std::vector<float> &train, gint64 n, int dim, const float *query, int k)
{
  std::vector<RefNeighbour> all (n);
  for (gint64 i = 0; i < n; i++) {
    double sum = 0.0;
    for (int j = 0; j < dim; j++) {
      double d = (double) query[j] - (double) train[i * dim + j];
      sum += d * d;
    }
    all[i] = { sum, i };
  }
  std::sort (all.begin (), all.end (), [] (const RefNeighbour &a, const RefNeighbour &b) {
    return a.d2 != b.d2 ? a.d2 < b.d2 : a.index < b.index;
  });
  all.resize (std::min<gint64> (k, n));
  return all;
}

/* sklearn's weights='distance' written out independently. */
double
reference_predict (const std::vector<RefNeighbour> &neighbours, const std::vector<double> &y)
{
  std::vector<double> exact;
  for (const auto &nb : neighbours)
    if (nb.d2 == 0.0)
      exact.push_back (y[nb.index]);
  if (!exact.empty ()) {
    double sum = 0.0;
    for (double v : exact)
      sum += v;
    return sum / exact.size ();
  }
  double num = 0.0, den = 0.0;
  for (const auto &nb : neighbours) {
    double w = 1.0 / std::sqrt (nb.d2);
    num += w * y[nb.index];
    den += w;
  }
  return num / den;
}

/* Runs aclip_knn_search and compares every neighbour and distance with the reference, and the
 * predictions with reference_predict. */
void
check_knn_against_reference (const std::vector<float> &train, gint64 n, int dim,
                             const std::vector<float> &queries, gint64 n_queries, int k,
                             const std::vector<double> &targets, AclipThreadPool *pool,
                             const char *what)
{
  ErrorHolder error;
  AclipKnnIndex *index = aclip_knn_index_new (train.data (), n, dim, error.out ());
  ASSERT_NE (index, nullptr) << error->message;
  std::vector<gint64> neighbours ((size_t) n_queries * k);
  std::vector<double> distances ((size_t) n_queries * k);
  ASSERT_TRUE (aclip_knn_search (index, pool, queries.data (), n_queries, k, neighbours.data (),
                                 distances.data (), error.out ()))
      << error->message;
  aclip_knn_index_free (index);
  std::vector<double> predictions (n_queries);
  aclip_knn_predict (neighbours.data (), distances.data (), n_queries, k, targets.data (),
                     predictions.data ());
  int mismatches = 0;
  for (gint64 q = 0; q < n_queries && mismatches < 5; q++) {
    auto ref = reference_knn (train, n, dim, queries.data () + q * dim, k);
    for (int j = 0; j < k; j++) {
      gint64 got = neighbours[q * k + j];
      if (j < (int) ref.size ()) {
        if (got != ref[j].index || distances[q * k + j] != std::sqrt (ref[j].d2)) {
          ADD_FAILURE () << what << ": query " << q << " neighbour " << j << " is " << got
                         << " at " << distances[q * k + j] << ", reference " << ref[j].index
                         << " at " << std::sqrt (ref[j].d2);
          mismatches++;
        }
      } else {
        EXPECT_EQ (got, -1) << what;
        EXPECT_TRUE (std::isnan (distances[q * k + j])) << what;
      }
    }
    double expected = reference_predict (ref, targets);
    EXPECT_NEAR (predictions[q], expected, 1e-12 * (1.0 + std::fabs (expected)))
        << what << ": query " << q;
  }
}

} // namespace

/* Standardisation ----------------------------------------------------------------------------- */

TEST (Standardise, MeanAndPopulationStdSkippingNonFiniteRows)
{
  /* x [4, 3]: row 2 holds NaN and is skipped; column 2 is constant. */
  const float x[] = { 1, 10, 5, 3, 20, 5, NAN, 0, 5, 5, 30, 5 };
  double mean[3], scale[3];
  gint64 used = 0;
  ErrorHolder error;
  ASSERT_TRUE (aclip_standardise_fit (x, 4, 3, mean, scale, &used, error.out ()));
  EXPECT_EQ (used, 3);
  EXPECT_DOUBLE_EQ (mean[0], 3.0);
  EXPECT_DOUBLE_EQ (mean[1], 20.0);
  EXPECT_DOUBLE_EQ (mean[2], 5.0);
  EXPECT_DOUBLE_EQ (scale[0], std::sqrt (8.0 / 3.0)); /* divisor n, not n − 1 */
  EXPECT_DOUBLE_EQ (scale[1], std::sqrt (200.0 / 3.0));
  EXPECT_DOUBLE_EQ (scale[2], 1.0); /* constant: left at 1 */

  float out[12];
  aclip_standardise_apply (mean, scale, x, 4, 3, out);
  EXPECT_FLOAT_EQ (out[0], (float) (-2.0 / std::sqrt (8.0 / 3.0)));
  EXPECT_FLOAT_EQ (out[4], 0.0f);
  EXPECT_FLOAT_EQ (out[5], 0.0f);
  EXPECT_TRUE (std::isnan (out[6]));
  /* the standardised finite rows have mean 0 and std 1 in the varying columns */
  double sum = out[1] + out[4] + out[10], sum2 = out[1] * out[1] + out[4] * out[4] + out[10] * out[10];
  EXPECT_NEAR (sum, 0.0, 1e-6);
  EXPECT_NEAR (sum2 / 3.0, 1.0, 1e-6);
}

TEST (Standardise, NoFiniteRowIsAnError)
{
  const float x[] = { NAN, 1, INFINITY, 2 };
  double mean[2], scale[2];
  ErrorHolder error;
  EXPECT_FALSE (aclip_standardise_fit (x, 2, 2, mean, scale, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "finite");
}

/* k-NN ----------------------------------------------------------------------------------------- */

TEST (Knn, MatchesBruteForceAcrossBlocksAndThreads)
{
  /* More points than one sgemm block (2048) and more queries than one query block (256). */
  std::mt19937_64 rng (7);
  const gint64 n = 2600, n_queries = 300;
  const int dim = 12, k = 16;
  auto train = random_matrix (rng, n, dim);
  auto queries = random_matrix (rng, n_queries, dim);
  std::vector<double> targets (n);
  for (gint64 i = 0; i < n; i++)
    targets[i] = train[i * dim] * 2.0 + std::sin (train[i * dim + 1]);
  check_knn_against_reference (train, n, dim, queries, n_queries, k, targets, nullptr,
                               "serial");
  AclipThreadPool *pool = aclip_thread_pool_new (2);
  check_knn_against_reference (train, n, dim, queries, n_queries, k, targets, pool,
                               "two threads");
  check_knn_against_reference (train, n, dim, queries, n_queries, 1, targets, pool, "k = 1");
  aclip_thread_pool_free (pool);
}

TEST (Knn, TiesAreBrokenByTheLowerIndex)
{
  /* Points on an integer lattice, many of them twice: whole shells of equal distances. */
  std::vector<float> train;
  std::vector<double> targets;
  for (int copy = 0; copy < 2; copy++)
    for (int a = -3; a <= 3; a++)
      for (int b = -3; b <= 3; b++) {
        train.push_back ((float) a);
        train.push_back ((float) b);
        targets.push_back (a + 10.0 * b + 100.0 * copy);
      }
  gint64 n = (gint64) targets.size ();
  /* Queries between lattice points (ties at every shell) and on them (exact matches). */
  std::vector<float> queries = { 0.5f, 0.5f, 0.0f, 0.5f, 1.0f, 1.0f, -3.0f, 3.0f, 0.25f, 0.0f };
  for (int k : { 3, 4, 7, 16 })
    check_knn_against_reference (train, n, 2, queries, 5, k, targets, nullptr, "lattice");

  /* The first four neighbours of (0.5, 0.5) are the four lattice points around it at equal
   * distance, in index order: (0,0), (0,1), (1,0), (1,1) of the first copy. */
  ErrorHolder error;
  gint64 neighbours[4];
  double distances[4];
  AclipKnnIndex *index = aclip_knn_index_new (train.data (), n, 2, error.out ());
  ASSERT_NE (index, nullptr);
  ASSERT_TRUE (aclip_knn_search (index, nullptr, queries.data (), 1, 4, neighbours, distances,
                                 error.out ()));
  aclip_knn_index_free (index);
  auto at = [] (int a, int b) { return (gint64) ((a + 3) * 7 + (b + 3)); };
  EXPECT_EQ (neighbours[0], at (0, 0));
  EXPECT_EQ (neighbours[1], at (0, 1));
  EXPECT_EQ (neighbours[2], at (1, 0));
  EXPECT_EQ (neighbours[3], at (1, 1));
  for (double d : distances)
    EXPECT_DOUBLE_EQ (d, std::sqrt (0.5));
}

TEST (Knn, ExactMatchesAloneDecideThePrediction)
{
  /* Three copies of the query point with targets 1, 2, 6 and near points with huge targets:
   * only the coincident points count, equally (as sklearn's weights='distance'). */
  const float train[] = { 1, 1, 1.001f, 1, 1, 1, 0.999f, 1, 1, 1.002f, 1, 1 };
  const double targets[] = { 1.0, 1000.0, 2.0, 1000.0, 2000.0, 6.0 };
  const float query[] = { 1, 1 };
  double prediction = 0.0;
  ErrorHolder error;
  ASSERT_TRUE (aclip_knn_regress (train, targets, 6, 2, query, 1, 16, nullptr, &prediction,
                                  error.out ()))
      << error->message;
  EXPECT_DOUBLE_EQ (prediction, 3.0);

  /* No exact match: 1/d weights. Points at distances 1 and 3 with targets 0 and 4:
   * (0·1 + 4/3) / (1 + 1/3) = 1. */
  const float line[] = { 1, 0, -3, 0 };
  const double line_targets[] = { 0.0, 4.0 };
  const float origin[] = { 0, 0 };
  ASSERT_TRUE (aclip_knn_regress (line, line_targets, 2, 2, origin, 1, 2, nullptr, &prediction,
                                  error.out ()));
  EXPECT_DOUBLE_EQ (prediction, 1.0);
}

TEST (Knn, KLargerThanTheTrainingSetUsesEveryPoint)
{
  std::mt19937_64 rng (3);
  auto train = random_matrix (rng, 5, 4);
  auto queries = random_matrix (rng, 3, 4);
  std::vector<double> targets = { 1, 2, 3, 4, 5 };
  check_knn_against_reference (train, 5, 4, queries, 3, 16, targets, nullptr, "k > n");
}

TEST (Knn, NearCancellationIsResolvedExactly)
{
  /* Points far from the origin and close together: ‖q‖² + ‖x‖² − 2q·x loses most digits in
   * float32, so the screening alone would misorder them; the exact re-ranking must not. */
  std::mt19937_64 rng (11);
  const gint64 n = 400;
  const int dim = 24;
  auto train = random_matrix (rng, n, dim, 1e-3);
  auto queries = random_matrix (rng, 40, dim, 1e-3);
  for (auto &x : train)
    x += 300.0f;
  for (auto &x : queries)
    x += 300.0f;
  std::vector<double> targets (n);
  for (gint64 i = 0; i < n; i++)
    targets[i] = (double) i;
  check_knn_against_reference (train, n, dim, queries, 40, 10, targets, nullptr,
                               "near cancellation");
}

TEST (Knn, BadInputIsAnError)
{
  ErrorHolder error;
  const float good[] = { 0, 1, 2, 3 };
  const float bad[] = { 0, NAN, 2, 3 };
  EXPECT_EQ (aclip_knn_index_new (good, 0, 2, error.out ()), nullptr);
  EXPECT_NE (error.error, nullptr);
  EXPECT_EQ (aclip_knn_index_new (bad, 2, 2, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, "not finite");
  AclipKnnIndex *index = aclip_knn_index_new (good, 2, 2, error.out ());
  ASSERT_NE (index, nullptr);
  gint64 neighbours[2];
  double distances[2];
  EXPECT_FALSE (aclip_knn_search (index, nullptr, bad, 1, 1, neighbours, distances, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "query");
  EXPECT_FALSE (aclip_knn_search (index, nullptr, good, 1, 0, neighbours, distances, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "k must be");
  aclip_knn_index_free (index);
}

/* R² --------------------------------------------------------------------------------------------- */

TEST (Scores, R2ByHand)
{
  /* ȳ = 2.5, SS_tot = 5, SS_res = 0.25 + 0 + 0.25 + 0.25 = 0.75 → R² = 0.85. */
  const double truth[] = { 1, 2, 3, 4, NAN, 7 };
  const double predicted[] = { 1.5, 2, 2.5, 4.5, 9, NAN };
  gint64 used = 0;
  EXPECT_DOUBLE_EQ (aclip_r2_score (truth, predicted, 6, &used), 0.85);
  EXPECT_EQ (used, 4);
  EXPECT_DOUBLE_EQ (aclip_rmse (truth, predicted, 6), std::sqrt (0.75 / 4));

  const double mean_prediction[] = { 2.5, 2.5, 2.5, 2.5 };
  EXPECT_DOUBLE_EQ (aclip_r2_score (truth, mean_prediction, 4, nullptr), 0.0);
  EXPECT_DOUBLE_EQ (aclip_r2_score (truth, truth, 4, nullptr), 1.0);
  /* worse than the mean: negative */
  const double reversed[] = { 4, 3, 2, 1 };
  EXPECT_DOUBLE_EQ (aclip_r2_score (truth, reversed, 4, nullptr), 1.0 - 20.0 / 5.0);
  /* undefined: constant truth, or fewer than two pairs */
  const double constant[] = { 3, 3, 3 };
  EXPECT_TRUE (std::isnan (aclip_r2_score (constant, truth, 3, nullptr)));
  EXPECT_TRUE (std::isnan (aclip_r2_score (truth, predicted, 1, nullptr)));
}

/* Retrieval --------------------------------------------------------------------------------- */

namespace {

std::vector<gint64>
reference_ranks (const std::vector<float> &q, const std::vector<float> &t, gint64 n, int dim)
{
  auto cosine = [&] (gint64 i, gint64 j) {
    double dot = 0, nq = 0, nt = 0;
    for (int d = 0; d < dim; d++) {
      dot += (double) q[i * dim + d] * t[j * dim + d];
      nq += (double) q[i * dim + d] * q[i * dim + d];
      nt += (double) t[j * dim + d] * t[j * dim + d];
    }
    return dot / (std::sqrt (nq) * std::sqrt (nt));
  };
  std::vector<gint64> ranks (n, 0);
  for (gint64 i = 0; i < n; i++) {
    double own = cosine (i, i);
    for (gint64 j = 0; j < n; j++)
      if (j != i && cosine (i, j) >= own)
        ranks[i]++;
  }
  return ranks;
}

} // namespace

TEST (Retrieval, IdenticalEmbeddingsAreAlwaysFound)
{
  std::mt19937_64 rng (5);
  const gint64 n = 500;
  const int dim = 16;
  auto e = random_matrix (rng, n, dim);
  std::vector<gint64> ranks (n);
  ErrorHolder error;
  ASSERT_TRUE (aclip_retrieval_ranks (e.data (), e.data (), n, dim, nullptr, ranks.data (),
                                      error.out ()));
  for (gint64 i = 0; i < n; i++)
    ASSERT_EQ (ranks[i], 0) << "galaxy " << i;
  EXPECT_DOUBLE_EQ (aclip_recall_at_k (ranks.data (), n, 1), 1.0);
}

TEST (Retrieval, RandomEmbeddingsGiveChanceRecall)
{
  /* Independent random pairs: a galaxy's rank is uniform on 0 … N−1, so recall@k = k/N in
   * expectation; the count of hits is binomial. Bounds at ±4.5 standard deviations. */
  std::mt19937_64 rng (9);
  const gint64 n = 2200; /* more than one block of targets */
  const int dim = 32;
  auto q = random_matrix (rng, n, dim);
  auto t = random_matrix (rng, n, dim);
  std::vector<gint64> ranks (n);
  AclipThreadPool *pool = aclip_thread_pool_new (2);
  ErrorHolder error;
  ASSERT_TRUE (aclip_retrieval_ranks (q.data (), t.data (), n, dim, pool, ranks.data (),
                                      error.out ()));
  aclip_thread_pool_free (pool);
  for (gint64 k : { 10, 100, 1000 }) {
    double p = (double) k / n, sd = std::sqrt (p * (1 - p) / n);
    double recall = aclip_recall_at_k (ranks.data (), n, k);
    EXPECT_NEAR (recall, p, 4.5 * sd) << "recall@" << k;
  }
  /* and exactly the brute-force ranks on a subset (the first 300 pairs among themselves) */
  const gint64 m = 300;
  std::vector<float> qs (q.begin (), q.begin () + m * dim), ts (t.begin (), t.begin () + m * dim);
  std::vector<gint64> sub (m);
  ASSERT_TRUE (aclip_retrieval_ranks (qs.data (), ts.data (), m, dim, nullptr, sub.data (),
                                      error.out ()));
  EXPECT_EQ (sub, reference_ranks (qs, ts, m, dim));
}

TEST (Retrieval, NearTiesAreSettledExactly)
{
  /* Every vector is one direction plus a perturbation of 1e-3: all cosines lie within ~1e-6 of
   * 1, below what the float32 screening resolves, so the ranks rest on the exact re-checks. */
  std::mt19937_64 rng (17);
  const gint64 n = 300;
  const int dim = 32;
  auto base = random_matrix (rng, 1, dim);
  auto q = random_matrix (rng, n, dim, 1e-3);
  auto t = random_matrix (rng, n, dim, 1e-3);
  for (gint64 i = 0; i < n; i++)
    for (int d = 0; d < dim; d++) {
      q[i * dim + d] += base[d];
      t[i * dim + d] += base[d];
    }
  std::vector<gint64> ranks (n);
  ErrorHolder error;
  ASSERT_TRUE (aclip_retrieval_ranks (q.data (), t.data (), n, dim, nullptr, ranks.data (),
                                      error.out ()));
  EXPECT_EQ (ranks, reference_ranks (q, t, n, dim));
}

TEST (Retrieval, TiesCountAgainstTheGalaxy)
{
  /* Every target identical: each galaxy ties with all N − 1 others, so its rank is N − 1 and
   * recall@1 is 0 (conservative), recall@N is 1. Copies scaled by powers of two tie too
   * (cosine, exactly in floating point). */
  const gint64 n = 50;
  const int dim = 4;
  std::mt19937_64 rng (2);
  auto q = random_matrix (rng, n, dim);
  std::vector<float> t;
  for (gint64 i = 0; i < n; i++)
    for (int d = 0; d < dim; d++)
      t.push_back ((d == 0 ? 1.0f : 0.5f) * (float) (1 << (i % 4)));
  std::vector<gint64> ranks (n);
  ErrorHolder error;
  ASSERT_TRUE (aclip_retrieval_ranks (q.data (), t.data (), n, dim, nullptr, ranks.data (),
                                      error.out ()));
  for (gint64 i = 0; i < n; i++)
    EXPECT_EQ (ranks[i], n - 1);
  EXPECT_DOUBLE_EQ (aclip_recall_at_k (ranks.data (), n, 1), 0.0);
  EXPECT_DOUBLE_EQ (aclip_recall_at_k (ranks.data (), n, n), 1.0);

  std::vector<float> zero (t);
  std::fill (zero.begin () + 3 * dim, zero.begin () + 4 * dim, 0.0f);
  EXPECT_FALSE (aclip_retrieval_ranks (q.data (), zero.data (), n, dim, nullptr, ranks.data (),
                                       error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "target 3");
}

/* PCA ----------------------------------------------------------------------------------------- */

TEST (Pca, RecoversTheComponentsOfALowRankDataSet)
{
  /* x = μ + Σ_c s_c u_c + noise, with orthonormal u_c (Gram–Schmidt of random vectors),
   * score standard deviations 5, 3, 2, and noise 0.01 per dimension. */
  const int dim = 40, rank = 3;
  const gint64 n = 3000;
  const double sigma[rank] = { 5.0, 3.0, 2.0 };
  std::mt19937_64 rng (13);
  std::normal_distribution<double> normal;
  std::vector<std::vector<double>> u (rank, std::vector<double> (dim));
  for (int c = 0; c < rank; c++) {
    for (auto &v : u[c])
      v = normal (rng);
    for (int p = 0; p < c; p++) {
      double dot = 0;
      for (int i = 0; i < dim; i++)
        dot += u[c][i] * u[p][i];
      for (int i = 0; i < dim; i++)
        u[c][i] -= dot * u[p][i];
    }
    double norm = 0;
    for (double v : u[c])
      norm += v * v;
    for (auto &v : u[c])
      v /= std::sqrt (norm);
  }
  std::vector<double> mu (dim);
  for (int i = 0; i < dim; i++)
    mu[i] = 3.0 + i;
  std::vector<float> x ((size_t) n * dim);
  std::vector<double> scores ((size_t) n * rank);
  for (gint64 r = 0; r < n; r++) {
    for (int c = 0; c < rank; c++)
      scores[r * rank + c] = sigma[c] * normal (rng);
    for (int i = 0; i < dim; i++) {
      double v = mu[i] + 0.01 * normal (rng);
      for (int c = 0; c < rank; c++)
        v += scores[r * rank + c] * u[c][i];
      x[r * dim + i] = (float) v;
    }
  }
  ErrorHolder error;
  AclipPca *pca = aclip_pca_fit (x.data (), n, dim, 5, error.out ());
  ASSERT_NE (pca, nullptr) << error->message;
  ASSERT_EQ (aclip_pca_n_components (pca), 5);
  const float *v = aclip_pca_components (pca);
  const double *variances = aclip_pca_variances (pca);
  for (int c = 0; c < rank; c++) {
    double dot = 0;
    for (int i = 0; i < dim; i++)
      dot += v[c * dim + i] * u[c][i];
    EXPECT_GT (std::fabs (dot), 0.9999) << "component " << c;
    /* sample variance of a normal: relative standard error √(2/n) ≈ 2.6% */
    EXPECT_NEAR (variances[c], sigma[c] * sigma[c], 0.12 * sigma[c] * sigma[c]);
    /* sign convention: the largest-magnitude element is positive */
    int largest = 0;
    for (int i = 1; i < dim; i++)
      if (std::fabs (v[c * dim + i]) > std::fabs (v[c * dim + largest]))
        largest = i;
    EXPECT_GT (v[c * dim + largest], 0.0f);
  }
  for (int c = rank; c < 5; c++)
    EXPECT_LT (variances[c], 1e-3) << "noise component " << c;
  for (int c = 1; c < 5; c++)
    EXPECT_GE (variances[c - 1], variances[c]);
  /* orthonormal */
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 5; b++) {
      double dot = 0;
      for (int i = 0; i < dim; i++)
        dot += (double) v[a * dim + i] * v[b * dim + i];
      EXPECT_NEAR (dot, a == b ? 1.0 : 0.0, 1e-5);
    }
  EXPECT_NEAR (aclip_pca_total_variance (pca), 25.0 + 9.0 + 4.0, 0.12 * 38.0);
  for (int i = 0; i < dim; i++)
    EXPECT_NEAR (aclip_pca_mean (pca)[i], mu[i], 0.3);

  /* The scores are the true scores up to each component's sign (and the mean offset). */
  std::vector<float> projected ((size_t) n * 5);
  ASSERT_TRUE (aclip_pca_transform (pca, x.data (), n, projected.data (), error.out ()));
  for (int c = 0; c < rank; c++) {
    double dot = 0, a2 = 0, b2 = 0;
    for (gint64 r = 0; r < n; r++) {
      dot += projected[r * 5 + c] * scores[r * rank + c];
      a2 += (double) projected[r * 5 + c] * projected[r * 5 + c];
      b2 += scores[r * rank + c] * scores[r * rank + c];
    }
    EXPECT_GT (std::fabs (dot) / std::sqrt (a2 * b2), 0.999) << "scores of component " << c;
  }
  aclip_pca_free (pca);

  EXPECT_EQ (aclip_pca_fit (x.data (), 1, dim, 3, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, "at least 2 rows");
}

/* Features ------------------------------------------------------------------------------------ */

TEST (Features, Photometry)
{
  const float flux[3] = { 10.0f, 100.0f, 1000.0f }; /* magnitudes 20, 17.5, 15 */
  float features[3];
  ASSERT_TRUE (aclip_photometry_features (flux, features));
  EXPECT_FLOAT_EQ (features[0], 2.5f);
  EXPECT_FLOAT_EQ (features[1], 2.5f);
  EXPECT_FLOAT_EQ (features[2], 17.5f);
  const float negative[3] = { 10.0f, -1.0f, 5.0f };
  EXPECT_FALSE (aclip_photometry_features (negative, features));
  EXPECT_TRUE (std::isnan (features[0]));
}

TEST (Features, PixelsAreTheRgbMappingOfTheCentreCropBlockAveraged)
{
  EXPECT_EQ (aclip_pixel_features_dim (152, 152), 16 * 16 * 3);
  EXPECT_EQ (aclip_pixel_features_dim (24, 24), 12 * 12 * 3);
  EXPECT_EQ (aclip_pixel_features_dim (10, 12), 10 * 10 * 3);
  EXPECT_EQ (aclip_pixel_features_dim (0, 12), 0);

  /* 24×24: crop 24, blocks of 2 → 12×12. One bright pixel at (y, x) = (12, 13) lands in cell
   * (6, 6) and no other; its value there is a quarter of its rendered value plus three sky. */
  const int h = 24, w = 24;
  std::vector<float> image (3 * h * w, 0.0f);
  for (int b = 0; b < 3; b++)
    image[(b * h + 12) * w + 13] = 1.0f;
  std::vector<float> features (12 * 12 * 3);
  aclip_pixel_features (image.data (), h, w, features.data ());
  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  float sky_flux[3] = { 0, 0, 0 }, bright_flux[3] = { 1, 1, 1 }, sky[3], bright[3];
  aclip_rgb_forward (&params, sky_flux, 1, 1, sky);
  aclip_rgb_forward (&params, bright_flux, 1, 1, bright);
  for (int gy = 0; gy < 12; gy++)
    for (int gx = 0; gx < 12; gx++)
      for (int c = 0; c < 3; c++) {
        float expected = gy == 6 && gx == 6 ? 0.25f * bright[c] + 0.75f * sky[c] : sky[c];
        ASSERT_NEAR (features[(gy * 12 + gx) * 3 + c], expected, 1e-6)
            << "cell " << gy << "," << gx << " channel " << c;
      }
}

TEST (Features, SpectraAreZScoredAndBinnedOverGoodPixels)
{
  EXPECT_EQ (aclip_spectrum_features_dim (ACLIP_DESI_N_WAVE), 973);
  EXPECT_EQ (aclip_spectrum_features_dim (1000), 1000);
  EXPECT_EQ (aclip_spectrum_features_dim (2048), 1024);

  /* 2048 pixels → bins of 2. Flux alternates 1, 3 (mean 2, std 1) except a bad pixel pair. */
  const int n = 2048;
  std::vector<float> flux (n), ivar (n, 1.0f), features (1024);
  for (int i = 0; i < n; i++)
    flux[i] = i % 2 ? 3.0f : 1.0f;
  flux[10] = 1000.0f; /* bad: ivar 0, ignored */
  ivar[10] = 0.0f;
  flux[20] = 500.0f; /* a whole bad bin */
  flux[21] = NAN;
  ivar[20] = ivar[21] = 0.0f;
  ASSERT_TRUE (aclip_spectrum_features (flux.data (), ivar.data (), n, features.data ()));
  /* 2045 good pixels: 1022 ones and 1023 threes */
  double mean = (1022.0 * 1 + 1023.0 * 3) / 2045.0;
  double var = (1022.0 * (1 - mean) * (1 - mean) + 1023.0 * (3 - mean) * (3 - mean)) / 2045.0;
  double z1 = (1 - mean) / std::sqrt (var), z3 = (3 - mean) / std::sqrt (var);
  EXPECT_NEAR (features[0], 0.5 * (z1 + z3), 1e-6);
  EXPECT_NEAR (features[5], z3, 1e-6); /* pixel 10 dropped: only pixel 11 */
  EXPECT_EQ (features[10], 0.0f);      /* no good pixel: the mean */

  std::fill (ivar.begin (), ivar.end (), 0.0f);
  ivar[3] = 1.0f;
  EXPECT_FALSE (aclip_spectrum_features (flux.data (), ivar.data (), n, features.data ()));
  EXPECT_TRUE (std::isnan (features[0]));
}

TEST (Labels, DefaultRule)
{
  for (const char *yes : { "Z", "LOGMSTAR", "SSFR", "SFR", "TYPE", "R_EFF", "SERSIC_N",
                           "EW_HALPHA", "ABSMAG_R", "BULGE_FRAC" })
    EXPECT_TRUE (aclip_eval_is_default_label (yes)) << yes;
  for (const char *no : { "ID", "RA", "DEC", "FLUX_G", "MAG_R", "COEFF_0", "SEEING_Z",
                          "PSFDEPTH_G", "EBV", "ZWARN", "Z_ERR", "TARGETID", "POS_ANGLE",
                          "SNR_SPEC", "HAS_STAR", "SDSS_ROW", "PLATE" })
    EXPECT_FALSE (aclip_eval_is_default_label (no)) << no;
}

TEST (Predictions, RoundTrip)
{
  TempDir dir;
  std::string path = dir.path ("pred.fits");
  const gint64 ids[] = { 5, 9, 2 };
  const char *labels[] = { "Z", "logmstar" };
  const double values[] = { 0.1, 0.2, NAN, 10.5, 11.0, 9.5 };
  ErrorHolder error;
  ASSERT_TRUE (aclip_predictions_write (path.c_str (), 3, ids, 2, labels, values, error.out ()))
      << error->message;
  AclipPredictions *read = aclip_predictions_read (path.c_str (), error.out ());
  ASSERT_NE (read, nullptr) << error->message;
  ASSERT_EQ (aclip_predictions_n_rows (read), 3);
  EXPECT_EQ (aclip_predictions_ids (read)[2], 2);
  const double *z = aclip_predictions_values (read, "z");
  const double *m = aclip_predictions_values (read, "LOGMSTAR");
  ASSERT_NE (z, nullptr);
  ASSERT_NE (m, nullptr);
  EXPECT_DOUBLE_EQ (z[1], 0.2);
  EXPECT_TRUE (std::isnan (z[2]));
  EXPECT_DOUBLE_EQ (m[2], 9.5);
  EXPECT_EQ (aclip_predictions_values (read, "SSFR"), nullptr);
  aclip_predictions_free (read);

  EXPECT_EQ (aclip_predictions_read (dir.path ("missing.fits").c_str (), error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, "missing.fits");
}

/* `astroclip eval` end to end ------------------------------------------------------------------- */

namespace {

/* A small JSON reader, enough for eval.json (and strict enough to reject malformed text). */
struct Json
{
  enum Type { NUL, BOOL, NUMBER, STRING, ARRAY, OBJECT } type = NUL;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json &
  operator[] (const std::string &key) const
  {
    static const Json missing;
    for (const auto &member : object)
      if (member.first == key)
        return member.second;
    ADD_FAILURE () << "JSON has no key " << key;
    return missing;
  }
  bool has (const std::string &key) const
  {
    for (const auto &member : object)
      if (member.first == key)
        return true;
    return false;
  }
};

class JsonParser
{
public:
  explicit JsonParser (const std::string &text) : s_ (text) {}
  bool
  parse (Json &out)
  {
    if (!value (out))
      return false;
    skip ();
    return pos_ == s_.size ();
  }

private:
  const std::string &s_;
  size_t pos_ = 0;
  void skip ()
  {
    while (pos_ < s_.size () && std::strchr (" \t\r\n", s_[pos_]))
      pos_++;
  }
  bool literal (const char *word)
  {
    size_t n = std::strlen (word);
    if (s_.compare (pos_, n, word) != 0)
      return false;
    pos_ += n;
    return true;
  }
  bool
  string (std::string &out)
  {
    if (s_[pos_] != '"')
      return false;
    pos_++;
    while (pos_ < s_.size () && s_[pos_] != '"') {
      if (s_[pos_] == '\\') {
        pos_++;
        if (pos_ >= s_.size ())
          return false;
        char c = s_[pos_];
        if (c == 'u') {
          if (pos_ + 4 >= s_.size ())
            return false;
          out += '?';
          pos_ += 4;
        } else {
          out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
        pos_++;
      } else {
        if ((unsigned char) s_[pos_] < 0x20)
          return false;
        out += s_[pos_++];
      }
    }
    if (pos_ >= s_.size ())
      return false;
    pos_++;
    return true;
  }
  bool
  value (Json &out)
  {
    skip ();
    if (pos_ >= s_.size ())
      return false;
    char c = s_[pos_];
    if (c == '{') {
      out.type = Json::OBJECT;
      pos_++;
      skip ();
      if (s_[pos_] == '}') {
        pos_++;
        return true;
      }
      for (;;) {
        skip ();
        std::string key;
        if (!string (key))
          return false;
        skip ();
        if (s_[pos_++] != ':')
          return false;
        Json member;
        if (!value (member))
          return false;
        out.object.emplace_back (key, member);
        skip ();
        if (s_[pos_] == ',') {
          pos_++;
          continue;
        }
        if (s_[pos_] == '}') {
          pos_++;
          return true;
        }
        return false;
      }
    }
    if (c == '[') {
      out.type = Json::ARRAY;
      pos_++;
      skip ();
      if (s_[pos_] == ']') {
        pos_++;
        return true;
      }
      for (;;) {
        Json element;
        if (!value (element))
          return false;
        out.array.push_back (element);
        skip ();
        if (s_[pos_] == ',') {
          pos_++;
          continue;
        }
        if (s_[pos_] == ']') {
          pos_++;
          return true;
        }
        return false;
      }
    }
    if (c == '"') {
      out.type = Json::STRING;
      return string (out.string);
    }
    if (literal ("null")) {
      out.type = Json::NUL;
      return true;
    }
    if (literal ("true") || literal ("false")) {
      out.type = Json::BOOL;
      out.boolean = s_[pos_ - 1] == 'e' && s_[pos_ - 2] == 'u';
      return true;
    }
    char *end = nullptr;
    out.number = g_ascii_strtod (s_.c_str () + pos_, &end);
    if (end == s_.c_str () + pos_)
      return false;
    out.type = Json::NUMBER;
    pos_ = end - s_.c_str ();
    return true;
  }
};

Json
read_json (const std::string &path)
{
  gchar *contents = nullptr;
  Json json;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &contents, nullptr, nullptr)) << path;
  if (!contents)
    return json;
  std::string text (contents);
  g_free (contents);
  EXPECT_TRUE (JsonParser (text).parse (json)) << path << " is not valid JSON";
  return json;
}

/* What the test knows about the simulated catalogue. */
struct Catalogue
{
  std::vector<gint64> ids;
  std::vector<double> z, logmstar;
};

Catalogue
read_catalogue (const std::string &path)
{
  Catalogue c;
  ErrorHolder error;
  AclipCatalogue *catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  EXPECT_NE (catalogue, nullptr) << (error.error ? error->message : "");
  if (!catalogue)
    return c;
  gint64 n = aclip_catalogue_n_rows (catalogue);
  c.ids.resize (n);
  c.z.resize (n);
  c.logmstar.resize (n);
  EXPECT_TRUE (aclip_catalogue_read_ids (catalogue, 0, n, c.ids.data (), error.out ()));
  EXPECT_TRUE (aclip_catalogue_read_column (catalogue, "Z", 0, n, c.z.data (), error.out ()));
  EXPECT_TRUE (aclip_catalogue_read_column (catalogue, "LOGMSTAR", 0, n, c.logmstar.data (),
                                            error.out ()));
  aclip_catalogue_free (catalogue);
  return c;
}

/* Embeddings [n, dim] for both modalities, written with the library's writer (which
 * normalises them); returns the normalised vectors as stored. */
void
write_embeddings (const std::string &path, const std::vector<gint64> &ids,
                  const std::vector<float> &image, const std::vector<float> &spectrum, int dim)
{
  ErrorHolder error;
  AclipEmbeddingsLayout layout = { dim, TRUE, TRUE, "test-model", "sim.fits" };
  AclipEmbeddingsWriter *writer = aclip_embeddings_writer_new (path.c_str (), &layout,
                                                               error.out ());
  ASSERT_NE (writer, nullptr) << error->message;
  ASSERT_TRUE (aclip_embeddings_writer_append (writer, (gint64) ids.size (), ids.data (),
                                               image.data (), spectrum.data (), error.out ()))
      << error->message;
  ASSERT_TRUE (aclip_embeddings_writer_finish (writer, error.out ())) << error->message;
  aclip_embeddings_writer_free (writer);
}

/* The reference the command must reproduce: standardise with the training rows, exact k-NN
 * with 1/d weights, R² over the test rows. */
double
reference_r2 (const Catalogue &c, const std::vector<float> &fit_vectors,
              const std::vector<float> &query_vectors, int dim, const std::vector<double> &y,
              int k)
{
  std::vector<gint64> train, test;
  for (size_t r = 0; r < c.ids.size (); r++) {
    AclipSplit split = aclip_split_of_id (c.ids[r]);
    if (split == ACLIP_SPLIT_TRAIN)
      train.push_back ((gint64) r);
    else if (split == ACLIP_SPLIT_TEST)
      test.push_back ((gint64) r);
  }
  std::vector<double> mean (dim, 0.0), scale (dim, 0.0);
  for (gint64 r : train)
    for (int d = 0; d < dim; d++)
      mean[d] += fit_vectors[r * dim + d];
  for (int d = 0; d < dim; d++)
    mean[d] /= (double) train.size ();
  for (gint64 r : train)
    for (int d = 0; d < dim; d++) {
      double e = fit_vectors[r * dim + d] - mean[d];
      scale[d] += e * e;
    }
  for (int d = 0; d < dim; d++) {
    scale[d] = std::sqrt (scale[d] / (double) train.size ());
    if (!(scale[d] > 0))
      scale[d] = 1.0;
  }
  auto standardise = [&] (const std::vector<float> &v, const std::vector<gint64> &rows) {
    std::vector<float> out (rows.size () * dim);
    for (size_t i = 0; i < rows.size (); i++)
      for (int d = 0; d < dim; d++)
        out[i * dim + d] = (float) ((v[rows[i] * dim + d] - mean[d]) / scale[d]);
    return out;
  };
  std::vector<float> train_std = standardise (fit_vectors, train);
  std::vector<float> test_std = standardise (query_vectors, test);
  std::vector<double> train_y, truth, predicted;
  for (gint64 r : train)
    train_y.push_back (y[r]);
  for (size_t i = 0; i < test.size (); i++) {
    auto nb = reference_knn (train_std, (gint64) train.size (), dim, test_std.data () + i * dim, k);
    predicted.push_back (reference_predict (nb, train_y));
    truth.push_back (y[test[i]]);
  }
  double mean_y = 0;
  for (double v : truth)
    mean_y += v;
  mean_y /= truth.size ();
  double res = 0, tot = 0;
  for (size_t i = 0; i < truth.size (); i++) {
    res += (truth[i] - predicted[i]) * (truth[i] - predicted[i]);
    tot += (truth[i] - mean_y) * (truth[i] - mean_y);
  }
  return 1.0 - res / tot;
}

/* Recall@k among the test rows, by brute force. */
double
reference_recall (const Catalogue &c, const std::vector<float> &q, const std::vector<float> &t,
                  int dim, gint64 k)
{
  std::vector<float> qs, ts;
  gint64 n = 0;
  for (size_t r = 0; r < c.ids.size (); r++)
    if (aclip_split_of_id (c.ids[r]) == ACLIP_SPLIT_TEST) {
      qs.insert (qs.end (), q.begin () + r * dim, q.begin () + (r + 1) * dim);
      ts.insert (ts.end (), t.begin () + r * dim, t.begin () + (r + 1) * dim);
      n++;
    }
  auto ranks = reference_ranks (qs, ts, n, dim);
  gint64 hits = 0;
  for (gint64 rank : ranks)
    hits += rank < k;
  return (double) hits / n;
}

/* The PNG: magic bytes, decodable, the expected size, and not blank (dark ink on at least 1% of
 * the pixels and some blue of the data). */
void
check_png (const std::string &path)
{
  gchar *contents = nullptr;
  gsize length = 0;
  ASSERT_TRUE (g_file_get_contents (path.c_str (), &contents, &length, nullptr)) << path;
  static const unsigned char magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  EXPECT_GE (length, 8u);
  EXPECT_EQ (std::memcmp (contents, magic, 8), 0) << path << " is not a PNG";
  g_free (contents);
  GError *error = nullptr;
  GdkPixbuf *pixbuf = gdk_pixbuf_new_from_file (path.c_str (), &error);
  ASSERT_NE (pixbuf, nullptr) << (error ? error->message : "");
  int w = gdk_pixbuf_get_width (pixbuf), h = gdk_pixbuf_get_height (pixbuf);
  EXPECT_GE (w, 400);
  EXPECT_GE (h, 400);
  int channels = gdk_pixbuf_get_n_channels (pixbuf), stride = gdk_pixbuf_get_rowstride (pixbuf);
  const guint8 *pixels = gdk_pixbuf_read_pixels (pixbuf);
  gint64 ink = 0, blue = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const guint8 *p = pixels + y * stride + x * channels;
      if (p[0] + p[1] + p[2] < 3 * 200)
        ink++;
      if (p[2] > p[0] + 40 && p[2] > 120)
        blue++;
    }
  EXPECT_GT (ink, (gint64) w * h / 100) << path << " is nearly blank";
  EXPECT_GT (blue, 20) << path << " shows no data points";
  g_object_unref (pixbuf);
}

} // namespace

TEST (EvalCommand, EndToEnd)
{
  TempDir dir;
  std::string catalogue_path = dir.path ("sim.fits");
  std::string out, err;
  ASSERT_EQ (run_astroclip ({ "simulate", "--n", "400", "--image-size", "24", "--out",
                              catalogue_path },
                            &out, &err),
             0)
      << err;
  Catalogue c = read_catalogue (catalogue_path);
  const gint64 n = (gint64) c.ids.size ();
  ASSERT_EQ (n, 400);

  /* Informative embeddings: a constant (so normalisation changes little), the standardised
   * z and log M* with noise (less in the spectrum), and their mean. (No pure-noise
   * dimension: standardisation would give it the weight of the others.) */
  auto standardised = [] (const std::vector<double> &v) {
    double mean = 0, var = 0;
    for (double x : v)
      mean += x;
    mean /= v.size ();
    for (double x : v)
      var += (x - mean) * (x - mean);
    double sd = std::sqrt (var / v.size ());
    std::vector<double> out;
    for (double x : v)
      out.push_back ((x - mean) / sd);
    return out;
  };
  std::vector<double> zs = standardised (c.z), ms = standardised (c.logmstar);
  const int dim = 4;
  std::mt19937_64 rng (21);
  std::normal_distribution<double> normal;
  std::vector<float> image (n * dim), spectrum (n * dim), noise_a (n * dim), noise_b (n * dim);
  for (gint64 r = 0; r < n; r++) {
    double zi = zs[r] + 0.15 * normal (rng), mi = ms[r] + 0.15 * normal (rng);
    double zt = zs[r] + 0.05 * normal (rng), mt = ms[r] + 0.05 * normal (rng);
    float *a = &image[r * dim], *b = &spectrum[r * dim];
    a[0] = b[0] = 8.0f;
    a[1] = (float) zi, a[2] = (float) mi, b[1] = (float) zt, b[2] = (float) mt;
    a[3] = (float) (0.5 * (zi + mi));
    b[3] = (float) (0.5 * (zt + mt));
    for (int d = 0; d < dim; d++) {
      noise_a[r * dim + d] = (float) normal (rng);
      noise_b[r * dim + d] = (float) normal (rng);
    }
  }
  std::string good_path = dir.path ("good.fits"), noise_path = dir.path ("noise.fits");
  write_embeddings (good_path, c.ids, image, spectrum, dim);
  write_embeddings (noise_path, c.ids, noise_a, noise_b, dim);

  /* The stored (normalised) vectors, in catalogue order (the same order as written). */
  auto stored = [&] (const std::string &path, AclipModality modality) {
    ErrorHolder error;
    AclipEmbeddings *e = aclip_embeddings_open (path.c_str (), error.out ());
    EXPECT_NE (e, nullptr);
    std::vector<float> v (n * dim);
    for (gint64 r = 0; r < n; r++)
      std::memcpy (&v[r * dim], aclip_embeddings_row (e, modality, aclip_embeddings_find (e, c.ids[r])),
                   dim * sizeof (float));
    aclip_embeddings_free (e);
    return v;
  };
  std::vector<float> si = stored (good_path, ACLIP_MODALITY_IMAGE);
  std::vector<float> ss = stored (good_path, ACLIP_MODALITY_SPECTRUM);

  /* A supervised predictions file: Z_PRED = z + noise for the test galaxies and LOGMSTAR_PRED
   * exact; only test galaxies are scored. */
  std::vector<gint64> pred_ids;
  std::vector<double> z_pred, m_pred;
  for (gint64 r = 0; r < n; r++) {
    pred_ids.push_back (c.ids[r]);
    z_pred.push_back (c.z[r] + 0.01 * normal (rng));
    m_pred.push_back (c.logmstar[r]);
  }
  std::vector<double> pred_values (z_pred);
  pred_values.insert (pred_values.end (), m_pred.begin (), m_pred.end ());
  const char *pred_labels[] = { "Z", "LOGMSTAR" };
  std::string pred_path = dir.path ("pred.fits");
  ErrorHolder error;
  ASSERT_TRUE (aclip_predictions_write (pred_path.c_str (), n, pred_ids.data (), 2, pred_labels,
                                        pred_values.data (), error.out ()));

  std::string good_dir = dir.path ("good-eval");
  int status = run_astroclip ({ "eval", "--catalogue", catalogue_path, "--embeddings", good_path,
                                "--out-dir", good_dir, "--supervised", pred_path, "--threads",
                                "2" },
                              &out, &err);
  ASSERT_EQ (status, 0) << err;
  EXPECT_NE (out.find ("LOGMSTAR"), std::string::npos) << out;
  EXPECT_NE (out.find ("recall@10"), std::string::npos) << out;

  Json json = read_json (good_dir + "/eval.json");
  ASSERT_EQ (json.type, Json::OBJECT);
  EXPECT_EQ (json["k"].number, 16);
  gint64 n_test = 0;
  for (gint64 id : c.ids)
    n_test += aclip_split_of_id (id) == ACLIP_SPLIT_TEST;
  EXPECT_EQ (json["galaxies"]["test"].number, (double) n_test);
  EXPECT_EQ (json["labels"].array[0].string, "Z");
  EXPECT_EQ (json["labels"].array[1].string, "LOGMSTAR");
  EXPECT_GT (json["labels"].array.size (), 5u); /* the simulator's other physical labels */

  const Json &r2 = json["r2"];
  double z_image = r2["Z"]["image"]["r2"].number, z_spectrum = r2["Z"]["spectrum"]["r2"].number;
  double z_cross = r2["Z"]["cross_modal"]["r2"].number;
  double m_image = r2["LOGMSTAR"]["image"]["r2"].number;
  double m_spectrum = r2["LOGMSTAR"]["spectrum"]["r2"].number;
  printf ("measured R²: Z image %.4f spectrum %.4f cross %.4f; LOGMSTAR image %.4f spectrum "
          "%.4f cross %.4f; Z photometry %.4f PCA pixels %.4f PCA spectra %.4f\n",
          z_image, z_spectrum, z_cross, m_image, m_spectrum,
          r2["LOGMSTAR"]["cross_modal"]["r2"].number, r2["Z"]["photometry"]["r2"].number,
          r2["Z"]["pca_pixels"]["r2"].number, r2["Z"]["pca_spectra"]["r2"].number);
  /* the reference computation, from the stored vectors */
  EXPECT_NEAR (z_image, reference_r2 (c, si, si, dim, c.z, 16), 1e-9);
  EXPECT_NEAR (z_spectrum, reference_r2 (c, ss, ss, dim, c.z, 16), 1e-9);
  EXPECT_NEAR (z_cross, reference_r2 (c, ss, si, dim, c.z, 16), 1e-9);
  EXPECT_NEAR (m_image, reference_r2 (c, si, si, dim, c.logmstar, 16), 1e-9);
  EXPECT_NEAR (m_spectrum, reference_r2 (c, ss, ss, dim, c.logmstar, 16), 1e-9);
  /* and what the construction implies: informative embeddings predict well */
  EXPECT_GT (z_spectrum, 0.85);
  EXPECT_GT (m_spectrum, 0.85);
  EXPECT_GT (z_image, 0.7);
  EXPECT_GT (m_image, 0.7);
  EXPECT_EQ (r2["Z"]["image"]["n"].number, (double) n_test);
  /* baselines ran (values depend on the simulation; they must be numbers ≤ 1) */
  for (const char *method : { "photometry", "pca_pixels", "pca_spectra" }) {
    const Json &entry = r2["Z"][method];
    ASSERT_EQ (entry.type, Json::OBJECT) << method;
    EXPECT_LE (entry["r2"].number, 1.0) << method;
    EXPECT_GT (entry["r2"].number, -1.0) << method;
  }
  EXPECT_EQ (json["methods"]["pca_pixels"]["raw_dim"].number, 12 * 12 * 3);
  EXPECT_EQ (json["methods"]["pca_spectra"]["raw_dim"].number, 973);
  EXPECT_EQ (json["methods"]["pca_spectra"]["n_components"].number, 32);
  /* supervised: LOGMSTAR exact → 1; Z from the noisy predictions */
  EXPECT_DOUBLE_EQ (r2["LOGMSTAR"]["supervised"]["r2"].number, 1.0);
  {
    std::vector<double> t, p;
    for (gint64 r = 0; r < n; r++)
      if (aclip_split_of_id (c.ids[r]) == ACLIP_SPLIT_TEST) {
        t.push_back (c.z[r]);
        p.push_back (z_pred[r]);
      }
    EXPECT_NEAR (r2["Z"]["supervised"]["r2"].number,
                 aclip_r2_score (t.data (), p.data (), (gint64) t.size (), nullptr), 1e-8);
  }
  EXPECT_EQ (r2["SSFR"]["supervised"].type, Json::NUL);

  /* retrieval against brute force */
  const Json &retrieval = json["retrieval"];
  EXPECT_EQ (retrieval["n"].number, (double) n_test);
  for (gint64 k : { 1, 10, 100 }) {
    std::string key = "recall_at_" + std::to_string (k);
    EXPECT_NEAR (retrieval["image_to_spectrum"][key].number, reference_recall (c, si, ss, dim, k),
                 1e-8)
        << key;
    EXPECT_NEAR (retrieval["spectrum_to_image"][key].number, reference_recall (c, ss, si, dim, k),
                 1e-8)
        << key;
  }
  EXPECT_GT (retrieval["image_to_spectrum"]["recall_at_10"].number, 0.5);
  printf ("measured recall@1/10/100 among %g test galaxies: image→spectrum %.3f %.3f %.3f, "
          "spectrum→image %.3f %.3f %.3f\n",
          retrieval["n"].number, retrieval["image_to_spectrum"]["recall_at_1"].number,
          retrieval["image_to_spectrum"]["recall_at_10"].number,
          retrieval["image_to_spectrum"]["recall_at_100"].number,
          retrieval["spectrum_to_image"]["recall_at_1"].number,
          retrieval["spectrum_to_image"]["recall_at_10"].number,
          retrieval["spectrum_to_image"]["recall_at_100"].number);

  /* the figures: every plot the JSON names exists and is a real picture */
  int n_plots = 0;
  for (const auto &label : r2.object)
    for (const auto &method : label.second.object)
      if (method.second.type == Json::OBJECT && method.second.has ("plot")) {
        std::string path = good_dir + "/" + method.second["plot"].string;
        if (n_plots < 4 || label.first == "Z")
          check_png (path);
        else
          EXPECT_TRUE (g_file_test (path.c_str (), G_FILE_TEST_IS_REGULAR)) << path;
        n_plots++;
      }
  EXPECT_GE (n_plots, 7 * 2);
  EXPECT_TRUE (g_file_test ((good_dir + "/plots/z-image.png").c_str (), G_FILE_TEST_IS_REGULAR));
  gchar *report = nullptr;
  ASSERT_TRUE (g_file_get_contents ((good_dir + "/report.md").c_str (), &report, nullptr, nullptr));
  std::string report_text (report);
  g_free (report);
  EXPECT_NE (report_text.find ("| Redshift (`Z`) |"), std::string::npos);
  EXPECT_NE (report_text.find ("0.79"), std::string::npos); /* the paper's figures */
  EXPECT_NE (report_text.find ("recall@100"), std::string::npos);
  EXPECT_NE (report_text.find ("plots/z-image.png"), std::string::npos);

  /* Pure-noise embeddings: no skill */
  std::string noise_dir = dir.path ("noise-eval");
  status = run_astroclip ({ "eval", "-c", catalogue_path, "-e", noise_path, "-o", noise_dir,
                            "--labels", "Z,LOGMSTAR" },
                          &out, &err);
  ASSERT_EQ (status, 0) << err;
  Json noise = read_json (noise_dir + "/eval.json");
  EXPECT_EQ (noise["labels"].array.size (), 2u);
  for (const char *label : { "Z", "LOGMSTAR" })
    for (const char *method : { "image", "spectrum", "cross_modal" }) {
      double value = noise["r2"][label][method]["r2"].number;
      EXPECT_LT (value, 0.2) << label << " " << method;
      printf ("measured R² from noise embeddings: %s %s %.4f\n", label, method, value);
    }
  EXPECT_EQ (noise["r2"]["Z"]["supervised"].type, Json::NUL);
  EXPECT_TRUE (noise["methods"]["supervised"].has ("skipped"));
}

TEST (EvalCommand, UsageAndInputErrors)
{
  TempDir dir;
  std::string out, err;
  EXPECT_EQ (run_astroclip ({ "eval", "--catalogue", "x.fits" }, &out, &err), 2);
  EXPECT_NE (err.find ("--embeddings"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "eval", "-c", "x.fits", "-e", "y.fits", "-o", dir.path ("o"), "--k",
                              "0" },
                            &out, &err),
             2);

  std::string catalogue_path = dir.path ("sim.fits");
  ASSERT_EQ (run_astroclip ({ "simulate", "--n", "60", "--image-size", "16", "--out",
                              catalogue_path },
                            &out, &err),
             0)
      << err;
  Catalogue c = read_catalogue (catalogue_path);
  std::vector<float> v (c.ids.size () * 4, 1.0f);
  for (size_t i = 0; i < v.size (); i += 5)
    v[i] = 2.0f;
  write_embeddings (dir.path ("e.fits"), c.ids, v, v, 4);
  EXPECT_EQ (run_astroclip ({ "eval", "-c", catalogue_path, "-e", dir.path ("e.fits"), "-o",
                              dir.path ("o"), "--labels", "Z,NOPE" },
                            &out, &err),
             1);
  EXPECT_NE (err.find ("NOPE"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "eval", "-c", catalogue_path, "-e", dir.path ("missing.fits"),
                              "-o", dir.path ("o") },
                            &out, &err),
             1);
  EXPECT_NE (err.find ("missing.fits"), std::string::npos) << err;
  /* a supervised file without any matching galaxy */
  const gint64 other[] = { -5, -6 };
  const double values[] = { 0.1, 0.2 };
  const char *labels[] = { "Z" };
  ErrorHolder error;
  ASSERT_TRUE (aclip_predictions_write (dir.path ("p.fits").c_str (), 2, other, 1, labels,
                                        values, error.out ()));
  EXPECT_EQ (run_astroclip ({ "eval", "-c", catalogue_path, "-e", dir.path ("e.fits"), "-o",
                              dir.path ("o"), "--supervised", dir.path ("p.fits") },
                            &out, &err),
             1);
  EXPECT_NE (err.find ("p.fits"), std::string::npos) << err;
}
