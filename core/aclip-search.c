/* aclip-search.c — exact top-k search by cosine similarity (aclip-search.h, docs/embeddings.md).
 *
 * Three stages per block of queries:
 *   1. screening scan: every row's screening score s̃ against every query, from the bfloat16
 *      panels (or float32 sgemm); each worker keeps per query a min-heap of its k best s̃ and
 *      the candidates with s̃ ≥ (its k-th best so far) − 2ε;
 *   2. merge: the k-th best s̃ over all workers, θ; candidates with s̃ ≥ θ − 2ε survive;
 *   3. re-rank: the survivors' canonical scores (double accumulation), sorted, first k kept.
 * Why this is exact: the k rows with s̃ ≥ θ have canonical scores ≥ θ − ε, so the k-th best
 * canonical score is ≥ θ − ε, and any row that belongs in the top k has s ≥ θ − ε, hence
 * s̃ ≥ θ − 2ε. A worker's running threshold never exceeds the final θ, so nothing it dropped
 * could belong.
 *
 * Panels: a modality's embeddings as bfloat16 pairs, 16 rows at a time:
 *   panels [n_panels, n_pairs, 16] guint32, element (p, j, l) = bf16 (x[2j]) | bf16 (x[2j+1]) << 16
 *   for row 16·p + l; n_pairs = ⌈dim/2⌉ (an odd dim is padded with a zero); rows that are
 *   missing or past the end are NaN, which no comparison selects.
 * One AVX-512 vdpbf16ps multiplies 16 rows' pairs by one query pair and accumulates in float32.
 */
#include "aclip-search.h"

#include "aclip-error.h"

#include <cblas.h>
#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_X86_KERNELS 1
#include <immintrin.h>
#endif

#define PANEL_ROWS   16
#define MAX_PARTS    2
#define QUERY_BLOCK  256  /* queries per pass over the rows (bounds the per-query state) */
#define SGEMM_ROWS   1024 /* rows per sgemm block: the score block [QUERY_BLOCK, 1024] is 1 MB */
#define PANEL_GRAIN  64   /* panels per parallel chunk at least (1024 rows) */
#define BF16_NAN     0x7fc0u

/* Modes ---------------------------------------------------------------------------------- */

static const char *const mode_names[ACLIP_N_SEARCH_MODES] = {
  "image-image", "spectrum-spectrum", "image-spectrum", "spectrum-image", "both",
};

const char *
aclip_search_mode_name (AclipSearchMode mode)
{
  g_return_val_if_fail (mode < ACLIP_N_SEARCH_MODES, NULL);
  return mode_names[mode];
}

gboolean
aclip_search_mode_from_name (const char *name, AclipSearchMode *mode)
{
  g_return_val_if_fail (name != NULL && mode != NULL, FALSE);
  for (int m = 0; m < ACLIP_N_SEARCH_MODES; m++)
    if (g_ascii_strcasecmp (name, mode_names[m]) == 0) {
      *mode = m;
      return TRUE;
    }
  return FALSE;
}

typedef struct
{
  int n_parts;
  AclipModality query[MAX_PARTS];   /* which query embedding */
  AclipModality scanned[MAX_PARTS]; /* which stored embeddings */
  float weight[MAX_PARTS];
} ModeParts;

static ModeParts
mode_parts (AclipSearchMode mode)
{
  const AclipModality IMG = ACLIP_MODALITY_IMAGE, SPEC = ACLIP_MODALITY_SPECTRUM;
  switch (mode) {
    case ACLIP_SEARCH_IMAGE_IMAGE:
      return (ModeParts) { 1, { IMG }, { IMG }, { 1.0f } };
    case ACLIP_SEARCH_SPECTRUM_SPECTRUM:
      return (ModeParts) { 1, { SPEC }, { SPEC }, { 1.0f } };
    case ACLIP_SEARCH_IMAGE_SPECTRUM:
      return (ModeParts) { 1, { IMG }, { SPEC }, { 1.0f } };
    case ACLIP_SEARCH_SPECTRUM_IMAGE:
      return (ModeParts) { 1, { SPEC }, { IMG }, { 1.0f } };
    default:
      return (ModeParts) { 2, { IMG, SPEC }, { IMG, SPEC }, { 0.5f, 0.5f } };
  }
}

gboolean
aclip_search_mode_uses_query (AclipSearchMode mode, AclipModality modality)
{
  ModeParts parts = mode_parts (mode);
  for (int p = 0; p < parts.n_parts; p++)
    if (parts.query[p] == modality)
      return TRUE;
  return FALSE;
}

gboolean
aclip_search_mode_scans (AclipSearchMode mode, AclipModality modality)
{
  ModeParts parts = mode_parts (mode);
  for (int p = 0; p < parts.n_parts; p++)
    if (parts.scanned[p] == modality)
      return TRUE;
  return FALSE;
}

void
aclip_search_query_for_row (AclipSearchQuery *query, const AclipEmbeddings *embeddings,
                            gint64 row, gboolean exclude_self)
{
  g_return_if_fail (query != NULL && embeddings != NULL);
  g_return_if_fail (row >= 0 && row < aclip_embeddings_n_rows (embeddings));
  query->image = aclip_embeddings_row (embeddings, ACLIP_MODALITY_IMAGE, row);
  query->spectrum = aclip_embeddings_row (embeddings, ACLIP_MODALITY_SPECTRUM, row);
  query->exclude_ids = exclude_self ? aclip_embeddings_ids (embeddings) + row : NULL;
  query->n_exclude = exclude_self ? 1 : 0;
}

/* Kernels -------------------------------------------------------------------------------- */

static const char *const kernel_names[ACLIP_N_SEARCH_KERNELS] = {
  "auto", "portable", "avx2", "avx512-bf16", "sgemm",
};

const char *
aclip_search_kernel_name (AclipSearchKernel kernel)
{
  g_return_val_if_fail (kernel < ACLIP_N_SEARCH_KERNELS, NULL);
  return kernel_names[kernel];
}

gboolean
aclip_search_kernel_supported (AclipSearchKernel kernel)
{
  switch (kernel) {
    case ACLIP_SEARCH_KERNEL_AUTO:
    case ACLIP_SEARCH_KERNEL_PORTABLE:
    case ACLIP_SEARCH_KERNEL_SGEMM:
      return TRUE;
#ifdef HAVE_X86_KERNELS
    case ACLIP_SEARCH_KERNEL_AVX2:
      __builtin_cpu_init ();
      return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
    case ACLIP_SEARCH_KERNEL_AVX512_BF16:
      __builtin_cpu_init ();
      return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bf16");
#endif
    default:
      return FALSE;
  }
}

/* The kernel AUTO runs for a block of n_queries queries. */
static AclipSearchKernel
choose_kernel (int n_queries)
{
  if (aclip_search_kernel_supported (ACLIP_SEARCH_KERNEL_AVX512_BF16))
    return ACLIP_SEARCH_KERNEL_AVX512_BF16;
  /* The AVX2 kernel does as many FMAs per product as float32 sgemm, keeps the selection in
   * registers and reads half the bytes. On the (loaded) 2-core machine, 1M rows: single query
   * 15 ms against sgemm's 61, batch of 100 0.80 s against 1.09 s. */
  if (aclip_search_kernel_supported (ACLIP_SEARCH_KERNEL_AVX2))
    return ACLIP_SEARCH_KERNEL_AVX2;
  /* Elsewhere the plain C kernel serves a few queries (bound by memory); sgemm larger batches. */
  return n_queries >= 16 ? ACLIP_SEARCH_KERNEL_SGEMM : ACLIP_SEARCH_KERNEL_PORTABLE;
}

/* bfloat16 ------------------------------------------------------------------------------- */

/* Round to nearest even; NaN stays NaN. */
static inline guint32
to_bf16 (float value)
{
  guint32 bits;
  memcpy (&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return BF16_NAN;
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return bits >> 16;
}

static inline float
from_bf16 (guint32 half)
{
  guint32 bits = half << 16;
  float value;
  memcpy (&value, &bits, sizeof value);
  return value;
}

/* The index ------------------------------------------------------------------------------ */

struct _AclipSearchIndex
{
  const AclipEmbeddings *embeddings;
  gint64 n_rows;
  gint64 n_panels;
  int dim;
  int n_pairs;
  guint32 *panels[ACLIP_N_MODALITIES]; /* [n_panels, n_pairs, 16]; NULL when absent */
  double max_norm[ACLIP_N_MODALITIES]; /* largest ‖row‖ stored (0 when none) */
};

typedef struct
{
  AclipSearchIndex *index;
  AclipModality modality;
  double *max_norm; /* [n_workers] */
} BuildJob;

static void
build_panels (gint64 begin, gint64 end, int worker, gpointer data)
{
  BuildJob *job = data;
  AclipSearchIndex *index = job->index;
  const float *vectors = aclip_embeddings_vectors (index->embeddings, job->modality);
  int dim = index->dim, n_pairs = index->n_pairs;
  double max_norm = 0.0;
  for (gint64 p = begin; p < end; p++) {
    guint32 *panel = index->panels[job->modality] + p * n_pairs * PANEL_ROWS;
    for (int l = 0; l < PANEL_ROWS; l++) {
      gint64 row = p * PANEL_ROWS + l;
      const float *x = row < index->n_rows ? vectors + row * dim : NULL;
      if (x == NULL || isnan (x[0])) {
        for (int j = 0; j < n_pairs; j++)
          panel[j * PANEL_ROWS + l] = BF16_NAN | (BF16_NAN << 16);
        continue;
      }
      double sum = 0.0;
      for (int i = 0; i < dim; i++)
        sum += (double) x[i] * (double) x[i];
      max_norm = MAX (max_norm, sqrt (sum));
      for (int j = 0; j < n_pairs; j++) {
        guint32 low = to_bf16 (x[2 * j]);
        guint32 high = 2 * j + 1 < dim ? to_bf16 (x[2 * j + 1]) : 0u;
        panel[j * PANEL_ROWS + l] = low | (high << 16);
      }
    }
  }
  job->max_norm[worker] = MAX (job->max_norm[worker], max_norm);
}

void
aclip_search_index_free (AclipSearchIndex *index)
{
  if (index == NULL)
    return;
  for (int m = 0; m < ACLIP_N_MODALITIES; m++)
    free (index->panels[m]);
  g_free (index);
}

AclipSearchIndex *
aclip_search_index_new (const AclipEmbeddings *embeddings, AclipThreadPool *pool,
                        GError **error)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  g_autoptr (AclipSearchIndex) index = g_new0 (AclipSearchIndex, 1);
  index->embeddings = embeddings;
  index->n_rows = aclip_embeddings_n_rows (embeddings);
  index->dim = aclip_embeddings_dim (embeddings);
  index->n_pairs = (index->dim + 1) / 2;
  index->n_panels = (index->n_rows + PANEL_ROWS - 1) / PANEL_ROWS;
  gsize bytes = (gsize) MAX (index->n_panels, 1) * (gsize) index->n_pairs * PANEL_ROWS *
                sizeof (guint32);
  int n_workers = aclip_thread_pool_n_threads (pool);
  g_autofree double *max_norm = g_new0 (double, n_workers);
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    if (!aclip_embeddings_has_modality (embeddings, m))
      continue;
    void *memory = NULL;
    if (posix_memalign (&memory, 64, bytes) != 0) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                   _("cannot allocate %.1f MB for the search index"), bytes / 1e6);
      return NULL;
    }
    index->panels[m] = memory;
    memset (max_norm, 0, sizeof (double) * n_workers);
    BuildJob job = { index, m, max_norm };
    aclip_parallel_for (pool, index->n_panels, PANEL_GRAIN, build_panels, &job);
    for (int w = 0; w < n_workers; w++)
      index->max_norm[m] = MAX (index->max_norm[m], max_norm[w]);
  }
  return g_steal_pointer (&index);
}

const AclipEmbeddings *
aclip_search_index_embeddings (const AclipSearchIndex *index)
{
  g_return_val_if_fail (index != NULL, NULL);
  return index->embeddings;
}

gsize
aclip_search_index_size (const AclipSearchIndex *index)
{
  g_return_val_if_fail (index != NULL, 0);
  gsize per_modality = (gsize) index->n_panels * index->n_pairs * PANEL_ROWS * sizeof (guint32);
  gsize total = 0;
  for (int m = 0; m < ACLIP_N_MODALITIES; m++)
    if (index->panels[m])
      total += per_modality;
  return total;
}

/* Selection -------------------------------------------------------------------------------- */

typedef struct
{
  gint64 row;
  float score; /* screening score; canonical after the re-rank */
} Candidate;

/* One worker's view of one query. */
typedef struct
{
  float cut;    /* rows need s̃ ≥ cut: −∞ until the heap is full, then heap[0] − margin */
  float margin; /* 2ε */
  int k;        /* heap capacity */
  int heap_size;
  float *heap; /* [k] min-heap of the best screening scores of eligible rows */
  Candidate *candidates;
  gint64 n_candidates, capacity;
  const gint64 *excluded; /* [n_excluded] rows never offered */
  int n_excluded;
  gint64 n_rows; /* rows past this are padding */
} Selection;

static void
heap_sift_down (float *heap, int size)
{
  int i = 0;
  float value = heap[0];
  for (;;) {
    int child = 2 * i + 1;
    if (child >= size)
      break;
    if (child + 1 < size && heap[child + 1] < heap[child])
      child++;
    if (!(heap[child] < value))
      break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = value;
}

static void
heap_push (float *heap, int *size, float value)
{
  int i = (*size)++;
  while (i > 0 && heap[(i - 1) / 2] > value) {
    heap[i] = heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  heap[i] = value;
}

static void
make_room (Selection *selection)
{
  /* Drop what the threshold has passed by; grow when that frees too little. */
  gint64 kept = 0;
  for (gint64 i = 0; i < selection->n_candidates; i++)
    if (selection->candidates[i].score >= selection->cut)
      selection->candidates[kept++] = selection->candidates[i];
  selection->n_candidates = kept;
  if (kept * 2 > selection->capacity || selection->capacity == 0) {
    selection->capacity = MAX (2 * selection->capacity, 2 * (gint64) selection->k + 64);
    selection->candidates =
        g_renew (Candidate, selection->candidates, (gsize) selection->capacity);
  }
}

/* A row whose screening score passed `cut`. */
__attribute__ ((noinline)) static void
offer (Selection *selection, gint64 row, float score)
{
  if (!(score >= selection->cut) || row >= selection->n_rows)
    return;
  for (int i = 0; i < selection->n_excluded; i++)
    if (selection->excluded[i] == row)
      return;
  if (selection->n_candidates == selection->capacity)
    make_room (selection);
  selection->candidates[selection->n_candidates++] = (Candidate) { row, score };
  if (selection->heap_size < selection->k) {
    heap_push (selection->heap, &selection->heap_size, score);
    if (selection->heap_size == selection->k)
      selection->cut = selection->heap[0] - selection->margin;
  } else if (score > selection->heap[0]) {
    selection->heap[0] = score;
    heap_sift_down (selection->heap, selection->heap_size);
    selection->cut = selection->heap[0] - selection->margin;
  }
}

/* scores [n] of rows first_row …; the common case (nothing passes) stays branch-light. */
static void
offer_scores (Selection *selection, gint64 first_row, const float *scores, gint64 n)
{
  gint64 i = 0;
  for (; i + 8 <= n; i += 8) {
    float cut = selection->cut;
    int any = 0;
    for (int l = 0; l < 8; l++)
      any |= scores[i + l] >= cut;
    if (any)
      for (int l = 0; l < 8; l++)
        offer (selection, first_row + i + l, scores[i + l]);
  }
  for (; i < n; i++)
    offer (selection, first_row + i, scores[i]);
}

/* The scan ------------------------------------------------------------------------------- */

typedef struct
{
  const AclipSearchIndex *index;
  AclipSearchKernel kernel;
  ModeParts parts;
  int n_queries; /* in this block */
  int n_workers;
  const guint32 *query_bf16; /* [n_queries, n_parts, n_pairs] bf16(w·q) pairs */
  const float *query_pairs;  /* [n_queries, n_parts, n_pairs, 2] the same, as floats */
  const float *query_f32;    /* [n_parts, n_queries, dim] normalised queries (canonical) */
  Selection *selections;     /* [n_workers, n_queries] */
} Scan;

static inline const guint32 *
scan_panel (const Scan *scan, int part, gint64 panel)
{
  const AclipSearchIndex *index = scan->index;
  return index->panels[scan->parts.scanned[part]] + panel * index->n_pairs * PANEL_ROWS;
}

static void
scan_portable (const Scan *scan, gint64 begin, gint64 end, Selection *selections)
{
  int n_pairs = scan->index->n_pairs, n_parts = scan->parts.n_parts;
  float scores[PANEL_ROWS];
  for (gint64 p = begin; p < end; p++)
    for (int q = 0; q < scan->n_queries; q++) {
      for (int l = 0; l < PANEL_ROWS; l++)
        scores[l] = 0.0f;
      for (int part = 0; part < n_parts; part++) {
        const guint32 *x = scan_panel (scan, part, p);
        const float *pairs = scan->query_pairs + ((gsize) q * n_parts + part) * n_pairs * 2;
        for (int j = 0; j < n_pairs; j++)
          for (int l = 0; l < PANEL_ROWS; l++) {
            guint32 w = x[j * PANEL_ROWS + l];
            scores[l] +=
                pairs[2 * j] * from_bf16 (w & 0xffffu) + pairs[2 * j + 1] * from_bf16 (w >> 16);
          }
      }
      offer_scores (&selections[q], p * PANEL_ROWS, scores, PANEL_ROWS);
    }
}

#ifdef HAVE_X86_KERNELS

/* Offers the lanes of `scores` (16 rows from first_row) that pass the query's cut. */
static inline void
offer_lanes (Selection *selection, gint64 first_row, const float *scores, unsigned mask)
{
  while (mask) {
    int l = __builtin_ctz (mask);
    offer (selection, first_row + l, scores[l]);
    mask &= mask - 1;
  }
}

/* AVX2 + FMA: bfloat16 pairs widened to float32 (even: shift left 16; odd: mask the high
 * half), 8 rows per register. A tile is M queries (from q0) × P panels (from p); S = 2 gives
 * the even and odd products separate accumulators, so a single query has enough independent
 * FMA chains to keep up with memory. */
__attribute__ ((target ("avx2,fma"), always_inline)) static inline void
avx2_tile (const Scan *scan, gint64 p, int q0, const int P, const int M, const int S,
           Selection *selections)
{
  int n_pairs = scan->index->n_pairs, n_parts = scan->parts.n_parts;
  __m256 acc[4][4][2]; /* [M][2·P][S] */
#pragma GCC unroll 4
  for (int i = 0; i < M; i++)
#pragma GCC unroll 4
    for (int h = 0; h < 2 * P; h++)
#pragma GCC unroll 2
      for (int s = 0; s < S; s++)
        acc[i][h][s] = _mm256_setzero_ps ();
  const __m256i high_mask = _mm256_set1_epi32 ((int) 0xffff0000u);
  for (int part = 0; part < n_parts; part++) {
    const __m256i *x = (const __m256i *) scan_panel (scan, part, p);
    gsize panel_vectors = (gsize) n_pairs * 2; /* 256-bit vectors per panel */
    const float *pairs[4];
#pragma GCC unroll 4
    for (int i = 0; i < M; i++)
      pairs[i] = scan->query_pairs + ((gsize) (q0 + i) * n_parts + part) * n_pairs * 2;
    for (int j = 0; j < n_pairs; j++) {
      __m256 even[4], odd[4];
#pragma GCC unroll 4
      for (int h = 0; h < 2 * P; h++) {
        __m256i w = _mm256_load_si256 (x + (h / 2) * panel_vectors + 2 * j + h % 2);
        even[h] = _mm256_castsi256_ps (_mm256_slli_epi32 (w, 16));
        odd[h] = _mm256_castsi256_ps (_mm256_and_si256 (w, high_mask));
      }
#pragma GCC unroll 4
      for (int i = 0; i < M; i++) {
        __m256 qe = _mm256_broadcast_ss (pairs[i] + 2 * j);
        __m256 qo = _mm256_broadcast_ss (pairs[i] + 2 * j + 1);
#pragma GCC unroll 4
        for (int h = 0; h < 2 * P; h++) {
          acc[i][h][0] = _mm256_fmadd_ps (qe, even[h], acc[i][h][0]);
          acc[i][h][S - 1] = _mm256_fmadd_ps (qo, odd[h], acc[i][h][S - 1]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < M; i++) {
    Selection *selection = &selections[q0 + i];
    __m256 cut = _mm256_set1_ps (selection->cut);
#pragma GCC unroll 2
    for (int c = 0; c < P; c++) {
      __m256 low = acc[i][2 * c][0], high = acc[i][2 * c + 1][0];
      if (S == 2) {
        low = _mm256_add_ps (low, acc[i][2 * c][1]);
        high = _mm256_add_ps (high, acc[i][2 * c + 1][1]);
      }
      unsigned mask = (unsigned) _mm256_movemask_ps (_mm256_cmp_ps (low, cut, _CMP_GE_OQ)) |
                      (unsigned) _mm256_movemask_ps (_mm256_cmp_ps (high, cut, _CMP_GE_OQ)) << 8;
      if (mask) {
        float scores[PANEL_ROWS];
        _mm256_storeu_ps (scores, low);
        _mm256_storeu_ps (scores + 8, high);
        offer_lanes (selection, (p + c) * PANEL_ROWS, scores, mask);
      }
    }
  }
}

__attribute__ ((target ("avx2,fma"))) static void
scan_avx2 (const Scan *scan, gint64 begin, gint64 end, Selection *selections)
{
  /* One panel per tile: two would need more than AVX2's 16 registers. */
  for (gint64 p = begin; p < end; p++)
    for (int q0 = 0; q0 < scan->n_queries; q0 += 4) {
      switch (MIN (4, scan->n_queries - q0)) {
        case 1:
          avx2_tile (scan, p, q0, 1, 1, 2, selections);
          break;
        case 2:
          avx2_tile (scan, p, q0, 1, 2, 1, selections);
          break;
        case 3:
          avx2_tile (scan, p, q0, 1, 3, 1, selections);
          break;
        default:
          avx2_tile (scan, p, q0, 1, 4, 1, selections);
          break;
      }
    }
}

/* AVX-512 BF16: one vdpbf16ps multiplies 16 rows' pairs by a query pair and accumulates in
 * float32. A tile is M queries × P panels with S accumulators per (query, panel): S = 2 splits
 * even and odd pairs, for enough independent chains when M·P is small. */
__attribute__ ((target ("avx512f,avx512bf16"), always_inline)) static inline void
avx512_tile (const Scan *scan, gint64 p, int q0, const int P, const int M, const int S,
             Selection *selections)
{
  int n_pairs = scan->index->n_pairs, n_parts = scan->parts.n_parts;
  gsize panel_size = (gsize) n_pairs * PANEL_ROWS;
  __m512 acc[8][4][2]; /* [M][P][S] */
#pragma GCC unroll 8
  for (int i = 0; i < M; i++)
#pragma GCC unroll 4
    for (int c = 0; c < P; c++)
#pragma GCC unroll 2
      for (int s = 0; s < S; s++)
        acc[i][c][s] = _mm512_setzero_ps ();
  for (int part = 0; part < n_parts; part++) {
    const guint32 *x = scan_panel (scan, part, p);
    const guint32 *pairs[8];
#pragma GCC unroll 8
    for (int i = 0; i < M; i++)
      pairs[i] = scan->query_bf16 + ((gsize) (q0 + i) * n_parts + part) * n_pairs;
    int j = 0;
    for (; j + S <= n_pairs; j += S)
#pragma GCC unroll 2
      for (int s = 0; s < S; s++) {
        __m512bh a[4];
#pragma GCC unroll 4
        for (int c = 0; c < P; c++)
          a[c] = (__m512bh) _mm512_load_si512 (x + c * panel_size + (j + s) * PANEL_ROWS);
#pragma GCC unroll 8
        for (int i = 0; i < M; i++) {
          __m512bh b = (__m512bh) _mm512_set1_epi32 ((int) pairs[i][j + s]);
#pragma GCC unroll 4
          for (int c = 0; c < P; c++)
            acc[i][c][s] = _mm512_dpbf16_ps (acc[i][c][s], a[c], b);
        }
      }
    for (; j < n_pairs; j++) {
#pragma GCC unroll 4
      for (int c = 0; c < P; c++) {
        __m512bh a = (__m512bh) _mm512_load_si512 (x + c * panel_size + j * PANEL_ROWS);
#pragma GCC unroll 8
        for (int i = 0; i < M; i++)
          acc[i][c][0] = _mm512_dpbf16_ps (acc[i][c][0], a,
                                           (__m512bh) _mm512_set1_epi32 ((int) pairs[i][j]));
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < M; i++) {
    Selection *selection = &selections[q0 + i];
    __m512 cut = _mm512_set1_ps (selection->cut);
#pragma GCC unroll 4
    for (int c = 0; c < P; c++) {
      __m512 scores = S == 2 ? _mm512_add_ps (acc[i][c][0], acc[i][c][1]) : acc[i][c][0];
      unsigned mask = _mm512_cmp_ps_mask (scores, cut, _CMP_GE_OQ);
      if (mask) {
        float lanes[PANEL_ROWS];
        _mm512_storeu_ps (lanes, scores);
        offer_lanes (selection, (p + c) * PANEL_ROWS, lanes, mask);
      }
    }
  }
}

#define AVX512_QUERIES 8

__attribute__ ((target ("avx512f,avx512bf16"))) static void
scan_avx512 (const Scan *scan, gint64 begin, gint64 end, Selection *selections)
{
  gint64 p = begin;
  int n_queries = scan->n_queries;
  if (n_queries == 1) {
    for (; p + 4 <= end; p += 4)
      avx512_tile (scan, p, 0, 4, 1, 2, selections);
  } else if (n_queries == 2) {
    for (; p + 4 <= end; p += 4)
      avx512_tile (scan, p, 0, 4, 2, 1, selections);
  } else {
    for (; p + 2 <= end; p += 2)
      for (int q0 = 0; q0 < n_queries; q0 += AVX512_QUERIES) {
        switch (MIN (AVX512_QUERIES, n_queries - q0)) {
          case 1:
            avx512_tile (scan, p, q0, 2, 1, 2, selections);
            break;
          case 2:
            avx512_tile (scan, p, q0, 2, 2, 2, selections);
            break;
          case 3:
            avx512_tile (scan, p, q0, 2, 3, 1, selections);
            break;
          case 4:
            avx512_tile (scan, p, q0, 2, 4, 1, selections);
            break;
          case 5:
            avx512_tile (scan, p, q0, 2, 5, 1, selections);
            break;
          case 6:
            avx512_tile (scan, p, q0, 2, 6, 1, selections);
            break;
          case 7:
            avx512_tile (scan, p, q0, 2, 7, 1, selections);
            break;
          default:
            avx512_tile (scan, p, q0, 2, 8, 1, selections);
            break;
        }
      }
  }
  /* the last panels one at a time */
  for (; p < end; p++)
    for (int q0 = 0; q0 < n_queries; q0 += 4) {
      switch (MIN (4, n_queries - q0)) {
        case 1:
          avx512_tile (scan, p, q0, 1, 1, 2, selections);
          break;
        case 2:
          avx512_tile (scan, p, q0, 1, 2, 2, selections);
          break;
        case 3:
          avx512_tile (scan, p, q0, 1, 3, 1, selections);
          break;
        default:
          avx512_tile (scan, p, q0, 1, 4, 1, selections);
          break;
      }
    }
}

#endif /* HAVE_X86_KERNELS */

static void
scan_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  const Scan *scan = data;
  Selection *selections = scan->selections + (gsize) worker * scan->n_queries;
  switch (scan->kernel) {
#ifdef HAVE_X86_KERNELS
    case ACLIP_SEARCH_KERNEL_AVX2:
      scan_avx2 (scan, begin, end, selections);
      break;
    case ACLIP_SEARCH_KERNEL_AVX512_BF16:
      scan_avx512 (scan, begin, end, selections);
      break;
#endif
    default:
      scan_portable (scan, begin, end, selections);
      break;
  }
}

/* Float32 sgemm over blocks of rows, on OpenBLAS's threads; selection on this thread. */
static void
scan_sgemm (const Scan *scan)
{
  const AclipSearchIndex *index = scan->index;
  int dim = index->dim, n_queries = scan->n_queries;
  g_autofree float *scores = g_new (float, (gsize) n_queries * SGEMM_ROWS); /* [n_queries, B] */
  for (gint64 first = 0; first < index->n_rows; first += SGEMM_ROWS) {
    int count = (int) MIN (SGEMM_ROWS, index->n_rows - first);
    for (int part = 0; part < scan->parts.n_parts; part++) {
      const float *rows =
          aclip_embeddings_vectors (index->embeddings, scan->parts.scanned[part]) + first * dim;
      const float *queries = scan->query_f32 + (gsize) part * n_queries * dim;
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n_queries, count, dim,
                   scan->parts.weight[part], queries, dim, rows, dim, part == 0 ? 0.0f : 1.0f,
                   scores, count);
    }
    for (int q = 0; q < n_queries; q++)
      offer_scores (&scan->selections[q], first, scores + (gsize) q * count, count);
  }
}

/* Error bounds ----------------------------------------------------------------------------- */

/* γ_n = n·u / (1 − n·u): the bound on the relative error of an n-term float sum of products. */
static double
gamma_n (double n, double unit)
{
  return n * unit / (1.0 - n * unit);
}

/* 2ε for this kernel: twice the largest |s̃ − s| over rows, for a unit query, where s is the
 * canonical score. S bounds Σ_parts w·Σ_i |q_i x_i| ≤ Σ_parts w·‖q‖·‖x‖. */
static float
selection_margin (const AclipSearchIndex *index, const ModeParts *parts,
                  AclipSearchKernel kernel)
{
  const double unit = 0x1p-24, bf16_unit = 0x1p-8;
  double query_norm = 1.0 + 1e-6; /* a float32 vector normalised in double */
  double sum_bound = 0.0;
  for (int p = 0; p < parts->n_parts; p++)
    sum_bound += parts->weight[p] * query_norm * index->max_norm[parts->scanned[p]];
  double n_terms = (double) parts->n_parts * 2.0 * index->n_pairs;
  double screening;
  if (kernel == ACLIP_SEARCH_KERNEL_SGEMM) {
    /* products and sums in float32, alpha scaling, and adding the second part */
    screening = gamma_n (index->dim + 2.0, unit) * sum_bound + 1e-37;
  } else {
    /* bf16 rounding of query (w·q) and row, exact products in float32, float32 sums; input
     * subnormals treated as zero and outputs flushed by vdpbf16ps */
    double rounding = 2.0 * bf16_unit + bf16_unit * bf16_unit;
    screening = rounding * sum_bound +
                gamma_n (n_terms + 1.0, unit) * (1.0 + bf16_unit) * (1.0 + bf16_unit) *
                    sum_bound +
                n_terms * 0x1p-120;
  }
  /* the canonical score: double sums (error ~1e-16) rounded once to float */
  double canonical = 2.0 * unit * sum_bound + 1e-30;
  /* 25% headroom covers the rounding of cut = heap[0] − margin itself. */
  return (float) (2.0 * 1.25 * (screening + canonical));
}

/* Merge and re-rank ------------------------------------------------------------------------ */

typedef struct
{
  const Scan *scan;
  int k;              /* neighbours asked for */
  int heap_k;         /* min (k, n_rows) */
  float margin;
  gint64 first_query; /* of this block, in the caller's numbering */
  AclipNeighbour *neighbours; /* the caller's [n_queries, k] */
  int *n_found;               /* the caller's, or NULL */
} Finish;

static int
compare_floats_descending (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x < y) - (x > y);
}

static int
compare_candidates (const void *a, const void *b)
{
  const Candidate *x = a, *y = b;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return (x->row > y->row) - (x->row < y->row);
}

/* The canonical score of row against query q of the block. */
static float
canonical_score (const Scan *scan, int q, gint64 row)
{
  const AclipSearchIndex *index = scan->index;
  int dim = index->dim;
  double total = 0.0;
  for (int part = 0; part < scan->parts.n_parts; part++) {
    const float *x =
        aclip_embeddings_vectors (index->embeddings, scan->parts.scanned[part]) + row * dim;
    const float *query = scan->query_f32 + ((gsize) part * scan->n_queries + q) * dim;
    double sum = 0.0;
    for (int i = 0; i < dim; i++)
      sum += (double) query[i] * (double) x[i];
    total += (double) scan->parts.weight[part] * sum;
  }
  return (float) total;
}

static void
finish_queries (gint64 begin, gint64 end, int worker, gpointer data)
{
  const Finish *finish = data;
  const Scan *scan = finish->scan;
  int n_workers = scan->n_workers;
  g_autofree float *best = g_new (float, (gsize) MAX (finish->heap_k, 1) * n_workers);
  for (gint64 q = begin; q < end; q++) {
    /* θ: the heap_k-th best screening score over all workers. */
    int n_best = 0;
    gint64 n_candidates = 0;
    for (int w = 0; w < n_workers; w++) {
      const Selection *selection = &scan->selections[(gsize) w * scan->n_queries + q];
      memcpy (best + n_best, selection->heap, sizeof (float) * selection->heap_size);
      n_best += selection->heap_size;
      n_candidates += selection->n_candidates;
    }
    float threshold = -INFINITY;
    if (finish->heap_k > 0 && n_best >= finish->heap_k) {
      qsort (best, n_best, sizeof (float), compare_floats_descending);
      threshold = best[finish->heap_k - 1] - finish->margin;
    }
    g_autofree Candidate *survivors = g_new (Candidate, MAX (n_candidates, 1));
    gint64 n_survivors = 0;
    for (int w = 0; w < n_workers; w++) {
      const Selection *selection = &scan->selections[(gsize) w * scan->n_queries + q];
      for (gint64 c = 0; c < selection->n_candidates; c++)
        if (selection->candidates[c].score >= threshold) {
          gint64 row = selection->candidates[c].row;
          survivors[n_survivors++] = (Candidate) { row, canonical_score (scan, (int) q, row) };
        }
    }
    qsort (survivors, n_survivors, sizeof (Candidate), compare_candidates);

    const gint64 *ids = aclip_embeddings_ids (scan->index->embeddings);
    gint64 out_query = finish->first_query + q;
    AclipNeighbour *out = finish->neighbours + out_query * finish->k;
    int found = (int) MIN ((gint64) finish->k, n_survivors);
    for (int i = 0; i < finish->k; i++)
      out[i] = i < found ? (AclipNeighbour) { survivors[i].row, ids[survivors[i].row],
                                              survivors[i].score }
                         : (AclipNeighbour) { -1, -1, NAN };
    if (finish->n_found)
      finish->n_found[out_query] = found;
  }
}

/* Queries ------------------------------------------------------------------------------------ */

static int
compare_rows (const void *a, const void *b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

/* query_f32 [dim] = v / ‖v‖ (in double); FALSE when v is not finite or zero. */
static gboolean
normalise_query (float *out, const float *v, int dim)
{
  double sum = 0.0;
  for (int i = 0; i < dim; i++) {
    if (!isfinite (v[i]))
      return FALSE;
    sum += (double) v[i] * (double) v[i];
  }
  if (!(sum > 0.0) || !isfinite (sum))
    return FALSE;
  double scale = 1.0 / sqrt (sum);
  for (int i = 0; i < dim; i++)
    out[i] = (float) ((double) v[i] * scale);
  return TRUE;
}

gboolean
aclip_search (const AclipSearchIndex *index, AclipThreadPool *pool, AclipSearchKernel kernel,
              AclipSearchMode mode, gint64 n_queries, const AclipSearchQuery *queries, int k,
              AclipNeighbour *neighbours, int *n_found, GError **error)
{
  g_return_val_if_fail (index != NULL, FALSE);
  g_return_val_if_fail (n_queries >= 0 && (n_queries == 0 || (queries && neighbours)), FALSE);
  const AclipEmbeddings *embeddings = index->embeddings;
  const char *where = aclip_embeddings_path (embeddings);
  where = where ? where : _("embeddings");

  if (mode >= ACLIP_N_SEARCH_MODES || kernel >= ACLIP_N_SEARCH_KERNELS) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG, _("unknown search mode or kernel"));
    return FALSE;
  }
  if (k < 1) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("the number of neighbours must be at least 1 (it is %d)"), k);
    return FALSE;
  }
  if (!aclip_search_kernel_supported (kernel)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("this processor cannot run the %s search kernel"),
                 aclip_search_kernel_name (kernel));
    return FALSE;
  }
  ModeParts parts = mode_parts (mode);
  for (int p = 0; p < parts.n_parts; p++)
    if (index->panels[parts.scanned[p]] == NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                   _("%s: a %s search needs %s embeddings, which the file does not hold"),
                   where, aclip_search_mode_name (mode), aclip_modality_label (parts.scanned[p]));
      return FALSE;
    }

  int dim = index->dim, n_pairs = index->n_pairs, n_parts = parts.n_parts;
  int n_workers = aclip_thread_pool_n_threads (pool);
  int heap_k = (int) MIN ((gint64) k, index->n_rows);
  /* Queries per pass: QUERY_BLOCK, fewer when k is so large that the heaps would pass 64 MB. */
  gint64 heap_limit = ((gint64) 16 << 20) / ((gint64) n_workers * MAX (heap_k, 1));
  heap_limit = MAX (heap_limit, 1);
  int block = (int) MIN (MIN ((gint64) QUERY_BLOCK, heap_limit), MAX (n_queries, 1));
  g_autofree float *query_f32 = g_new (float, (gsize) n_parts * block * dim);
  g_autofree float *query_pairs = g_new (float, (gsize) block * n_parts * n_pairs * 2);
  g_autofree guint32 *query_bf16 = g_new (guint32, (gsize) block * n_parts * n_pairs);
  g_autofree float *heaps = g_new (float, (gsize) n_workers * block * MAX (heap_k, 1));
  g_autofree Selection *selections = g_new0 (Selection, (gsize) n_workers * block);
  g_autoptr (GArray) excluded = g_array_sized_new (FALSE, FALSE, sizeof (gint64), 64);
  g_autofree gint64 *excluded_start = g_new (gint64, block + 1);

  gboolean ok = TRUE;
  for (gint64 first = 0; ok && first < n_queries; first += block) {
    int count = (int) MIN ((gint64) block, n_queries - first);
    AclipSearchKernel block_kernel = kernel == ACLIP_SEARCH_KERNEL_AUTO ? choose_kernel (count)
                                                                        : kernel;
    /* Queries: normalised float32 (canonical), then bf16(w·q) pairs. */
    g_array_set_size (excluded, 0);
    for (int q = 0; q < count; q++) {
      const AclipSearchQuery *query = &queries[first + q];
      for (int p = 0; p < n_parts; p++) {
        const float *source =
            parts.query[p] == ACLIP_MODALITY_IMAGE ? query->image : query->spectrum;
        float *normalised = query_f32 + ((gsize) p * count + q) * dim;
        if (source == NULL || !normalise_query (normalised, source, dim)) {
          g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                       source == NULL ? _("query %" PRId64 " has no %s embedding")
                                      : _("query %" PRId64 "’s %s embedding is not finite or "
                                          "is zero"),
                       first + q, aclip_modality_label (parts.query[p]));
          ok = FALSE;
          break;
        }
        guint32 *packed = query_bf16 + ((gsize) q * n_parts + p) * n_pairs;
        float *unpacked = query_pairs + ((gsize) q * n_parts + p) * n_pairs * 2;
        for (int j = 0; j < n_pairs; j++) {
          float weight = parts.weight[p];
          guint32 low = to_bf16 (weight * normalised[2 * j]);
          guint32 high = 2 * j + 1 < dim ? to_bf16 (weight * normalised[2 * j + 1]) : 0u;
          packed[j] = low | (high << 16);
          unpacked[2 * j] = from_bf16 (low);
          unpacked[2 * j + 1] = from_bf16 (high);
        }
      }
      if (!ok)
        break;
      excluded_start[q] = excluded->len;
      for (int e = 0; e < query->n_exclude; e++) {
        gint64 row = aclip_embeddings_find (embeddings, query->exclude_ids[e]);
        if (row >= 0)
          g_array_append_val (excluded, row);
      }
      if (excluded->len - excluded_start[q] > 1)
        qsort ((gint64 *) excluded->data + excluded_start[q], excluded->len - excluded_start[q],
               sizeof (gint64), compare_rows);
    }
    if (!ok)
      break;
    excluded_start[count] = excluded->len;

    Scan scan = {
      .index = index,
      .kernel = block_kernel,
      .parts = parts,
      .n_queries = count,
      .n_workers = n_workers,
      .query_bf16 = query_bf16,
      .query_pairs = query_pairs,
      .query_f32 = query_f32,
      .selections = selections,
    };
    float margin = selection_margin (index, &parts, block_kernel);
    for (int w = 0; w < n_workers; w++)
      for (int q = 0; q < count; q++) {
        Selection *selection = &selections[(gsize) w * count + q];
        Candidate *kept = selection->candidates;
        gint64 capacity = selection->capacity;
        *selection = (Selection) {
          .cut = -INFINITY,
          .margin = margin,
          .k = heap_k,
          .heap = heaps + ((gsize) w * count + q) * MAX (heap_k, 1),
          .candidates = kept,
          .capacity = capacity,
          .excluded = (const gint64 *) excluded->data + excluded_start[q],
          .n_excluded = (int) (excluded_start[q + 1] - excluded_start[q]),
          .n_rows = index->n_rows,
        };
      }
    if (heap_k > 0) {
      if (block_kernel == ACLIP_SEARCH_KERNEL_SGEMM) {
        scan.n_workers = 1; /* OpenBLAS runs the products; the selection is ours, serial */
        scan_sgemm (&scan);
      } else {
        aclip_parallel_for (pool, index->n_panels, PANEL_GRAIN, scan_range, &scan);
      }
    }
    Finish finish = { &scan, k, heap_k, margin, first, neighbours, n_found };
    aclip_parallel_for (pool, count, 16, finish_queries, &finish);
  }

  for (gsize s = 0; s < (gsize) n_workers * block; s++)
    g_free (selections[s].candidates);
  return ok;
}
