/* gv-catalogue.c — an open catalogue for the viewer (gv-catalogue.h).
 *
 * What is held in memory: the IDs, every numeric column as doubles (n_rows × n_columns × 8
 * bytes: 16 MB for 100,000 rows and 20 columns), the wavelength grid, and an index of the rows
 * sorted by ID for gv_catalogue_find_id. Images and spectra stay in the file and are read one
 * galaxy at a time.
 *
 * Threads: an AclipCatalogue is a CFITSIO handle with a file position and must not be used by
 * two threads at once. Readers borrow a handle from a pool behind a mutex, opening a new one
 * when every pooled handle is in use; at most POOL_KEEP idle handles are kept (each costs a
 * file descriptor and CFITSIO's buffers), the rest are closed when returned.
 */
#include "gv-catalogue.h"

#include "aclip-catalogue.h"
#include "aclip-fits.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Idle file handles kept for reuse: the thumbnail workers, the detail view and a plugin
 * reading at once. */
#define POOL_KEEP 4

struct _GvCatalogue
{
  GObject parent_instance;

  char *path;
  gint64 n_rows;
  gboolean has_images, has_spectra;
  int image_height, image_width;
  double pixscale;
  int n_wave;
  double *wavelength; /* n_wave, or NULL */

  char **columns;         /* numeric column names in file order, NULL-terminated */
  double **column_values; /* parallel to columns: n_rows values each */
  char **column_units;    /* parallel to columns */
  GHashTable *column_index; /* upper-cased name → index + 1 (GINT_TO_POINTER) */
  gint64 *ids;              /* n_rows */
  gint64 *rows_by_id;       /* n_rows row numbers sorted by (id, row) */

  GMutex pool_lock;
  GPtrArray *pool; /* idle AclipCatalogue handles */
};

G_DEFINE_FINAL_TYPE (GvCatalogue, gv_catalogue, G_TYPE_OBJECT)

static void
gv_catalogue_finalize (GObject *object)
{
  GvCatalogue *self = GV_CATALOGUE (object);

  g_free (self->path);
  g_free (self->wavelength);
  if (self->column_values != NULL)
    for (guint i = 0; self->columns[i] != NULL; i++)
      g_free (self->column_values[i]);
  g_free (self->column_values);
  g_strfreev (self->column_units);
  g_strfreev (self->columns);
  g_clear_pointer (&self->column_index, g_hash_table_unref);
  g_free (self->ids);
  g_free (self->rows_by_id);
  g_clear_pointer (&self->pool, g_ptr_array_unref);
  g_mutex_clear (&self->pool_lock);

  G_OBJECT_CLASS (gv_catalogue_parent_class)->finalize (object);
}

static void
gv_catalogue_class_init (GvCatalogueClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gv_catalogue_finalize;
}

static void
gv_catalogue_init (GvCatalogue *self)
{
  g_mutex_init (&self->pool_lock);
  self->pool = g_ptr_array_new_with_free_func ((GDestroyNotify) aclip_catalogue_free);
  self->column_index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/* Sorting rows by ID: qsort has no user data, so the comparison reads the IDs through a
 * structure of (id, row) pairs. */
typedef struct
{
  gint64 id, row;
} IdRow;

static int
compare_id_row (const void *a, const void *b)
{
  const IdRow *x = a, *y = b;
  if (x->id != y->id)
    return x->id < y->id ? -1 : 1;
  return x->row < y->row ? -1 : (x->row > y->row);
}

static void
build_id_index (GvCatalogue *self)
{
  IdRow *pairs = g_new (IdRow, MAX (self->n_rows, 1));
  for (gint64 r = 0; r < self->n_rows; r++)
    pairs[r] = (IdRow) { self->ids[r], r };
  qsort (pairs, (size_t) self->n_rows, sizeof *pairs, compare_id_row);
  self->rows_by_id = g_new (gint64, MAX (self->n_rows, 1));
  for (gint64 r = 0; r < self->n_rows; r++)
    self->rows_by_id[r] = pairs[r].row;
  g_free (pairs);
}

GvCatalogue *
gv_catalogue_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (AclipCatalogue) handle = aclip_catalogue_open (path, error);
  if (handle == NULL)
    return NULL;

  g_autoptr (GvCatalogue) self = g_object_new (GV_TYPE_CATALOGUE, NULL);
  self->path = g_strdup (path);
  self->n_rows = aclip_catalogue_n_rows (handle);
  self->has_images = aclip_catalogue_has_images (handle);
  self->has_spectra = aclip_catalogue_has_spectra (handle);
  self->image_height = aclip_catalogue_image_height (handle);
  self->image_width = aclip_catalogue_image_width (handle);
  self->pixscale = aclip_catalogue_pixscale (handle);
  self->n_wave = self->has_spectra ? aclip_catalogue_n_wave (handle) : 0;
  if (self->n_wave > 0)
    self->wavelength = g_memdup2 (aclip_catalogue_wavelength (handle),
                                  (gsize) self->n_wave * sizeof (double));

  const char *const *names = aclip_catalogue_numeric_columns (handle);
  guint n_columns = names != NULL ? g_strv_length ((char **) names) : 0;
  self->columns = g_new0 (char *, n_columns + 1);
  self->column_units = g_new0 (char *, n_columns + 1);
  self->column_values = g_new0 (double *, n_columns + 1);
  for (guint i = 0; i < n_columns; i++)
    {
      self->columns[i] = g_strdup (names[i]);
      const char *unit = aclip_catalogue_column_unit (handle, names[i]);
      self->column_units[i] = g_strdup (unit != NULL ? unit : "");
      self->column_values[i] = g_new (double, MAX (self->n_rows, 1));
      g_hash_table_insert (self->column_index, g_ascii_strup (names[i], -1),
                           GINT_TO_POINTER (i + 1));
    }

  /* The IDs and every column in one pass over the rows: a row holds an image and spectra, tens
   * of KB, and a pass per column would read the file's blocks once per column. */
  self->ids = g_new (gint64, MAX (self->n_rows, 1));
  if (self->n_rows > 0
      && !aclip_catalogue_read_scalars (handle, 0, self->n_rows, self->ids, self->column_values,
                                        error))
    return NULL;
  build_id_index (self);

  /* The handle used for opening is the first one in the pool. */
  g_ptr_array_add (self->pool, g_steal_pointer (&handle));
  return g_steal_pointer (&self);
}

static void
open_thread (GTask *task, gpointer source_object, gpointer task_data,
             GCancellable *cancellable)
{
  (void) source_object;
  (void) cancellable;
  GError *error = NULL;
  GvCatalogue *catalogue = gv_catalogue_open (task_data, &error);
  if (catalogue == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, catalogue, g_object_unref);
}

void
gv_catalogue_open_async (const char *path, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (path != NULL);

  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, gv_catalogue_open_async);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, open_thread);
}

GvCatalogue *
gv_catalogue_open_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

const char *
gv_catalogue_get_path (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NULL);
  return self->path;
}

gint64
gv_catalogue_get_n_rows (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), 0);
  return self->n_rows;
}

gboolean
gv_catalogue_has_images (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), FALSE);
  return self->has_images;
}

gboolean
gv_catalogue_has_spectra (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), FALSE);
  return self->has_spectra;
}

int
gv_catalogue_get_image_width (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), 0);
  return self->has_images ? self->image_width : 0;
}

int
gv_catalogue_get_image_height (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), 0);
  return self->has_images ? self->image_height : 0;
}

double
gv_catalogue_get_pixscale (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NAN);
  return self->pixscale;
}

int
gv_catalogue_get_n_wave (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), 0);
  return self->n_wave;
}

const double *
gv_catalogue_get_wavelength (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NULL);
  return self->wavelength;
}

const char *const *
gv_catalogue_get_columns (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NULL);
  return (const char *const *) self->columns;
}

/* Index of a column by name, case-insensitively; −1 if absent. */
static int
column_index (GvCatalogue *self, const char *name)
{
  /* Column names are short; a stack copy avoids an allocation per lookup. */
  char upper[128];
  gsize length = strlen (name);
  if (length >= sizeof upper)
    return -1;
  for (gsize i = 0; i <= length; i++)
    upper[i] = g_ascii_toupper (name[i]);
  return GPOINTER_TO_INT (g_hash_table_lookup (self->column_index, upper)) - 1;
}

const double *
gv_catalogue_get_column (GvCatalogue *self, const char *name)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  int index = column_index (self, name);
  return index >= 0 ? self->column_values[index] : NULL;
}

const char *
gv_catalogue_get_column_unit (GvCatalogue *self, const char *name)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  int index = column_index (self, name);
  return index >= 0 ? self->column_units[index] : NULL;
}

const gint64 *
gv_catalogue_get_ids (GvCatalogue *self)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NULL);
  return self->ids;
}

gint64
gv_catalogue_find_id (GvCatalogue *self, gint64 id)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), -1);

  /* Lower bound of id in the rows sorted by (id, row): the first row with that ID. */
  gint64 low = 0, high = self->n_rows;
  while (low < high)
    {
      gint64 mid = low + (high - low) / 2;
      if (self->ids[self->rows_by_id[mid]] < id)
        low = mid + 1;
      else
        high = mid;
    }
  if (low < self->n_rows && self->ids[self->rows_by_id[low]] == id)
    return self->rows_by_id[low];
  return -1;
}

/* Borrows a file handle: an idle one from the pool, or a newly opened one. */
static AclipCatalogue *
acquire_handle (GvCatalogue *self, GError **error)
{
  g_mutex_lock (&self->pool_lock);
  AclipCatalogue *handle = NULL;
  if (self->pool->len > 0)
    handle = g_ptr_array_steal_index_fast (self->pool, self->pool->len - 1);
  g_mutex_unlock (&self->pool_lock);

  if (handle == NULL)
    handle = aclip_catalogue_open (self->path, error);
  return handle;
}

static void
release_handle (GvCatalogue *self, AclipCatalogue *handle)
{
  g_mutex_lock (&self->pool_lock);
  if (self->pool->len < POOL_KEEP)
    {
      g_ptr_array_add (self->pool, handle);
      handle = NULL;
    }
  g_mutex_unlock (&self->pool_lock);

  if (handle != NULL)
    aclip_catalogue_free (handle);
}

GvGalaxy *
gv_catalogue_read_galaxy (GvCatalogue *self, gint64 row, gboolean with_image,
                          gboolean with_spectrum, GError **error)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (row < 0 || row >= self->n_rows)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Row %" PRId64 " is outside the catalogue “%s” (%" PRId64
                     " rows)"),
                   row, self->path, self->n_rows);
      return NULL;
    }

  with_image = with_image && self->has_images;
  with_spectrum = with_spectrum && self->has_spectra;

  AclipGalaxy galaxy = { 0 };
  g_autofree float *image = NULL;
  g_autofree float *spectrum = NULL;
  g_autofree float *ivar = NULL;
  if (with_image)
    image = galaxy.image
        = g_new (float, (gsize) ACLIP_N_BANDS * self->image_height * self->image_width);
  if (with_spectrum)
    {
      spectrum = galaxy.spectrum = g_new (float, self->n_wave);
      ivar = galaxy.spectrum_ivar = g_new (float, self->n_wave);
    }

  AclipCatalogue *handle = acquire_handle (self, error);
  if (handle == NULL)
    return NULL;
  gboolean ok = aclip_catalogue_read_galaxy (handle, row, &galaxy, error);
  release_handle (self, handle);
  if (!ok)
    return NULL;

  return gv_galaxy_new (self, row, galaxy.id, galaxy.ra, galaxy.dec, galaxy.z, galaxy.logmstar,
                        g_steal_pointer (&image), self->image_height, self->image_width,
                        g_steal_pointer (&spectrum), g_steal_pointer (&ivar), self->n_wave);
}

/* The scalar columns every catalogue has, which AclipGalaxy carries; the others are extras. */
static const char *const required_columns[] = {
  "ID", "RA", "DEC", "Z", "LOGMSTAR", "FLUX_G", "FLUX_R", "FLUX_Z",
};

static gboolean
is_required_column (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (required_columns); i++)
    if (g_ascii_strcasecmp (name, required_columns[i]) == 0)
      return TRUE;
  return FALSE;
}

/* Extra int64 columns are copied exactly, read from the source as int64: the catalogue keeps
 * its columns as doubles, which hold integers exactly only up to 2^53 (a DESI TARGETID is
 * larger). Finds the extras stored as int64 without scaling or null value (the others keep
 * going through doubles, where a null is NaN), sets their layout type to int64 and their
 * source column number in int64_column (−1 for the others). */
static gboolean
find_int64_columns (AclipFits *source, AclipExtraColumn *extra, int n_extra, int *int64_column,
                    GError **error)
{
  if (!aclip_fits_move_to_name (source, "GALAXIES", NULL, error))
    return FALSE;
  for (int e = 0; e < n_extra; e++)
    {
      AclipFitsColumn column;
      AclipFitsColumnStorage storage;
      if (!aclip_fits_column (source, extra[e].name, &column, error)
          || !aclip_fits_column_storage (source, column.number, &storage, error))
        return FALSE;
      gboolean exact = column.type == ACLIP_FITS_TYPE_INT64 && column.repeat == 1
                       && !column.scaled && !storage.has_null;
      int64_column[e] = exact ? column.number : -1;
      if (exact)
        extra[e].type = ACLIP_COLUMN_INT64;
    }
  return TRUE;
}

gboolean
gv_catalogue_export_rows (GvCatalogue *self, const gint64 *rows, gsize n_rows, const char *path,
                          GError **error)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (self), FALSE);
  g_return_val_if_fail (n_rows == 0 || rows != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (gsize i = 0; i < n_rows; i++)
    if (rows[i] < 0 || rows[i] >= self->n_rows)
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                     _("Row %" PRId64 " is outside the catalogue “%s” (%" PRId64
                       " rows)"),
                     rows[i], self->path, self->n_rows);
        return FALSE;
      }

  /* Extras: the numeric columns beyond the required ones, in file order. */
  guint n_columns = g_strv_length (self->columns);
  g_autofree AclipExtraColumn *extra = g_new0 (AclipExtraColumn, MAX (n_columns, 1));
  g_autofree int *extra_index = g_new0 (int, MAX (n_columns, 1));
  int n_extra = 0;
  for (guint c = 0; c < n_columns; c++)
    if (!is_required_column (self->columns[c]))
      {
        extra[n_extra] = (AclipExtraColumn) {
          .name = self->columns[c],
          .type = ACLIP_COLUMN_DOUBLE,
          .unit = self->column_units[c][0] != '\0' ? self->column_units[c] : NULL,
        };
        extra_index[n_extra++] = (int) c;
      }

  /* The int64 extras' source columns (−1: written from doubles). */
  g_autoptr (AclipFits) source = NULL;
  g_autofree int *int64_column = g_new (int, MAX (n_extra, 1));
  if (n_extra > 0)
    {
      source = aclip_fits_open (self->path, FALSE, error);
      if (source == NULL || !find_int64_columns (source, extra, n_extra, int64_column, error))
        return FALSE;
    }

  g_autofree char *source_name = g_path_get_basename (self->path);
  g_autofree char *history = g_strdup_printf ("Galaxy Viewer: %" G_GSIZE_FORMAT " rows of %s",
                                              n_rows, source_name);
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, self->has_images ? self->image_height : 0,
                                    self->has_images ? self->image_width : 0);
  layout.pixscale = self->pixscale;
  layout.image_quantum = 0;
  layout.n_wave = self->has_spectra ? self->n_wave : 0;
  layout.wavelength = self->has_spectra ? self->wavelength : NULL;
  layout.n_extra = n_extra;
  layout.extra = extra;
  layout.history = history;

  g_autoptr (AclipCatalogueWriter) writer = aclip_catalogue_writer_new (path, &layout, error);
  if (writer == NULL)
    return FALSE;

  g_autofree double *extra_values = g_new (double, MAX (n_extra, 1));
  g_autofree gint64 *extra_int64 = g_new0 (gint64, MAX (n_extra, 1));
  g_autofree float *image
      = self->has_images
            ? g_new (float, (gsize) ACLIP_N_BANDS * self->image_height * self->image_width)
            : NULL;
  g_autofree float *spectrum = self->has_spectra ? g_new (float, self->n_wave) : NULL;
  g_autofree float *ivar = self->has_spectra ? g_new (float, self->n_wave) : NULL;

  AclipCatalogue *handle = acquire_handle (self, error);
  gboolean ok = handle != NULL;
  for (gsize i = 0; i < n_rows && ok; i++)
    {
      AclipGalaxy galaxy = { .image = image, .spectrum = spectrum, .spectrum_ivar = ivar };
      ok = aclip_catalogue_read_galaxy (handle, rows[i], &galaxy, error);
      for (int e = 0; ok && e < n_extra; e++)
        {
          extra_values[e] = self->column_values[extra_index[e]][rows[i]];
          if (int64_column[e] >= 0)
            ok = aclip_fits_read_column_int64 (source, int64_column[e], rows[i], 0, 1,
                                               &extra_int64[e], error);
        }
      ok = ok
           && aclip_catalogue_writer_append_full (writer, &galaxy,
                                                  n_extra > 0 ? extra_values : NULL,
                                                  n_extra > 0 ? extra_int64 : NULL, error);
    }
  if (handle != NULL)
    release_handle (self, handle);

  return ok && aclip_catalogue_writer_finish (writer, error);
}
