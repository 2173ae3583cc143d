/* bench-search — exact top-k search over N random L2-normalised embeddings (bench-search.sh).
 *
 * Writes the embeddings and the queries once to raw float32 files that bench_faiss.py reads,
 * so FAISS searches the very same values; measures, in one run, this machine's memory
 * bandwidth (a streaming read of 1 GB on the pool's threads), OpenBLAS's sgemm rate, and our
 * search: milliseconds per single query (median over --queries queries) and per batch
 * (median of --repeats batches). Prints JSON lines; writes our neighbours' rows to
 * DATA.ours-single.i64 and DATA.ours-batch.i64 for the comparison with FAISS.
 */
#include "aclip-embeddings.h"
#include "aclip-parallel.h"
#include "aclip-rng.h"
#include "aclip-search.h"

#include <cblas.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define HAVE_AVX2_SUM 1
#define HAVE_BF16_PEAK 1
#endif

static gint64 n_rows = 1000000;
static int dim = ACLIP_EMBEDDING_DIM_DEFAULT;
static int n_single = 50;
static int batch = 100;
static int repeats = 5;
static int k = 12;
static int n_threads = 2;
static gint64 seed = 1;
static gint64 click_rows = 100000;
static char *data_prefix = NULL;
static char *kernel_names = NULL;

static GOptionEntry entries[] = {
  { "n", 'n', 0, G_OPTION_ARG_INT64, &n_rows, "Rows in the store (1000000)", "N" },
  { "dim", 'd', 0, G_OPTION_ARG_INT, &dim, "Embedding dimension (128)", "D" },
  { "queries", 'q', 0, G_OPTION_ARG_INT, &n_single, "Single queries timed (50)", "Q" },
  { "batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Queries per batch (100)", "B" },
  { "repeats", 'r', 0, G_OPTION_ARG_INT, &repeats, "Batches timed (5)", "R" },
  { "k", 'k', 0, G_OPTION_ARG_INT, &k, "Neighbours per query (12)", "K" },
  { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads (2)", "T" },
  { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed (1)", "S" },
  { "click-rows", 0, 0, G_OPTION_ARG_INT64, &click_rows,
    "Rows of the viewer-sized store timed too (100000; 0: none)", "N" },
  { "data", 0, 0, G_OPTION_ARG_FILENAME, &data_prefix,
    "Prefix of the data files (default /tmp/bench-search-N-D-SEED)", "PREFIX" },
  { "kernels", 0, 0, G_OPTION_ARG_STRING, &kernel_names,
    "Comma-separated kernels to time besides auto (portable, avx2, avx512-bf16, sgemm)",
    "LIST" },
  { NULL },
};

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *values, int n)
{
  qsort (values, n, sizeof *values, compare_doubles);
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* A JSON number with 3 decimals, or null for NAN (JSON has no NaN). */
static const char *
json_number (double value, char *text, gsize size)
{
  if (isnan (value))
    g_strlcpy (text, "null", size);
  else
    g_snprintf (text, size, "%.3f", value);
  return text;
}

/* Data ----------------------------------------------------------------------------------- */

/* values [n, dim]: Gaussian rows, normalised in double; stream 0 for the store, 1 queries. */
static void
random_rows (float *values, gint64 n, guint64 stream)
{
  for (gint64 row = 0; row < n; row++) {
    AclipRng rng;
    aclip_rng_init (&rng, (guint64) seed, (guint64) row, stream);
    float *x = values + row * dim;
    aclip_rng_fill_normal (&rng, dim, x);
    double sum = 0.0;
    for (int i = 0; i < dim; i++)
      sum += (double) x[i] * x[i];
    double scale = 1.0 / sqrt (sum);
    for (int i = 0; i < dim; i++)
      x[i] = (float) (x[i] * scale);
  }
}

/* Reads path into values [count] when it exists with that size; otherwise makes the values
 * and writes them (through a temporary file, so a reader never sees half a file). */
static gboolean
load_or_make (const char *path, float *values, gint64 n, guint64 stream)
{
  gsize bytes = (gsize) n * dim * sizeof (float);
  FILE *file = fopen (path, "rb");
  if (file) {
    gboolean complete = fread (values, 1, bytes, file) == bytes && fgetc (file) == EOF;
    fclose (file);
    if (complete)
      return TRUE;
  }
  random_rows (values, n, stream);
  g_autofree char *temporary = g_strdup_printf ("%s.tmp", path);
  file = fopen (temporary, "wb");
  if (!file || fwrite (values, 1, bytes, file) != bytes || fclose (file) != 0) {
    fprintf (stderr, "bench-search: cannot write %s: %s\n", temporary, g_strerror (errno));
    return FALSE;
  }
  if (g_rename (temporary, path) != 0) {
    fprintf (stderr, "bench-search: cannot rename %s: %s\n", temporary, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

static gboolean
write_rows (const char *path, const AclipNeighbour *neighbours, gint64 count)
{
  g_autofree gint64 *rows = g_new (gint64, MAX (count, 1));
  for (gint64 i = 0; i < count; i++)
    rows[i] = neighbours[i].row;
  return g_file_set_contents (path, (const char *) rows, count * (gssize) sizeof (gint64), NULL);
}

/* Memory bandwidth ---------------------------------------------------------------------------- */

typedef struct
{
  const float *values;
  double *sums; /* [n_threads], so the reads are not optimised away */
} SumJob;

#ifdef HAVE_AVX2_SUM
__attribute__ ((target ("avx2"))) static double
sum_block (const float *values, gint64 begin, gint64 end)
{
  __m256 a = _mm256_setzero_ps (), b = a, c = a, d = a;
  gint64 i = begin;
  for (; i + 32 <= end; i += 32) {
    a = _mm256_add_ps (a, _mm256_load_ps (values + i));
    b = _mm256_add_ps (b, _mm256_load_ps (values + i + 8));
    c = _mm256_add_ps (c, _mm256_load_ps (values + i + 16));
    d = _mm256_add_ps (d, _mm256_load_ps (values + i + 24));
  }
  float lanes[8];
  _mm256_storeu_ps (lanes, _mm256_add_ps (_mm256_add_ps (a, b), _mm256_add_ps (c, d)));
  double sum = 0.0;
  for (int l = 0; l < 8; l++)
    sum += lanes[l];
  for (; i < end; i++)
    sum += values[i];
  return sum;
}
#else
static double
sum_block (const float *values, gint64 begin, gint64 end)
{
  double sum = 0.0;
  for (gint64 i = begin; i < end; i++)
    sum += values[i];
  return sum;
}
#endif

static void
sum_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  SumJob *job = data;
  /* items are 64-float blocks, so every chunk starts aligned */
  job->sums[worker] += sum_block (job->values, begin * 64, end * 64);
}

/* GB/s of a streaming read of 1 GB over the pool, best of 5. */
static double
measure_bandwidth (AclipThreadPool *pool)
{
  gint64 n = (gint64) 1 << 28; /* 2^28 floats = 1 GiB */
  void *memory = NULL;
  if (posix_memalign (&memory, 64, n * sizeof (float)) != 0)
    return NAN;
  float *values = memory;
  for (gint64 i = 0; i < n; i++)
    values[i] = 1.0f;
  g_autofree double *sums = g_new0 (double, aclip_thread_pool_n_threads (pool));
  SumJob job = { values, sums };
  double best = INFINITY;
  for (int r = 0; r < 5; r++) {
    double start = now_ms ();
    aclip_parallel_for (pool, n / 64, 1024, sum_range, &job);
    best = MIN (best, now_ms () - start);
  }
  free (memory);
  return n * sizeof (float) / (best * 1e6);
}

/* GFLOP/s of a 2048³ sgemm on OpenBLAS's threads, best of 3. */
static double
measure_sgemm (void)
{
  int n = 2048;
  g_autofree float *a = g_new (float, (gsize) n * n);
  g_autofree float *b = g_new (float, (gsize) n * n);
  g_autofree float *c = g_new (float, (gsize) n * n);
  for (gsize i = 0; i < (gsize) n * n; i++) {
    a[i] = (float) (i % 7) * 0.1f;
    b[i] = (float) (i % 5) * 0.1f;
  }
  double best = INFINITY;
  for (int r = 0; r < 3; r++) {
    double start = now_ms ();
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                 n);
    best = MIN (best, now_ms () - start);
  }
  return 2.0 * n * n * (double) n / (best * 1e6);
}

/* Arithmetic peak of the bfloat16 kernel ------------------------------------------------- */

/* A batch of 100 queries is compute-bound: 100 × N × D multiply-adds against N × D × 4 bytes
 * read once. Its floor is then the rate of the instruction the avx512-bf16 kernel is made of,
 * vdpbf16ps (32 multiply-adds per 512-bit instruction), measured here on registers alone. */
#define PEAK_CHAINS     16     /* independent accumulators: more than latency × ports */
#define PEAK_ITERATIONS 200000 /* per item */

typedef struct
{
  double *sums; /* [n_threads], so the work is not optimised away */
} PeakJob;

#ifdef HAVE_BF16_PEAK
__attribute__ ((target ("avx512f,avx512bf16"))) static double
dot_bf16_block (void)
{
  __m512 acc[PEAK_CHAINS];
  for (int c = 0; c < PEAK_CHAINS; c++)
    acc[c] = _mm512_setzero_ps ();
  /* bfloat16 pairs of 1.0 and of 2^-20: sums stay exact and finite */
  __m512bh one = (__m512bh) _mm512_set1_epi32 (0x3f803f80);
  __m512bh tiny = (__m512bh) _mm512_set1_epi32 (0x35803580);
  for (int i = 0; i < PEAK_ITERATIONS; i++) {
#pragma GCC unroll 16
    for (int c = 0; c < PEAK_CHAINS; c++)
      acc[c] = _mm512_dpbf16_ps (acc[c], one, tiny);
    /* the compiler may not merge or hoist the chains: each value must exist every iteration */
#pragma GCC unroll 16
    for (int c = 0; c < PEAK_CHAINS; c++)
      __asm__ volatile ("" : "+v"(acc[c]));
  }
  __m512 total = acc[0];
  for (int c = 1; c < PEAK_CHAINS; c++)
    total = _mm512_add_ps (total, acc[c]);
  return _mm512_reduce_add_ps (total);
}

static void
peak_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  PeakJob *job = data;
  for (gint64 item = begin; item < end; item++)
    job->sums[worker] += dot_bf16_block ();
}
#endif

/* Giga multiply-adds per second of vdpbf16ps over the pool, best of 5; NAN without it. */
static double
measure_bf16_peak (AclipThreadPool *pool)
{
#ifdef HAVE_BF16_PEAK
  if (!aclip_search_kernel_supported (ACLIP_SEARCH_KERNEL_AVX512_BF16))
    return NAN;
  int workers = aclip_thread_pool_n_threads (pool);
  g_autofree double *sums = g_new0 (double, workers);
  PeakJob job = { sums };
  gint64 items = 8 * (gint64) workers;
  double best = INFINITY;
  for (int r = 0; r < 5; r++) {
    double start = now_ms ();
    aclip_parallel_for (pool, items, 1, peak_range, &job);
    best = MIN (best, now_ms () - start);
  }
  double multiply_adds = (double) items * PEAK_ITERATIONS * PEAK_CHAINS * 32;
  return multiply_adds / (best * 1e6);
#else
  (void) pool;
  return NAN;
#endif
}

/* Search timings ------------------------------------------------------------------------------ */

typedef struct
{
  double single_ms;
  double batch_ms;
} Timing;

static gboolean
time_search (const AclipSearchIndex *index, AclipThreadPool *pool, AclipSearchKernel kernel,
             const float *queries, int n_queries_single, AclipNeighbour *single_out,
             AclipNeighbour *batch_out, Timing *timing)
{
  g_autoptr (GError) error = NULL;
  int n_query_rows = MAX (n_queries_single, batch);
  g_autofree AclipSearchQuery *query = g_new0 (AclipSearchQuery, n_query_rows);
  for (int q = 0; q < n_query_rows; q++)
    query[q].image = queries + (gsize) q * dim;
  g_autofree double *times = g_new (double, MAX (n_queries_single, repeats));

  /* a warm-up query: page faults and thread start-up are not search time */
  if (!aclip_search (index, pool, kernel, ACLIP_SEARCH_IMAGE_IMAGE, 1, query, k, single_out,
                     NULL, &error))
    goto failed;
  for (int q = 0; q < n_queries_single; q++) {
    double start = now_ms ();
    if (!aclip_search (index, pool, kernel, ACLIP_SEARCH_IMAGE_IMAGE, 1, query + q, k,
                       single_out + (gsize) q * k, NULL, &error))
      goto failed;
    times[q] = now_ms () - start;
  }
  timing->single_ms = n_queries_single > 0 ? median (times, n_queries_single) : NAN;
  for (int r = 0; r < repeats; r++) {
    double start = now_ms ();
    if (!aclip_search (index, pool, kernel, ACLIP_SEARCH_IMAGE_IMAGE, batch, query, k, batch_out,
                       NULL, &error))
      goto failed;
    times[r] = now_ms () - start;
  }
  timing->batch_ms = repeats > 0 ? median (times, repeats) : NAN;
  return TRUE;

failed:
  fprintf (stderr, "bench-search: %s\n", error->message);
  return FALSE;
}

static AclipEmbeddings *
make_store (const float *values, gint64 n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AclipEmbeddings) store = aclip_embeddings_new (n, dim, TRUE, FALSE, &error);
  if (store == NULL) {
    fprintf (stderr, "bench-search: %s\n", error->message);
    return NULL;
  }
  for (gint64 row = 0; row < n; row++)
    if (!aclip_embeddings_set_row (store, row, row, values + row * dim, NULL, &error)) {
      fprintf (stderr, "bench-search: %s\n", error->message);
      return NULL;
    }
  return g_steal_pointer (&store);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_option_context_add_main_entries (context, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    fprintf (stderr, "bench-search: %s\n", error->message);
    return 2;
  }
  if (n_rows < 1 || dim < 1 || k < 1 || batch < 1 || n_single < 0 || n_threads < 1) {
    fprintf (stderr, "bench-search: bad sizes\n");
    return 2;
  }
  g_autofree char *prefix =
      data_prefix ? g_strdup (data_prefix)
                  : g_strdup_printf ("/tmp/bench-search-%" PRId64 "-%d-%" PRId64, n_rows, dim,
                                     seed);
  g_autofree char *base_path = g_strconcat (prefix, ".base.f32", NULL);
  g_autofree char *query_path = g_strconcat (prefix, ".queries.f32", NULL);
  int n_queries = MAX (n_single, batch);

  aclip_set_blas_threads (n_threads);
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (n_threads);

  double start = now_ms ();
  g_autofree float *base = g_new (float, (gsize) n_rows * dim);
  g_autofree float *queries = g_new (float, (gsize) n_queries * dim);
  if (!load_or_make (base_path, base, n_rows, 0) ||
      !load_or_make (query_path, queries, n_queries, 1))
    return 1;
  double data_ms = now_ms () - start;

  g_autoptr (AclipEmbeddings) store = make_store (base, n_rows);
  if (store == NULL)
    return 1;
  g_clear_pointer (&base, g_free); /* the store holds its own copy */
  start = now_ms ();
  g_autoptr (AclipSearchIndex) index = aclip_search_index_new (store, pool, &error);
  if (index == NULL) {
    fprintf (stderr, "bench-search: %s\n", error->message);
    return 1;
  }
  double index_ms = now_ms () - start;

  double bandwidth = measure_bandwidth (pool);
  double sgemm_gflops = measure_sgemm ();
  double bytes = (double) n_rows * dim * sizeof (float);
  double bound_ms = bytes / (bandwidth * 1e6);
  double flops_batch = 2.0 * batch * (double) n_rows * dim;
  double sgemm_bound_ms = flops_batch / (sgemm_gflops * 1e6);
  double bf16_gmac_s = measure_bf16_peak (pool);
  double bf16_bound_ms = 0.5 * flops_batch / (bf16_gmac_s * 1e6); /* NAN without bf16 */

  char bf16_text[32];
  printf ("{\"bench\": \"search\", \"what\": \"setup\", \"n\": %" PRId64
          ", \"dim\": %d, \"k\": %d, \"queries\": %d, \"batch\": %d, \"repeats\": %d, "
          "\"threads\": %d, \"bandwidth_gb_s\": %.2f, "
          "\"sgemm_gflop_s\": %.1f, \"bf16_dot_gmac_s\": %s, \"store_mb\": %.1f, "
          "\"index_mb\": %.1f, \"index_build_ms\": %.1f, \"data_ms\": %.0f, "
          "\"auto_kernel_single\": \"%s\", \"data\": \"%s\"}\n",
          n_rows, dim, k, n_single, batch, repeats, n_threads, bandwidth, sgemm_gflops,
          json_number (bf16_gmac_s, bf16_text, sizeof bf16_text), bytes / 1e6,
          aclip_search_index_size (index) / 1e6, index_ms, data_ms,
          aclip_search_kernel_supported (ACLIP_SEARCH_KERNEL_AVX512_BF16) ? "avx512-bf16"
          : aclip_search_kernel_supported (ACLIP_SEARCH_KERNEL_AVX2)      ? "avx2"
                                                                          : "portable",
          prefix);

  /* "auto" always runs first: its neighbours are the ones compared with FAISS. */
  g_autofree char *kernel_list = g_strconcat ("auto,", kernel_names ? kernel_names : "", NULL);
  g_auto (GStrv) kernels = g_strsplit (kernel_list, ",", -1);
  g_autofree AclipNeighbour *single_out = g_new (AclipNeighbour, (gsize) n_single * k + k);
  g_autofree AclipNeighbour *batch_out = g_new (AclipNeighbour, (gsize) batch * k);
  for (char **name = kernels; *name; name++) {
    if (**name == '\0' || (name != kernels && strcmp (*name, "auto") == 0))
      continue;
    AclipSearchKernel kernel = ACLIP_N_SEARCH_KERNELS;
    for (int c = 0; c < ACLIP_N_SEARCH_KERNELS; c++)
      if (g_strcmp0 (*name, aclip_search_kernel_name (c)) == 0)
        kernel = c;
    if (kernel == ACLIP_N_SEARCH_KERNELS || !aclip_search_kernel_supported (kernel)) {
      fprintf (stderr, "bench-search: kernel %s unknown or not supported here\n", *name);
      continue;
    }
    Timing timing;
    if (!time_search (index, pool, kernel, queries, n_single, single_out, batch_out, &timing))
      return 1;
    if (kernel == ACLIP_SEARCH_KERNEL_AUTO) {
      g_autofree char *single_rows = g_strconcat (prefix, ".ours-single.i64", NULL);
      g_autofree char *batch_rows = g_strconcat (prefix, ".ours-batch.i64", NULL);
      if (!write_rows (single_rows, single_out, (gint64) n_single * k) ||
          !write_rows (batch_rows, batch_out, (gint64) batch * k)) {
        fprintf (stderr, "bench-search: cannot write the neighbours\n");
        return 1;
      }
    }
    /* What the kernel itself streams: the bfloat16 copy, or the float32 store for sgemm. */
    double scanned = kernel == ACLIP_SEARCH_KERNEL_SGEMM ? bytes
                                                         : (double) aclip_search_index_size (index);
    double scan_bound_ms = scanned / (bandwidth * 1e6);
    printf ("{\"bench\": \"search\", \"what\": \"single\", \"kernel\": \"%s\", \"n\": %" PRId64
            ", \"ours_ms\": %.3f, \"bound_ms\": %.3f, \"ours_over_bound\": %.3f, "
            "\"scanned_mb\": %.1f, \"scan_bound_ms\": %.3f, \"ours_over_scan_bound\": %.3f}\n",
            *name, n_rows, timing.single_ms, bound_ms, timing.single_ms / bound_ms, scanned / 1e6,
            scan_bound_ms, timing.single_ms / scan_bound_ms);
    /* The compute floor of the kernel that ran, when it is the bfloat16 one. */
    gboolean runs_bf16 = kernel == ACLIP_SEARCH_KERNEL_AVX512_BF16 ||
                         (kernel == ACLIP_SEARCH_KERNEL_AUTO &&
                          aclip_search_kernel_supported (ACLIP_SEARCH_KERNEL_AVX512_BF16));
    double compute_bound_ms = runs_bf16 ? bf16_bound_ms : NAN;
    char compute_text[32], compute_ratio_text[32];
    printf ("{\"bench\": \"search\", \"what\": \"batch\", \"kernel\": \"%s\", \"n\": %" PRId64
            ", \"queries\": %d, \"ours_ms\": %.3f, \"bound_ms\": %.3f, \"ours_over_bound\": "
            "%.3f, \"sgemm_bound_ms\": %.3f, \"ours_over_sgemm_bound\": %.3f, "
            "\"bf16_compute_bound_ms\": %s, \"ours_over_bf16_compute_bound\": %s}\n",
            *name, n_rows, batch, timing.batch_ms, bound_ms, timing.batch_ms / bound_ms,
            sgemm_bound_ms, timing.batch_ms / sgemm_bound_ms,
            json_number (compute_bound_ms, compute_text, sizeof compute_text),
            json_number (timing.batch_ms / compute_bound_ms, compute_ratio_text,
                         sizeof compute_ratio_text));
    fflush (stdout);
  }

  if (click_rows > 0 && click_rows < n_rows) {
    /* The viewer's case: one click, a catalogue of click_rows galaxies. */
    const float *all = aclip_embeddings_vectors (store, ACLIP_MODALITY_IMAGE);
    g_autoptr (AclipEmbeddings) small = make_store (all, click_rows);
    if (small == NULL)
      return 1;
    g_autoptr (AclipSearchIndex) small_index = aclip_search_index_new (small, pool, &error);
    if (small_index == NULL) {
      fprintf (stderr, "bench-search: %s\n", error->message);
      return 1;
    }
    Timing timing;
    int saved_repeats = repeats;
    repeats = 1;
    if (!time_search (small_index, pool, ACLIP_SEARCH_KERNEL_AUTO, queries, n_single,
                      single_out, batch_out, &timing))
      return 1;
    repeats = saved_repeats;
    printf ("{\"bench\": \"search\", \"what\": \"click\", \"n\": %" PRId64
            ", \"ours_ms\": %.3f, \"goal_ms\": 50}\n",
            click_rows, timing.single_ms);
  }
  return 0;
}
