/* aclip-search.h — exact nearest-neighbour search over an embeddings store (docs/embeddings.md).
 *
 * Similarity is the cosine of two L2-normalised embeddings (their inner product); mode BOTH
 * uses the mean of the image and spectrum cosines, which is the cosine of the concatenated
 * normalised embeddings. The k most similar rows are returned for each query, sorted by
 * descending similarity, ties broken by the lower row; rows lacking a needed modality and
 * excluded IDs are never returned.
 *
 * Exactness. Every returned similarity is the canonical score
 *   s(q, x) = (float) Σ_parts w · Σ_i (double) q_i · (double) x_i
 * of the normalised float32 query q and the stored float32 row x, and the neighbours are the
 * top k by that score, the same bits whatever the kernel, the thread count or the batch. The
 * scan itself computes a cheaper screening score s̃ (bfloat16 copies of the embeddings with
 * float32 accumulation, or float32 sgemm) whose error |s̃ − s| ≤ ε is bounded analytically; it
 * keeps every row with s̃ ≥ (k-th best s̃) − 2ε, a superset of the true top k, and re-ranks
 * those few rows with the canonical score. No row is dropped on an approximation.
 *
 * Speed: the scan never sorts N scores; it keeps a bounded min-heap of k screening scores and
 * a short candidate list per query. Rows are split among the pool's threads; the batch kernel
 * is a register-blocked matrix product of a tile of queries against 32 rows at a time. With
 * AVX-512 BF16 the products run on bfloat16 pairs (vdpbf16ps), twice float32's rate, and a
 * single query streams half the bytes of float32.
 */
#pragma once

#include "aclip-embeddings.h"
#include "aclip-parallel.h"

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  ACLIP_SEARCH_IMAGE_IMAGE,       /* query image embedding against stored image embeddings */
  ACLIP_SEARCH_SPECTRUM_SPECTRUM, /* spectrum against spectra */
  ACLIP_SEARCH_IMAGE_SPECTRUM,    /* query image against stored spectra (cross-modal) */
  ACLIP_SEARCH_SPECTRUM_IMAGE,    /* query spectrum against stored images */
  ACLIP_SEARCH_BOTH,              /* mean of image·image and spectrum·spectrum */
  ACLIP_N_SEARCH_MODES,
} AclipSearchMode;

/* "image-image", "spectrum-spectrum", "image-spectrum", "spectrum-image", "both". */
const char *aclip_search_mode_name (AclipSearchMode mode);
gboolean aclip_search_mode_from_name (const char *name, AclipSearchMode *mode);
/* Which query embeddings the mode needs, and which stored modalities it scans. */
gboolean aclip_search_mode_uses_query (AclipSearchMode mode, AclipModality modality);
gboolean aclip_search_mode_scans (AclipSearchMode mode, AclipModality modality);

/* One query. The embeddings need not be normalised (they are, in double precision, before the
 * search); those the mode does not use may be NULL. A galaxy embedded on the fly passes its
 * fresh vectors; a stored galaxy can be made a query with aclip_search_query_for_row. */
typedef struct
{
  const float *image;        /* [dim] or NULL */
  const float *spectrum;     /* [dim] or NULL */
  const gint64 *exclude_ids; /* [n_exclude] IDs never returned (e.g. the galaxy itself) */
  int n_exclude;
} AclipSearchQuery;

/* A query from row `row` of the store (pointers into it), excluding that galaxy's own ID when
 * exclude_self. */
void aclip_search_query_for_row (AclipSearchQuery *query, const AclipEmbeddings *embeddings,
                                 gint64 row, gboolean exclude_self);

typedef struct
{
  gint64 row;       /* row in the store; −1 past the neighbours found */
  gint64 id;        /* its ID; −1 past the neighbours found */
  float similarity; /* canonical score (see above); NaN past the neighbours found */
} AclipNeighbour;

/* The scanning kernels, for tests and benchmarks; AUTO picks the fastest this CPU has. */
typedef enum
{
  ACLIP_SEARCH_KERNEL_AUTO,
  ACLIP_SEARCH_KERNEL_PORTABLE,    /* bfloat16 copy, plain C */
  ACLIP_SEARCH_KERNEL_AVX2,        /* bfloat16 copy, AVX2 + FMA in float32 */
  ACLIP_SEARCH_KERNEL_AVX512_BF16, /* bfloat16 copy, AVX-512 BF16 dot products */
  ACLIP_SEARCH_KERNEL_SGEMM,       /* float32 store, OpenBLAS sgemm over row blocks */
  ACLIP_N_SEARCH_KERNELS,
} AclipSearchKernel;

const char *aclip_search_kernel_name (AclipSearchKernel kernel);
/* Whether this CPU (and build) can run the kernel. */
gboolean aclip_search_kernel_supported (AclipSearchKernel kernel);

/* A search index over a store: bfloat16 copies of its embeddings in the scanning layout
 * (2 bytes per value, half the store) and the bounds the exact re-ranking needs. The store is
 * borrowed: it must outlive the index and not change. Built in parallel over `pool` (NULL:
 * serially); read-only afterwards, so several threads may search one index at once, each with
 * its own pool (a pool runs one loop at a time) or NULL. */
typedef struct _AclipSearchIndex AclipSearchIndex;

AclipSearchIndex *aclip_search_index_new (const AclipEmbeddings *embeddings,
                                          AclipThreadPool *pool, GError **error);
void aclip_search_index_free (AclipSearchIndex *index);
const AclipEmbeddings *aclip_search_index_embeddings (const AclipSearchIndex *index);
/* Bytes of the scanning copies (bfloat16), for memory accounting. */
gsize aclip_search_index_size (const AclipSearchIndex *index);

/* The k nearest rows for each of n_queries queries:
 *   queries    [n_queries]
 *   neighbours [n_queries, k]: per query, best first; rows past n_found[q] are −1 / NaN
 *   n_found    [n_queries] or NULL: neighbours found, min (k, rows eligible)
 * The scan runs on `pool`'s threads (NULL: serially) with `kernel` (AUTO normally). Errors:
 * k < 1, a query lacking an embedding the mode needs, or not finite, or zero; the store lacking
 * a modality the mode scans; a kernel this CPU lacks (all ACLIP_ERROR_INVALID_ARG). */
gboolean aclip_search (const AclipSearchIndex *index, AclipThreadPool *pool,
                       AclipSearchKernel kernel, AclipSearchMode mode, gint64 n_queries,
                       const AclipSearchQuery *queries, int k, AclipNeighbour *neighbours,
                       int *n_found, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipSearchIndex, aclip_search_index_free)

G_END_DECLS
