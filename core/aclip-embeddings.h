/* aclip-embeddings.h — the embeddings file and its in-memory store (docs/embeddings.md).
 *
 * One row per galaxy: its ID and, in the shared AstroCLIP space, an image embedding and a
 * spectrum embedding of `dim` floats each, L2-normalised. A store holds three arrays, each one
 * allocation: ids [N], image [N, dim] and spectrum [N, dim]. A whole modality may be absent
 * (a store made from a spectra-only catalogue has no image array); a single galaxy lacking a
 * modality has a row of NaN there (`aclip_embeddings_row` returns NULL for it). Every other row
 * is finite with norm 1 (within ACLIP_EMBEDDINGS_NORM_TOLERANCE).
 *
 * The file is FITS: a binary table HDU `EMBEDDINGS` with columns ID (int64), IMAGE_EMB and
 * SPECTRUM_EMB (float32 × dim) and header keywords EMBVERS (format version), EMB_DIM, MODEL
 * (the checkpoint's checksum) and CATALOG (the catalogue's file name). It is written as a stream
 * to a temporary file renamed into place on success, and validated completely when opened.
 *
 * A store is read-only once filled: searches and lookups from several threads are then safe.
 * Nearest-neighbour search over a store is in aclip-search.h.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_EMBEDDINGS_VERSION 1
/* The default embedding dimension (AstroCLIP v1's shared space). */
#define ACLIP_EMBEDDING_DIM_DEFAULT 128
/* Largest dimension a file may state (a guard against nonsense headers). */
#define ACLIP_EMBEDDING_DIM_MAX 65536
/* |‖row‖ − 1| allowed in a file (float32 rounding of a normalised vector is ~1e-7). */
#define ACLIP_EMBEDDINGS_NORM_TOLERANCE 1e-3

typedef enum
{
  ACLIP_MODALITY_IMAGE,
  ACLIP_MODALITY_SPECTRUM,
  ACLIP_N_MODALITIES,
} AclipModality;

/* "image" or "spectrum": the identifier, as in column names, options and JSON. */
const char *aclip_modality_name (AclipModality modality);
/* The same word translated, for messages ("the %s embedding"). */
const char *aclip_modality_label (AclipModality modality);

typedef struct _AclipEmbeddings AclipEmbeddings;

/* An in-memory store of n_rows rows with IDs 0 … n_rows−1 and every embedding missing (NaN),
 * holding the arrays of the modalities asked for (at least one), to be filled with
 * aclip_embeddings_set_row. Fails (ACLIP_ERROR_INVALID_ARG) on a dimension outside
 * [1, ACLIP_EMBEDDING_DIM_MAX] or a size that cannot be allocated. */
AclipEmbeddings *aclip_embeddings_new (gint64 n_rows, int dim, gboolean has_image,
                                       gboolean has_spectrum, GError **error);
/* Reads and validates a whole embeddings file: every problem (missing HDU, keyword or column,
 * wrong type or length, a row that is not normalised, NaN mixed with numbers, duplicate IDs,
 * a truncated file) is an error naming the file and the problem. */
AclipEmbeddings *aclip_embeddings_open (const char *path, GError **error);
void aclip_embeddings_free (AclipEmbeddings *embeddings);

/* The file it was read from; NULL for a store made in memory. */
const char *aclip_embeddings_path (const AclipEmbeddings *embeddings);
gint64 aclip_embeddings_n_rows (const AclipEmbeddings *embeddings);
int aclip_embeddings_dim (const AclipEmbeddings *embeddings);
gboolean aclip_embeddings_has_modality (const AclipEmbeddings *embeddings,
                                        AclipModality modality);
/* The MODEL and CATALOG keywords ("" when not known), owned by the store. */
const char *aclip_embeddings_model (const AclipEmbeddings *embeddings);
const char *aclip_embeddings_catalogue (const AclipEmbeddings *embeddings);
void aclip_embeddings_set_provenance (AclipEmbeddings *embeddings, const char *model,
                                      const char *catalogue);

/* ids [n_rows], owned by the store. */
const gint64 *aclip_embeddings_ids (const AclipEmbeddings *embeddings);
/* The whole array of one modality, [n_rows, dim] row-major, NaN rows for missing embeddings;
 * NULL when the store has no such modality. 64-byte aligned. */
const float *aclip_embeddings_vectors (const AclipEmbeddings *embeddings,
                                       AclipModality modality);
/* Row `row`'s embedding [dim], or NULL when the galaxy lacks it (or the store the modality). */
const float *aclip_embeddings_row (const AclipEmbeddings *embeddings, AclipModality modality,
                                   gint64 row);
/* Number of rows holding an embedding of this modality. */
gint64 aclip_embeddings_n_present (const AclipEmbeddings *embeddings, AclipModality modality);
/* The row holding `id` (the first one, should a store in memory hold it twice), or −1. A hash
 * table, built on first use after the IDs change; safe from several threads. */
gint64 aclip_embeddings_find (const AclipEmbeddings *embeddings, gint64 id);

/* Sets row `row`: its ID and embeddings, each [dim] or NULL for a missing one. The vectors
 * are L2-normalised here (accumulating in double); a vector that is not finite or is zero is
 * an error (ACLIP_ERROR_VALUE), as is a vector for a modality the store lacks. Not to be
 * called while another thread reads the store or while a search index over it exists. */
gboolean aclip_embeddings_set_row (AclipEmbeddings *embeddings, gint64 row, gint64 id,
                                   const float *image, const float *spectrum, GError **error);

/* Writes the whole store to `path` (through a temporary file renamed into place) with its
 * provenance. Duplicate IDs are an error. */
gboolean aclip_embeddings_save (const AclipEmbeddings *embeddings, const char *path,
                                GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipEmbeddings, aclip_embeddings_free)

/* Streaming writer ---------------------------------------------------------------------- */

typedef struct
{
  int dim;                  /* ACLIP_EMBEDDING_DIM_DEFAULT for AstroCLIP v1 */
  gboolean has_image;       /* write an IMAGE_EMB column */
  gboolean has_spectrum;    /* write a SPECTRUM_EMB column */
  const char *model;        /* MODEL: the checkpoint's checksum as text; NULL: "" */
  const char *catalogue;    /* CATALOG: the catalogue's file name; NULL: "" */
} AclipEmbeddingsLayout;

typedef struct _AclipEmbeddingsWriter AclipEmbeddingsWriter;

/* Starts writing to a temporary file beside `path`; only aclip_embeddings_writer_finish makes
 * `path` appear. Freeing an unfinished writer deletes the temporary file. */
AclipEmbeddingsWriter *aclip_embeddings_writer_new (const char *path,
                                                    const AclipEmbeddingsLayout *layout,
                                                    GError **error);
/* Appends n_rows rows:
 *   ids      [n_rows]
 *   image    [n_rows, dim], NULL when the layout has no image column
 *   spectrum [n_rows, dim], NULL when the layout has no spectrum column
 * A row of NaN marks a galaxy without that modality; every other row is L2-normalised here.
 * A row mixing NaN with numbers, holding infinities, or zero is an error (ACLIP_ERROR_VALUE)
 * and nothing of this call is written. */
gboolean aclip_embeddings_writer_append (AclipEmbeddingsWriter *writer, gint64 n_rows,
                                         const gint64 *ids, const float *image,
                                         const float *spectrum, GError **error);
gint64 aclip_embeddings_writer_n_rows (AclipEmbeddingsWriter *writer);
/* Checks that the IDs are unique, then renames the file into place. */
gboolean aclip_embeddings_writer_finish (AclipEmbeddingsWriter *writer, GError **error);
void aclip_embeddings_writer_free (AclipEmbeddingsWriter *writer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipEmbeddingsWriter, aclip_embeddings_writer_free)

G_END_DECLS
