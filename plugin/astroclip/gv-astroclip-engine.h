/* gv-astroclip-engine.h — the AstroCLIP plugin's engine, without GTK widgets: the model, the
 * catalogue's embeddings with their search index, the look-up of a galaxy's neighbours in the
 * five modes, zero-shot property estimates, the 2-D map (PCA) of the embedding space and the
 * export of a neighbour list. The panels (gv-astroclip-addin.c) call these from worker threads
 * (GTask); the tests call them directly.
 *
 * Threads. A GvAstroclipModel and a GvAstroclipIndex are reference-counted and read-only once
 * made; each serialises its own scratch state (the model's activations, the index's thread
 * pool) with a mutex, so any thread may use them at any time.
 *
 * Which embeddings file belongs to a catalogue (gv_astroclip_find_embeddings): for a catalogue
 * `DIR/NAME.fits` the first existing file of
 *   DIR/NAME.embeddings.fits, DIR/NAME-embeddings.fits,
 *   DIR/STEM-embeddings.fits where NAME is STEM-catalogue or STEM-catalog
 *     (so data/demo-catalogue.fits finds data/demo-embeddings.fits),
 *   the plugin's cache: $XDG_CACHE_HOME/galaxy-viewer/embeddings/NAME-HASH.embeddings.fits
 *     (HASH of the catalogue's absolute path), where the plugin writes the embeddings of a
 *     catalogue whose folder is not writable,
 * whose CATALOG keyword is empty or names the catalogue's file (basename). A file naming
 * another catalogue is skipped.
 */
#pragma once

#include <gio/gio.h>

#include "aclip-embeddings.h"
#include "aclip-eval.h"
#include "aclip-model.h"
#include "aclip-search.h"

#include "gv-catalogue.h"
#include "gv-galaxy.h"

G_BEGIN_DECLS

/* Neighbours used for the zero-shot estimates (the paper's k, independent of the panel's). */
#define GV_ASTROCLIP_ESTIMATE_K ACLIP_KNN_K_DEFAULT
/* The panel's default number of neighbours. */
#define GV_ASTROCLIP_DEFAULT_K 12

/* The model ------------------------------------------------------------------------------- */

typedef struct _GvAstroclipModel GvAstroclipModel;

/* Loads an aligned checkpoint for inference (one galaxy at a time) and computes its checksum
 * (as `astroclip embed` writes it in the embeddings' MODEL keyword). */
GvAstroclipModel *gv_astroclip_model_load (const char *path, GError **error);
GvAstroclipModel *gv_astroclip_model_ref (GvAstroclipModel *model);
void gv_astroclip_model_unref (GvAstroclipModel *model);

const char *gv_astroclip_model_get_path (GvAstroclipModel *model);
/* 16 hexadecimal digits of aclip_checkpoint_hash over the file. */
const char *gv_astroclip_model_get_checksum (GvAstroclipModel *model);
int gv_astroclip_model_get_dim (GvAstroclipModel *model);
const AclipModelConfig *gv_astroclip_model_get_config (GvAstroclipModel *model);
/* A few lines for the Model panel: encoders' sizes, embedding dimension, training stage and
 * steps (from the checkpoint's [training] group when it has one). */
char *gv_astroclip_model_describe (GvAstroclipModel *model);

/* Whether the model can embed this catalogue's galaxies: the spectra's pixel count equals the
 * model's, the images are at least the encoder's crop. Each modality separately (a catalogue
 * without spectra is no error for images); FALSE with a sentence in `error` when neither can
 * be embedded. */
gboolean gv_astroclip_model_check_catalogue (GvAstroclipModel *model, GvCatalogue *catalogue,
                                             gboolean *image_ok, gboolean *spectrum_ok,
                                             GError **error);

/* Embeds one galaxy (its image and spectrum as read into the GvGalaxy): image [dim] and
 * spectrum [dim] (either may be NULL: not wanted). *has_image / *has_spectrum (may be NULL)
 * tell which were computed: a galaxy without an image (or spectrum), an image all zero or a
 * spectrum without a good pixel, or a catalogue the model cannot embed in that modality gives
 * FALSE there. Errors only for model failures. */
gboolean gv_astroclip_model_embed_galaxy (GvAstroclipModel *model, GvGalaxy *galaxy,
                                          float *image, float *spectrum, gboolean *has_image,
                                          gboolean *has_spectrum, GError **error);

/* The bundled default model: $GALAXY_VIEWER_MODEL when set, else data/models/
 * astroclip-default.ckpt of the source tree when running uninstalled, else the installed
 * <pkgdatadir>/models/astroclip-default.ckpt; NULL when none exists. */
char *gv_astroclip_find_default_model (void);

/* The astroclip program for training: $ASTROCLIP, else the build tree's trainer/astroclip when
 * running uninstalled, else `astroclip` on PATH; NULL when none is found. */
char *gv_astroclip_find_trainer (void);

/* Embeddings and their index ------------------------------------------------------------ */

typedef struct _GvAstroclipIndex GvAstroclipIndex;

/* The embeddings file for a catalogue by the rule at the top, or NULL. */
char *gv_astroclip_find_embeddings (const char *catalogue_path);
/* Where the plugin writes a catalogue's embeddings: DIR/NAME.embeddings.fits when DIR is
 * writable, else the cache path of the rule. */
char *gv_astroclip_embeddings_path_for (const char *catalogue_path);

/* Opens an embeddings file, builds its search index and the map from its rows to the
 * catalogue's (by ID). Fails when no stored ID is in the catalogue. */
GvAstroclipIndex *gv_astroclip_index_open (const char *path, GvCatalogue *catalogue,
                                           GError **error);
/* The same from a store in memory (taken over). */
GvAstroclipIndex *gv_astroclip_index_new (AclipEmbeddings *embeddings, GvCatalogue *catalogue,
                                          GError **error);
GvAstroclipIndex *gv_astroclip_index_ref (GvAstroclipIndex *index);
void gv_astroclip_index_unref (GvAstroclipIndex *index);

const AclipEmbeddings *gv_astroclip_index_get_embeddings (GvAstroclipIndex *index);
GvCatalogue *gv_astroclip_index_get_catalogue (GvAstroclipIndex *index);
/* Catalogue row of embeddings row `row` (−1 when the catalogue lacks that ID). */
gint64 gv_astroclip_index_catalogue_row (GvAstroclipIndex *index, gint64 row);

/* Look-ups ---------------------------------------------------------------------------------- */

/* "Image → image", … for the panel (translated). */
const char *gv_astroclip_mode_label (AclipSearchMode mode);

/* A galaxy's query vectors: from its stored row when the index has it, else embedded with the
 * model (which may be NULL: then a galaxy missing from the store is an error). */
typedef struct
{
  gint64 id;
  int dim;
  float *image;    /* [dim] or NULL when the galaxy has none */
  float *spectrum; /* [dim] or NULL */
  gboolean embedded; /* computed on the fly (not from the store) */
  double embed_seconds;
} GvAstroclipQuery;

GvAstroclipQuery *gv_astroclip_query_new (GvAstroclipIndex *index, GvAstroclipModel *model,
                                          GvGalaxy *galaxy, GError **error);
void gv_astroclip_query_free (GvAstroclipQuery *query);

/* One neighbour list, best first. */
typedef struct
{
  gint64 query_id;
  AclipSearchMode mode;
  int n;              /* neighbours found (≤ k) */
  gint64 *ids;        /* [n] */
  gint64 *rows;       /* [n] catalogue rows, −1 where the catalogue lacks the ID */
  float *similarity;  /* [n] canonical cosine (aclip-search.h); `both`: mean of two cosines */
} GvAstroclipNeighbours;

/* The k nearest stored galaxies to the query in `mode`, the query galaxy itself excluded.
 * Errors: the query lacks the modality the mode needs ("has no spectrum"), the store lacks the
 * modality it scans. */
GvAstroclipNeighbours *gv_astroclip_search (GvAstroclipIndex *index,
                                            const GvAstroclipQuery *query, AclipSearchMode mode,
                                            int k, GError **error);
GvAstroclipNeighbours *gv_astroclip_neighbours_copy (const GvAstroclipNeighbours *neighbours);
void gv_astroclip_neighbours_free (GvAstroclipNeighbours *neighbours);

/* Zero-shot estimate of a catalogue column from neighbours: with the chord distance
 * d = √(2 − 2s) of each neighbour (s its similarity), weights w = 1/d (sklearn's
 * weights='distance'; neighbours at d = 0, if any, alone and equally), neighbours whose value
 * is NaN skipped:
 *   value  = Σ w y / Σ w
 *   spread = √(Σ w (y − value)² / Σ w)   (the weighted standard deviation of the neighbours)
 * FALSE (value and spread NaN) when the catalogue has no such column or no neighbour has a
 * value. */
typedef struct
{
  double value;
  double spread;
  int n_used;
} GvAstroclipEstimate;

gboolean gv_astroclip_estimate (const GvAstroclipNeighbours *neighbours, GvCatalogue *catalogue,
                                const char *column, GvAstroclipEstimate *estimate);

/* The map ----------------------------------------------------------------------------------- */

/* PCA of one modality's stored embeddings (rows lacking it left out), projected on the first
 * two components. */
typedef struct
{
  AclipModality modality;
  gint64 n;       /* points */
  float *xy;      /* [n, 2] */
  gint64 *rows;   /* [n] catalogue rows (−1 where the catalogue lacks the ID) */
  gint64 *ids;    /* [n] */
  double explained[2]; /* fraction of the total variance along each axis */
} GvAstroclipMap;

GvAstroclipMap *gv_astroclip_map_new (GvAstroclipIndex *index, AclipModality modality,
                                      GError **error);
void gv_astroclip_map_free (GvAstroclipMap *map);

/* Export ------------------------------------------------------------------------------------ */

/* CSV: a header `query_id,rank,id,similarity,<columns…>` (every numeric column of the
 * catalogue), one line per neighbour, NaN as empty fields; the file appears when complete. */
gboolean gv_astroclip_neighbours_write_csv (const GvAstroclipNeighbours *neighbours,
                                            GvCatalogue *catalogue, const char *path,
                                            GError **error);
/* FITS: a binary table HDU NEIGHBOURS with QUERY_ID, RANK, ID (int64), SIMILARITY (float32)
 * and every numeric column of the catalogue (float64), header keywords MODE, QUERY, CATALOG;
 * through a temporary file renamed into place. */
gboolean gv_astroclip_neighbours_write_fits (const GvAstroclipNeighbours *neighbours,
                                             GvCatalogue *catalogue, const char *path,
                                             GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GvAstroclipModel, gv_astroclip_model_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GvAstroclipIndex, gv_astroclip_index_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GvAstroclipQuery, gv_astroclip_query_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GvAstroclipNeighbours, gv_astroclip_neighbours_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GvAstroclipMap, gv_astroclip_map_free)

G_END_DECLS
