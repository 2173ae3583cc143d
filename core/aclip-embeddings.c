/* aclip-embeddings.c — the embeddings file (docs/embeddings.md) and its in-memory store.
 *
 * Layout: an empty primary HDU; a binary table EMBEDDINGS with ID (1K), IMAGE_EMB and/or
 * SPECTRUM_EMB (dim E) and the keywords EMBVERS, EMB_DIM, MODEL, CATALOG. All CFITSIO access
 * goes through aclip-fits.h. IDs are looked up through an open-addressing hash table of rows.
 */
#include "aclip-embeddings.h"

#include "aclip-error.h"
#include "aclip-fits.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXTNAME "EMBEDDINGS"
/* A row whose norm is this close to 1 is kept as given, so that normalising is idempotent and
 * a store saved and read back holds the same bits. */
#define ALREADY_NORMALISED 1e-6
/* Rows read from or written to the file per CFITSIO call. */
#define IO_CHUNK_ROWS 8192

static const char *const column_names[ACLIP_N_MODALITIES] = { "IMAGE_EMB", "SPECTRUM_EMB" };

const char *
aclip_modality_name (AclipModality modality)
{
  switch (modality) {
    case ACLIP_MODALITY_IMAGE:
      return "image";
    case ACLIP_MODALITY_SPECTRUM:
      return "spectrum";
    default:
      return "unknown";
  }
}

const char *
aclip_modality_label (AclipModality modality)
{
  switch (modality) {
    case ACLIP_MODALITY_IMAGE:
      /* TRANSLATORS: the kind of embedding, put into messages such as "the %s embedding is
       * infinite" and "PCA of 300 %s embeddings" */
      return C_ ("modality", "image");
    case ACLIP_MODALITY_SPECTRUM:
      /* TRANSLATORS: the kind of embedding, put into messages such as "the %s embedding is
       * infinite" and "PCA of 300 %s embeddings" */
      return C_ ("modality", "spectrum");
    default:
      return C_ ("modality", "unknown");
  }
}

static gboolean
fail_format (GError **error, AclipError code, const char *path, const char *format, ...)
  G_GNUC_PRINTF (4, 5);

static gboolean
fail_format (GError **error, AclipError code, const char *path, const char *format, ...)
{
  va_list arguments;
  va_start (arguments, format);
  g_autofree char *problem = g_strdup_vprintf (format, arguments);
  va_end (arguments);
  if (path != NULL)
    g_set_error (error, ACLIP_ERROR, code, "%s: %s", path, problem);
  else
    g_set_error_literal (error, ACLIP_ERROR, code, problem);
  return FALSE;
}

/* Rows ----------------------------------------------------------------------------------- */

typedef enum
{
  ROW_PRESENT,
  ROW_MISSING, /* every value NaN */
  ROW_MIXED,   /* NaN mixed with numbers */
  ROW_INFINITE,
} RowState;

/* What a row [dim] is, and its norm (accumulated in double) when present. */
static RowState
classify_row (const float *values, int dim, double *norm)
{
  int n_nan = 0;
  gboolean infinite = FALSE;
  double sum = 0.0;
  for (int i = 0; i < dim; i++) {
    float v = values[i];
    if (isnan (v))
      n_nan++;
    else if (isinf (v))
      infinite = TRUE;
    else
      sum += (double) v * (double) v;
  }
  *norm = sqrt (sum);
  if (n_nan == dim)
    return ROW_MISSING;
  if (n_nan > 0)
    return ROW_MIXED;
  return infinite ? ROW_INFINITE : ROW_PRESENT;
}

/* out [dim] = values / ‖values‖ (norm as given by classify_row, > 0); kept as given when the
 * norm is already 1 to within ALREADY_NORMALISED. */
static void
normalise_row (float *out, const float *values, int dim, double norm)
{
  if (fabs (norm - 1.0) <= ALREADY_NORMALISED) {
    memmove (out, values, (gsize) dim * sizeof (float));
    return;
  }
  double scale = 1.0 / norm;
  for (int i = 0; i < dim; i++)
    out[i] = (float) ((double) values[i] * scale);
}

/* Checks a row given by a caller and writes its normalised form (or NaN) into out [dim].
 * `where` names the file or store for the message. */
static gboolean
prepare_row (float *out, const float *values, int dim, const char *where, gint64 row, gint64 id,
             AclipModality modality, GError **error)
{
  double norm = 0.0;
  switch (classify_row (values, dim, &norm)) {
    case ROW_MISSING:
      for (int i = 0; i < dim; i++)
        out[i] = NAN;
      return TRUE;
    case ROW_MIXED:
      return fail_format (error, ACLIP_ERROR_VALUE, where,
                          _("row %" PRId64 " (ID %" PRId64 "): the %s embedding mixes NaN with "
                            "numbers (a missing embedding is a row of NaN)"),
                          row, id, aclip_modality_label (modality));
    case ROW_INFINITE:
      return fail_format (error, ACLIP_ERROR_VALUE, where,
                          _("row %" PRId64 " (ID %" PRId64 "): the %s embedding is infinite"),
                          row, id, aclip_modality_label (modality));
    case ROW_PRESENT:
      break;
  }
  if (!(norm > 0.0) || !isfinite (norm))
    return fail_format (error, ACLIP_ERROR_VALUE, where,
                        _("row %" PRId64 " (ID %" PRId64
                          "): the %s embedding has norm %g and cannot be normalised"),
                        row, id, aclip_modality_label (modality), norm);
  normalise_row (out, values, dim, norm);
  return TRUE;
}

/* The store ------------------------------------------------------------------------------ */

struct _AclipEmbeddings
{
  char *path; /* NULL in memory */
  gint64 n_rows;
  int dim;
  char *model;
  char *catalogue;
  gint64 *ids;                        /* [n_rows] */
  float *vectors[ACLIP_N_MODALITIES]; /* [n_rows, dim] each, 64-byte aligned; NULL when absent */
  /* ID → row: open addressing with linear probing over rows; −1 marks an empty slot. */
  GMutex index_lock;
  gint index_valid; /* atomic */
  gint64 *slots;    /* [n_slots] */
  gint64 n_slots;   /* a power of two ≥ 2·n_rows */
};

static float *
aligned_floats (gint64 count, GError **error)
{
  void *memory = NULL;
  if (count < 0 || (guint64) count > G_MAXSIZE / sizeof (float) - 64 ||
      posix_memalign (&memory, 64, MAX ((gsize) count * sizeof (float), 64)) != 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("cannot allocate %" PRId64 " floats for embeddings"), count);
    return NULL;
  }
  return memory;
}

AclipEmbeddings *
aclip_embeddings_new (gint64 n_rows, int dim, gboolean has_image, gboolean has_spectrum,
                      GError **error)
{
  if (n_rows < 0 || dim < 1 || dim > ACLIP_EMBEDDING_DIM_MAX || (!has_image && !has_spectrum)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("an embeddings store needs rows ≥ 0, a dimension in [1, %d] and at least "
                   "one modality (asked for %" PRId64 " rows of dimension %d)"),
                 ACLIP_EMBEDDING_DIM_MAX, n_rows, dim);
    return NULL;
  }
  if ((guint64) n_rows > (guint64) G_MAXINT64 / (guint64) dim / 8) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("an embeddings store of %" PRId64 " rows is too large"), n_rows);
    return NULL;
  }
  g_autoptr (AclipEmbeddings) embeddings = g_new0 (AclipEmbeddings, 1);
  g_mutex_init (&embeddings->index_lock);
  embeddings->n_rows = n_rows;
  embeddings->dim = dim;
  embeddings->model = g_strdup ("");
  embeddings->catalogue = g_strdup ("");
  embeddings->ids = g_try_new (gint64, MAX (n_rows, 1));
  if (embeddings->ids == NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("cannot allocate %" PRId64 " embedding IDs"), n_rows);
    return NULL;
  }
  for (gint64 row = 0; row < n_rows; row++)
    embeddings->ids[row] = row;
  gboolean wanted[ACLIP_N_MODALITIES] = { has_image, has_spectrum };
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    if (!wanted[m])
      continue;
    embeddings->vectors[m] = aligned_floats (n_rows * dim, error);
    if (embeddings->vectors[m] == NULL)
      return NULL;
    float *vectors = embeddings->vectors[m];
    for (gint64 i = 0; i < n_rows * dim; i++)
      vectors[i] = NAN;
  }
  return g_steal_pointer (&embeddings);
}

void
aclip_embeddings_free (AclipEmbeddings *embeddings)
{
  if (embeddings == NULL)
    return;
  g_free (embeddings->path);
  g_free (embeddings->model);
  g_free (embeddings->catalogue);
  g_free (embeddings->ids);
  for (int m = 0; m < ACLIP_N_MODALITIES; m++)
    free (embeddings->vectors[m]);
  g_free (embeddings->slots);
  g_mutex_clear (&embeddings->index_lock);
  g_free (embeddings);
}

const char *
aclip_embeddings_path (const AclipEmbeddings *embeddings)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  return embeddings->path;
}

gint64
aclip_embeddings_n_rows (const AclipEmbeddings *embeddings)
{
  g_return_val_if_fail (embeddings != NULL, 0);
  return embeddings->n_rows;
}

int
aclip_embeddings_dim (const AclipEmbeddings *embeddings)
{
  g_return_val_if_fail (embeddings != NULL, 0);
  return embeddings->dim;
}

gboolean
aclip_embeddings_has_modality (const AclipEmbeddings *embeddings, AclipModality modality)
{
  g_return_val_if_fail (embeddings != NULL, FALSE);
  g_return_val_if_fail (modality < ACLIP_N_MODALITIES, FALSE);
  return embeddings->vectors[modality] != NULL;
}

const char *
aclip_embeddings_model (const AclipEmbeddings *embeddings)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  return embeddings->model;
}

const char *
aclip_embeddings_catalogue (const AclipEmbeddings *embeddings)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  return embeddings->catalogue;
}

void
aclip_embeddings_set_provenance (AclipEmbeddings *embeddings, const char *model,
                                 const char *catalogue)
{
  g_return_if_fail (embeddings != NULL);
  g_free (embeddings->model);
  g_free (embeddings->catalogue);
  embeddings->model = g_strdup (model ? model : "");
  embeddings->catalogue = g_strdup (catalogue ? catalogue : "");
}

const gint64 *
aclip_embeddings_ids (const AclipEmbeddings *embeddings)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  return embeddings->ids;
}

const float *
aclip_embeddings_vectors (const AclipEmbeddings *embeddings, AclipModality modality)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  g_return_val_if_fail (modality < ACLIP_N_MODALITIES, NULL);
  return embeddings->vectors[modality];
}

const float *
aclip_embeddings_row (const AclipEmbeddings *embeddings, AclipModality modality, gint64 row)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  g_return_val_if_fail (modality < ACLIP_N_MODALITIES, NULL);
  g_return_val_if_fail (row >= 0 && row < embeddings->n_rows, NULL);
  const float *vectors = embeddings->vectors[modality];
  if (vectors == NULL)
    return NULL;
  const float *values = vectors + row * embeddings->dim;
  /* Rows are either all NaN or all finite (checked on open and on set_row). */
  return isnan (values[0]) ? NULL : values;
}

gint64
aclip_embeddings_n_present (const AclipEmbeddings *embeddings, AclipModality modality)
{
  g_return_val_if_fail (embeddings != NULL, 0);
  gint64 n = 0;
  for (gint64 row = 0; row < embeddings->n_rows; row++)
    n += aclip_embeddings_row (embeddings, modality, row) != NULL;
  return n;
}

/* The ID index ----------------------------------------------------------------------------- */

static inline guint64
hash_id (gint64 id)
{
  /* splitmix64's finaliser: every input bit reaches every output bit. */
  guint64 z = (guint64) id + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Rebuilds the index; returns the row of the first duplicate ID found (and the row it
 * repeats through *first), or −1 when the IDs are unique. */
static gint64
build_index (AclipEmbeddings *embeddings, gint64 *first)
{
  gint64 n_slots = 16;
  while (n_slots < 2 * embeddings->n_rows)
    n_slots *= 2;
  if (n_slots != embeddings->n_slots) {
    g_free (embeddings->slots);
    embeddings->slots = g_new (gint64, n_slots);
    embeddings->n_slots = n_slots;
  }
  gint64 *slots = embeddings->slots;
  for (gint64 i = 0; i < n_slots; i++)
    slots[i] = -1;
  gint64 duplicate = -1;
  guint64 mask = (guint64) n_slots - 1;
  for (gint64 row = 0; row < embeddings->n_rows; row++) {
    gint64 id = embeddings->ids[row];
    guint64 slot = hash_id (id) & mask;
    while (slots[slot] >= 0 && embeddings->ids[slots[slot]] != id)
      slot = (slot + 1) & mask;
    if (slots[slot] >= 0) {
      if (duplicate < 0) {
        duplicate = row;
        if (first)
          *first = slots[slot];
      }
      continue;
    }
    slots[slot] = row;
  }
  return duplicate;
}

gint64
aclip_embeddings_find (const AclipEmbeddings *const_embeddings, gint64 id)
{
  g_return_val_if_fail (const_embeddings != NULL, -1);
  /* The index is a cache: building it does not change what the store holds. */
  AclipEmbeddings *embeddings = (AclipEmbeddings *) const_embeddings;
  if (!g_atomic_int_get (&embeddings->index_valid)) {
    g_mutex_lock (&embeddings->index_lock);
    if (!g_atomic_int_get (&embeddings->index_valid)) {
      build_index (embeddings, NULL);
      g_atomic_int_set (&embeddings->index_valid, 1);
    }
    g_mutex_unlock (&embeddings->index_lock);
  }
  guint64 mask = (guint64) embeddings->n_slots - 1;
  for (guint64 slot = hash_id (id) & mask;; slot = (slot + 1) & mask) {
    gint64 row = embeddings->slots[slot];
    if (row < 0 || embeddings->ids[row] == id)
      return row;
  }
}

gboolean
aclip_embeddings_set_row (AclipEmbeddings *embeddings, gint64 row, gint64 id, const float *image,
                          const float *spectrum, GError **error)
{
  g_return_val_if_fail (embeddings != NULL, FALSE);
  g_return_val_if_fail (row >= 0 && row < embeddings->n_rows, FALSE);
  const float *given[ACLIP_N_MODALITIES] = { image, spectrum };
  int dim = embeddings->dim;
  g_autofree float *prepared = g_new (float, 2 * (gsize) dim);
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    float *out = prepared + m * dim;
    if (given[m] == NULL) {
      for (int i = 0; i < dim; i++)
        out[i] = NAN;
      continue;
    }
    if (embeddings->vectors[m] == NULL)
      return fail_format (error, ACLIP_ERROR_INVALID_ARG, embeddings->path,
                          _("row %" PRId64 " (ID %" PRId64 "): the store holds no %s embeddings"),
                          row, id, aclip_modality_label (m));
    if (!prepare_row (out, given[m], dim, embeddings->path, row, id, m, error))
      return FALSE;
  }
  for (int m = 0; m < ACLIP_N_MODALITIES; m++)
    if (embeddings->vectors[m])
      memcpy (embeddings->vectors[m] + row * dim, prepared + m * dim,
              (gsize) dim * sizeof (float));
  if (embeddings->ids[row] != id) {
    embeddings->ids[row] = id;
    g_atomic_int_set (&embeddings->index_valid, 0);
  }
  return TRUE;
}

/* Reading ---------------------------------------------------------------------------------- */

static gboolean
check_header (AclipFits *fits, AclipEmbeddings *embeddings, GError **error)
{
  const char *path = aclip_fits_path (fits);
  AclipFitsHduType type;
  if (!aclip_fits_has_hdu (fits, EXTNAME))
    return fail_format (error, ACLIP_ERROR_MISSING, path,
                        _("not an embeddings file: it has no %s HDU"), EXTNAME);
  if (!aclip_fits_move_to_name (fits, EXTNAME, &type, error))
    return FALSE;
  if (type != ACLIP_FITS_BINARY_TABLE)
    return fail_format (error, ACLIP_ERROR_FORMAT, path, _("%s is not a binary table"), EXTNAME);
  if (!aclip_fits_has_key (fits, "EMBVERS"))
    return fail_format (error, ACLIP_ERROR_MISSING, path,
                        _("not an embeddings file: keyword EMBVERS is missing from %s"),
                        EXTNAME);
  gint64 version = 0;
  if (!aclip_fits_read_key_int64 (fits, "EMBVERS", &version, error))
    return FALSE;
  if (version != ACLIP_EMBEDDINGS_VERSION)
    return fail_format (error, ACLIP_ERROR_VERSION, path,
                        _("embeddings format version %" PRId64
                          " is not supported (this program reads version %d)"),
                        version, ACLIP_EMBEDDINGS_VERSION);
  gint64 dim = 0;
  if (!aclip_fits_read_key_int64 (fits, "EMB_DIM", &dim, error))
    return FALSE;
  if (dim < 1 || dim > ACLIP_EMBEDDING_DIM_MAX)
    return fail_format (error, ACLIP_ERROR_VALUE, path,
                        _("EMB_DIM is %" PRId64 "; it must be between 1 and %d"), dim,
                        ACLIP_EMBEDDING_DIM_MAX);
  embeddings->dim = (int) dim;
  const char *keys[2] = { "MODEL", "CATALOG" };
  char **values[2] = { &embeddings->model, &embeddings->catalogue };
  for (int i = 0; i < 2; i++) {
    char *value = aclip_fits_has_key (fits, keys[i])
                      ? aclip_fits_read_key_string (fits, keys[i], error)
                      : g_strdup ("");
    if (value == NULL)
      return FALSE;
    g_free (*values[i]);
    *values[i] = value;
  }
  return aclip_fits_table_n_rows (fits, &embeddings->n_rows, error);
}

/* Column numbers: ids_column and columns[m] (0 when the modality is absent). */
static gboolean
check_columns (AclipFits *fits, int dim, int *ids_column, int columns[ACLIP_N_MODALITIES],
               GError **error)
{
  const char *path = aclip_fits_path (fits);
  AclipFitsColumn column;
  if (!aclip_fits_column (fits, "ID", &column, error))
    return FALSE;
  if (column.type != ACLIP_FITS_TYPE_INT64 || column.scaled || column.repeat != 1)
    return fail_format (error, ACLIP_ERROR_SHAPE, path,
                        _("column ID must hold one int64 per row"));
  *ids_column = column.number;
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    columns[m] = 0;
    if (!aclip_fits_has_column (fits, column_names[m]))
      continue;
    if (!aclip_fits_column (fits, column_names[m], &column, error))
      return FALSE;
    if (column.type != ACLIP_FITS_TYPE_FLOAT || column.scaled)
      return fail_format (error, ACLIP_ERROR_SHAPE, path,
                          _("column %s must be float32 without scaling"), column_names[m]);
    if (column.repeat != dim)
      return fail_format (error, ACLIP_ERROR_SHAPE, path,
                          _("column %s has %" PRId64 " values per row but EMB_DIM is %d"),
                          column_names[m], column.repeat, dim);
    columns[m] = column.number;
  }
  if (!columns[0] && !columns[1])
    return fail_format (error, ACLIP_ERROR_MISSING, path,
                        _("neither column %s nor column %s is present"), column_names[0],
                        column_names[1]);
  return TRUE;
}

/* Reads one modality's column and checks every row: all NaN (missing) or finite with norm 1. */
static gboolean
read_vectors (AclipFits *fits, AclipEmbeddings *embeddings, AclipModality modality, int column,
              GError **error)
{
  const char *path = aclip_fits_path (fits);
  int dim = embeddings->dim;
  float *vectors = embeddings->vectors[modality];
  for (gint64 first = 0; first < embeddings->n_rows; first += IO_CHUNK_ROWS) {
    gint64 count = MIN (IO_CHUNK_ROWS, embeddings->n_rows - first);
    float *chunk = vectors + first * dim;
    if (!aclip_fits_read_column_float (fits, column, first, 0, count * dim, chunk, error))
      return FALSE;
    for (gint64 row = first; row < first + count; row++) {
      gint64 id = embeddings->ids[row];
      double norm = 0.0;
      switch (classify_row (vectors + row * dim, dim, &norm)) {
        case ROW_MISSING:
          continue;
        case ROW_MIXED:
          return fail_format (error, ACLIP_ERROR_VALUE, path,
                              _("row %" PRId64 " (ID %" PRId64 ") of %s mixes NaN with numbers "
                                "(a missing embedding is a row of NaN)"),
                              row, id, column_names[modality]);
        case ROW_INFINITE:
          return fail_format (error, ACLIP_ERROR_VALUE, path,
                              _("row %" PRId64 " (ID %" PRId64 ") of %s holds an infinite value"),
                              row, id, column_names[modality]);
        case ROW_PRESENT:
          break;
      }
      if (fabs (norm - 1.0) > ACLIP_EMBEDDINGS_NORM_TOLERANCE)
        return fail_format (error, ACLIP_ERROR_VALUE, path,
                            _("row %" PRId64 " (ID %" PRId64 ") of %s has norm %.6g; embeddings "
                              "must be L2-normalised"),
                            row, id, column_names[modality], norm);
    }
  }
  return TRUE;
}

AclipEmbeddings *
aclip_embeddings_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  if (fits == NULL)
    return NULL;
  g_autoptr (AclipEmbeddings) embeddings = g_new0 (AclipEmbeddings, 1);
  g_mutex_init (&embeddings->index_lock);
  embeddings->path = g_strdup (path);
  embeddings->model = g_strdup ("");
  embeddings->catalogue = g_strdup ("");
  int ids_column = 0, columns[ACLIP_N_MODALITIES];
  if (!check_header (fits, embeddings, error) ||
      !check_columns (fits, embeddings->dim, &ids_column, columns, error))
    return NULL;

  gint64 n_rows = embeddings->n_rows;
  embeddings->ids = g_try_new (gint64, MAX (n_rows, 1));
  if (embeddings->ids == NULL) {
    fail_format (error, ACLIP_ERROR_IO, path,
                 _("cannot allocate memory for %" PRId64 " embeddings"), n_rows);
    return NULL;
  }
  if (n_rows > 0 &&
      !aclip_fits_read_column_int64 (fits, ids_column, 0, 0, n_rows, embeddings->ids, error))
    return NULL;
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    if (!columns[m])
      continue;
    g_autoptr (GError) allocation_error = NULL;
    embeddings->vectors[m] = aligned_floats (n_rows * embeddings->dim, &allocation_error);
    if (embeddings->vectors[m] == NULL) {
      fail_format (error, ACLIP_ERROR_IO, path, "%s", allocation_error->message);
      return NULL;
    }
    if (!read_vectors (fits, embeddings, m, columns[m], error))
      return NULL;
  }

  gint64 first = -1;
  gint64 duplicate = build_index (embeddings, &first);
  if (duplicate >= 0) {
    fail_format (error, ACLIP_ERROR_VALUE, path,
                 _("ID %" PRId64 " appears twice (rows %" PRId64 " and %" PRId64 ")"),
                 embeddings->ids[duplicate], first, duplicate);
    return NULL;
  }
  embeddings->index_valid = 1;
  return g_steal_pointer (&embeddings);
}

/* Writing ---------------------------------------------------------------------------------- */

struct _AclipEmbeddingsWriter
{
  AclipFits *fits;
  char *path;
  AclipEmbeddingsLayout layout;
  int ids_column;
  int columns[ACLIP_N_MODALITIES]; /* 0 when absent */
  gint64 n_rows;
  GArray *ids;       /* gint64, every ID written, for the duplicate check */
  gboolean finished; /* committed (or failed to): the file is closed */
};

void
aclip_embeddings_writer_free (AclipEmbeddingsWriter *writer)
{
  if (writer == NULL)
    return;
  aclip_fits_close (writer->fits);
  g_free (writer->path);
  if (writer->ids)
    g_array_unref (writer->ids);
  g_free (writer);
}

AclipEmbeddingsWriter *
aclip_embeddings_writer_new (const char *path, const AclipEmbeddingsLayout *layout,
                             GError **error)
{
  g_return_val_if_fail (path != NULL && layout != NULL, NULL);
  if (layout->dim < 1 || layout->dim > ACLIP_EMBEDDING_DIM_MAX ||
      (!layout->has_image && !layout->has_spectrum)) {
    fail_format (error, ACLIP_ERROR_INVALID_ARG, path,
                 _("embeddings need a dimension in [1, %d] and at least one modality "
                   "(asked for dimension %d)"),
                 ACLIP_EMBEDDING_DIM_MAX, layout->dim);
    return NULL;
  }

  g_autoptr (AclipEmbeddingsWriter) writer = g_new0 (AclipEmbeddingsWriter, 1);
  writer->path = g_strdup (path);
  writer->layout = *layout;
  writer->layout.model = NULL;
  writer->layout.catalogue = NULL;
  writer->ids = g_array_sized_new (FALSE, FALSE, sizeof (gint64), 1024);
  writer->fits = aclip_fits_create_temporary (path, error);
  if (writer->fits == NULL || !aclip_fits_write_empty_primary (writer->fits, error))
    return NULL;

  g_autofree char *format = g_strdup_printf ("%dE", layout->dim);
  AclipFitsColumnSpec specs[1 + ACLIP_N_MODALITIES] = { 0 };
  int n_columns = 0;
  specs[n_columns++] = (AclipFitsColumnSpec) { "ID", "1K", NULL, 0, { 0 }, 1.0, 0.0 };
  writer->ids_column = 1;
  gboolean wanted[ACLIP_N_MODALITIES] = { layout->has_image, layout->has_spectrum };
  for (int m = 0; m < ACLIP_N_MODALITIES; m++)
    if (wanted[m]) {
      specs[n_columns++] = (AclipFitsColumnSpec) { column_names[m], format, NULL, 0, { 0 },
                                                   1.0, 0.0 };
      writer->columns[m] = n_columns;
    }
  AclipFits *fits = writer->fits;
  if (!aclip_fits_append_table (fits, EXTNAME, n_columns, specs, error) ||
      !aclip_fits_write_key_int64 (fits, "EMBVERS", ACLIP_EMBEDDINGS_VERSION,
                                   "embeddings format version (docs/embeddings.md)", error) ||
      !aclip_fits_write_key_int64 (fits, "EMB_DIM", layout->dim, "embedding dimension", error) ||
      !aclip_fits_write_key_string (fits, "MODEL", layout->model ? layout->model : "",
                                    "checksum of the model checkpoint", error) ||
      !aclip_fits_write_key_string (fits, "CATALOG", layout->catalogue ? layout->catalogue : "",
                                    "catalogue the galaxies come from", error) ||
      !aclip_fits_write_comment (fits,
                                 "L2-normalised AstroCLIP embeddings, one row per galaxy; a "
                                 "row of NaN marks a galaxy without that modality.",
                                 error))
    return NULL;
  return g_steal_pointer (&writer);
}

gboolean
aclip_embeddings_writer_append (AclipEmbeddingsWriter *writer, gint64 n_rows, const gint64 *ids,
                                const float *image, const float *spectrum, GError **error)
{
  g_return_val_if_fail (writer != NULL && !writer->finished, FALSE);
  g_return_val_if_fail (n_rows >= 0 && (n_rows == 0 || ids != NULL), FALSE);
  if (n_rows == 0)
    return TRUE;
  const float *given[ACLIP_N_MODALITIES] = { image, spectrum };
  int dim = writer->layout.dim;
  for (int m = 0; m < ACLIP_N_MODALITIES; m++)
    if ((given[m] != NULL) != (writer->columns[m] != 0))
      return fail_format (error, ACLIP_ERROR_INVALID_ARG, writer->path,
                          writer->columns[m] ? _("the %s embeddings are missing")
                                             : _("the file has no column for %s embeddings"),
                          aclip_modality_label (m));

  /* Everything is checked before anything is written. */
  gsize n_values = (gsize) n_rows * (gsize) dim;
  g_autofree float *prepared = g_try_new (float, n_values * ACLIP_N_MODALITIES);
  if (prepared == NULL)
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, writer->path,
                        _("cannot allocate memory for %" PRId64 " embeddings"), n_rows);
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    if (!given[m])
      continue;
    for (gint64 i = 0; i < n_rows; i++)
      if (!prepare_row (prepared + m * n_values + i * dim, given[m] + i * dim, dim, writer->path,
                        writer->n_rows + i, ids[i], m, error))
        return FALSE;
  }

  if (!aclip_fits_write_column_int64 (writer->fits, writer->ids_column, writer->n_rows, 0, n_rows,
                                      ids, error))
    return FALSE;
  for (int m = 0; m < ACLIP_N_MODALITIES; m++)
    if (given[m] &&
        !aclip_fits_write_column_float (writer->fits, writer->columns[m], writer->n_rows, 0,
                                        (gint64) n_values, prepared + m * n_values, error))
      return FALSE;
  g_array_append_vals (writer->ids, ids, (guint) n_rows);
  writer->n_rows += n_rows;
  return TRUE;
}

gint64
aclip_embeddings_writer_n_rows (AclipEmbeddingsWriter *writer)
{
  g_return_val_if_fail (writer != NULL, 0);
  return writer->n_rows;
}

static int
compare_ids (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

gboolean
aclip_embeddings_writer_finish (AclipEmbeddingsWriter *writer, GError **error)
{
  g_return_val_if_fail (writer != NULL && !writer->finished, FALSE);
  g_array_sort (writer->ids, compare_ids);
  const gint64 *sorted = (const gint64 *) writer->ids->data;
  for (guint i = 1; i < writer->ids->len; i++)
    if (sorted[i] == sorted[i - 1])
      return fail_format (error, ACLIP_ERROR_VALUE, writer->path,
                          _("ID %" PRId64 " was given twice; IDs must be unique"), sorted[i]);
  /* After a commit, failed or not, the file is closed (and a failed one deleted). */
  writer->finished = TRUE;
  return aclip_fits_commit (writer->fits, error);
}

gboolean
aclip_embeddings_save (const AclipEmbeddings *embeddings, const char *path, GError **error)
{
  g_return_val_if_fail (embeddings != NULL && path != NULL, FALSE);
  AclipEmbeddingsLayout layout = {
    .dim = embeddings->dim,
    .has_image = embeddings->vectors[ACLIP_MODALITY_IMAGE] != NULL,
    .has_spectrum = embeddings->vectors[ACLIP_MODALITY_SPECTRUM] != NULL,
    .model = embeddings->model,
    .catalogue = embeddings->catalogue,
  };
  g_autoptr (AclipEmbeddingsWriter) writer = aclip_embeddings_writer_new (path, &layout, error);
  if (writer == NULL)
    return FALSE;
  for (gint64 first = 0; first < embeddings->n_rows; first += IO_CHUNK_ROWS) {
    gint64 count = MIN (IO_CHUNK_ROWS, embeddings->n_rows - first);
    const float *image = embeddings->vectors[ACLIP_MODALITY_IMAGE];
    const float *spectrum = embeddings->vectors[ACLIP_MODALITY_SPECTRUM];
    if (!aclip_embeddings_writer_append (writer, count, embeddings->ids + first,
                                         image ? image + first * embeddings->dim : NULL,
                                         spectrum ? spectrum + first * embeddings->dim : NULL,
                                         error))
      return FALSE;
  }
  return aclip_embeddings_writer_finish (writer, error);
}
