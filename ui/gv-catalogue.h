/* gv-catalogue.h — an open catalogue as the viewer and its plugins see it.
 *
 * Wraps the core's AclipCatalogue (docs/catalogue.md) for a GUI: the IDs and every numeric
 * column are read once on open (100,000 rows × 20 columns is 16 MB) so that sorting, filtering
 * and lookups by ID never touch the file; images and spectra are read on demand, one galaxy at
 * a time, from any thread (the object keeps a small pool of file handles behind a mutex,
 * because one AclipCatalogue must not be used by two threads at once).
 *
 * Immutable after gv_catalogue_open: every getter is safe from any thread.
 */
#pragma once

#include <gio/gio.h>

#include "gv-galaxy.h"

G_BEGIN_DECLS

#define GV_TYPE_CATALOGUE (gv_catalogue_get_type ())
G_DECLARE_FINAL_TYPE (GvCatalogue, gv_catalogue, GV, CATALOGUE, GObject)

/* Opens and validates the file, reads the IDs and the numeric columns. Blocking: call it from
 * a worker (gv_catalogue_open_async) for large files. */
GvCatalogue *gv_catalogue_open (const char *path, GError **error);
void gv_catalogue_open_async (const char *path, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
GvCatalogue *gv_catalogue_open_finish (GAsyncResult *result, GError **error);

const char *gv_catalogue_get_path (GvCatalogue *self);
gint64 gv_catalogue_get_n_rows (GvCatalogue *self);
gboolean gv_catalogue_has_images (GvCatalogue *self);
gboolean gv_catalogue_has_spectra (GvCatalogue *self);
int gv_catalogue_get_image_width (GvCatalogue *self);  /* 0 without images */
int gv_catalogue_get_image_height (GvCatalogue *self); /* 0 without images */
double gv_catalogue_get_pixscale (GvCatalogue *self);  /* arcsec/pixel */
int gv_catalogue_get_n_wave (GvCatalogue *self);       /* 0 without spectra */
const double *gv_catalogue_get_wavelength (GvCatalogue *self); /* n_wave, vacuum Å; or NULL */

/* Numeric columns in file order (ID, RA, DEC, Z, LOGMSTAR, FLUX_G, …), NULL-terminated. */
const char *const *gv_catalogue_get_columns (GvCatalogue *self);
/* n_rows values of a numeric column (NaN where unknown), or NULL if there is no such column. */
const double *gv_catalogue_get_column (GvCatalogue *self, const char *name);
const char *gv_catalogue_get_column_unit (GvCatalogue *self, const char *name); /* "" or NULL */
const gint64 *gv_catalogue_get_ids (GvCatalogue *self); /* n_rows IDs */
/* Row of the galaxy with this ID, or −1. */
gint64 gv_catalogue_find_id (GvCatalogue *self, gint64 id);

/* Reads one galaxy (its image and/or spectrum when asked and present). Thread-safe. */
GvGalaxy *gv_catalogue_read_galaxy (GvCatalogue *self, gint64 row, gboolean with_image,
                                    gboolean with_spectrum, GError **error);

/* Writes these rows (n_rows row numbers, in this order; repeats allowed) as a new catalogue
 * file: every numeric column, the image and the spectrum, on this catalogue's wavelength grid
 * and pixel scale. The file appears only when complete (core's writer renames a temporary
 * file), replacing any file at `path`. Images are written as float32 whatever the source's
 * storage, so values read back are exactly the values read here. Columns beyond the required
 * ones are written as float64 (the values gv_catalogue_get_column holds), except int64 columns
 * (without TSCAL/TZERO or TNULL), which are copied as int64 with their exact values (a DESI
 * TARGETID exceeds 2^53, beyond what a double holds exactly). Blocking: run it off the main
 * thread for large selections. */
gboolean gv_catalogue_export_rows (GvCatalogue *self, const gint64 *rows, gsize n_rows,
                                   const char *path, GError **error);

G_END_DECLS
