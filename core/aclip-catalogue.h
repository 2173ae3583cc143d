/* aclip-catalogue.h — the galaxy catalogue file (FITS), documented in docs/catalogue.md.
 *
 * One row per galaxy: identity, position, labels, a g,r,z image cube in nanomaggies and a
 * spectrum with inverse variance on the file's wavelength grid. Rows are read on demand (the
 * viewer reads one galaxy without reading the file) and written as a stream (a 100k-row file
 * is written without holding it in memory).
 *
 * A catalogue holds images, spectra, or both: IMAGE is absent in a spectra-only import and
 * SPECTRUM/SPECTRUM_IVAR (with the WAVELENGTH HDU) in an images-only one.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_CATALOGUE_VERSION 1
#define ACLIP_N_BANDS 3 /* g, r, z in this order everywhere */

/* The DESI brz grid: 3600–9824 Å in 0.8 Å steps, vacuum. */
#define ACLIP_DESI_WAVE_MIN  3600.0
#define ACLIP_DESI_WAVE_STEP 0.8
#define ACLIP_DESI_N_WAVE    7781
/* Legacy Surveys pixel scale, arcsec/pixel. */
#define ACLIP_LEGACY_PIXSCALE 0.262

/* Fills wavelength[ACLIP_DESI_N_WAVE] with the DESI grid. */
void aclip_desi_wavelength_grid (double *wavelength);

/* One galaxy. The array pointers are borrowed buffers of the sizes the catalogue states
 * (image: 3×H×W floats, band-major then row-major — image[(b*H + y)*W + x]; spectrum and
 * ivar: n_wave floats); they may be NULL when the caller does not want them or the catalogue
 * does not hold them. */
typedef struct
{
  gint64 id;
  double ra, dec;    /* degrees */
  float z;           /* redshift, NaN when unknown */
  float logmstar;    /* log10 stellar mass / M☉, NaN when unknown */
  float flux[ACLIP_N_BANDS]; /* total flux, nanomaggies, NaN when unknown */
  float *image;
  float *spectrum;      /* 1e-17 erg/s/cm²/Å */
  float *spectrum_ivar; /* inverse variance; 0 marks bad pixels */
} AclipGalaxy;

/* Extra label columns beyond the required ones (simulator truth, survey fields). */
typedef enum
{
  ACLIP_COLUMN_FLOAT,  /* float32 */
  ACLIP_COLUMN_DOUBLE, /* float64 */
  ACLIP_COLUMN_INT32,
  ACLIP_COLUMN_INT64,
} AclipColumnType;

typedef struct
{
  const char *name;        /* upper case, FITS-safe */
  AclipColumnType type;
  const char *unit;        /* may be NULL */
  const char *description; /* one line, written as a header comment; may be NULL */
} AclipExtraColumn;

/* Reading -------------------------------------------------------------------------------- */

typedef struct _AclipCatalogue AclipCatalogue;

/* Opens and validates: header keywords, HDUs, every required column's type and shape. Any
 * problem is an error naming the file and the problem. Reads only headers and the wavelength
 * grid. Not thread-safe: open one AclipCatalogue per thread. */
AclipCatalogue *aclip_catalogue_open (const char *path, GError **error);
void aclip_catalogue_free (AclipCatalogue *catalogue);

const char *aclip_catalogue_path (AclipCatalogue *catalogue);
gint64 aclip_catalogue_n_rows (AclipCatalogue *catalogue);
gboolean aclip_catalogue_has_images (AclipCatalogue *catalogue);
gboolean aclip_catalogue_has_spectra (AclipCatalogue *catalogue);
int aclip_catalogue_image_height (AclipCatalogue *catalogue); /* 0 without images */
int aclip_catalogue_image_width (AclipCatalogue *catalogue);
double aclip_catalogue_pixscale (AclipCatalogue *catalogue); /* arcsec/pixel */
int aclip_catalogue_n_wave (AclipCatalogue *catalogue);      /* 0 without spectra */
/* The wavelength grid (vacuum Å), n_wave values, owned by the catalogue; NULL without spectra. */
const double *aclip_catalogue_wavelength (AclipCatalogue *catalogue);

/* Reads the scalar fields of one row (0-based) and, where the galaxy's pointers are not NULL,
 * its image and spectrum. */
gboolean aclip_catalogue_read_galaxy (AclipCatalogue *catalogue, gint64 row, AclipGalaxy *galaxy,
                                      GError **error);

/* Every numeric scalar column (required and extra), in file order; NULL-terminated, owned by
 * the catalogue. */
const char *const *aclip_catalogue_numeric_columns (AclipCatalogue *catalogue);
gboolean aclip_catalogue_has_column (AclipCatalogue *catalogue, const char *name);
/* n_rows values of a numeric scalar column from first_row, as doubles (NaN stays NaN). */
gboolean aclip_catalogue_read_column (AclipCatalogue *catalogue, const char *name,
                                      gint64 first_row, gint64 n_rows, double *values,
                                      GError **error);
/* The ID column, for lookups by ID. */
gboolean aclip_catalogue_read_ids (AclipCatalogue *catalogue, gint64 first_row, gint64 n_rows,
                                   gint64 *ids, GError **error);
/* Every numeric scalar column and the IDs of n_rows rows from first_row in one pass over the
 * rows: what aclip_catalogue_read_column and aclip_catalogue_read_ids give, value for value,
 * at the cost of one column's pass instead of one per column (a catalogue's rows are tens of
 * KB wide, and reading a column touches every row). `columns` holds one array of n_rows
 * doubles per entry of aclip_catalogue_numeric_columns, in that order; an entry, or columns
 * itself, may be NULL to skip. ids: n_rows values, exact int64, or NULL. On failure the
 * arrays hold what was read before it. */
gboolean aclip_catalogue_read_scalars (AclipCatalogue *catalogue, gint64 first_row,
                                       gint64 n_rows, gint64 *ids, double *const *columns,
                                       GError **error);
/* Unit of a column ("" when none), owned by the catalogue; NULL if no such column. */
const char *aclip_catalogue_column_unit (AclipCatalogue *catalogue, const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipCatalogue, aclip_catalogue_free)

/* Writing -------------------------------------------------------------------------------- */

typedef struct
{
  int image_height, image_width; /* 0, 0: no IMAGE column */
  double pixscale;               /* arcsec/pixel; ACLIP_LEGACY_PIXSCALE by default */
  /* > 0: store IMAGE as 16-bit integers with this step in nanomaggies (TSCAL), values outside
   * ±32767 steps clipped and counted; 0: store float32. */
  double image_quantum;
  int n_wave;                    /* 0: no spectra */
  const double *wavelength;      /* n_wave values, vacuum Å, increasing; NULL: the DESI grid */
  int n_extra;
  const AclipExtraColumn *extra;
  /* Free-text provenance written as HISTORY/COMMENT cards in the primary header; may be NULL. */
  const char *history;
} AclipCatalogueLayout;

/* A layout with the DESI grid (wavelength NULL, n_wave ACLIP_DESI_N_WAVE) and 0.262″ pixels,
 * float32 images, no extras; the caller changes what differs. */
void aclip_catalogue_layout_init_desi (AclipCatalogueLayout *layout, int image_height,
                                       int image_width);

typedef struct _AclipCatalogueWriter AclipCatalogueWriter;

/* Starts writing to a temporary file beside `path`; only aclip_catalogue_writer_finish makes
 * `path` appear (by rename). Freeing an unfinished writer deletes the temporary file, so a
 * failed import or simulation leaves no half-written output. */
AclipCatalogueWriter *aclip_catalogue_writer_new (const char *path,
                                                  const AclipCatalogueLayout *layout,
                                                  GError **error);
/* Appends one galaxy. image / spectrum / ivar must be non-NULL when the layout has them;
 * extra_values holds layout->n_extra values in the layout's order (converted to each column's
 * type), NULL when n_extra is 0. Non-finite spectrum pixels are stored with ivar 0. */
gboolean aclip_catalogue_writer_append (AclipCatalogueWriter *writer, const AclipGalaxy *galaxy,
                                        const double *extra_values, GError **error);
/* The same, with extra_int64 (n_extra values, or NULL) giving the ACLIP_COLUMN_INT64 extras'
 * values exactly: a double holds integers exactly only up to 2^53, and a DESI TARGETID is
 * larger. Their entries in extra_values are then ignored. */
gboolean aclip_catalogue_writer_append_full (AclipCatalogueWriter *writer,
                                             const AclipGalaxy *galaxy,
                                             const double *extra_values,
                                             const gint64 *extra_int64, GError **error);
gint64 aclip_catalogue_writer_n_rows (AclipCatalogueWriter *writer);
/* Image pixels clipped by 16-bit quantisation so far. */
gint64 aclip_catalogue_writer_n_clipped (AclipCatalogueWriter *writer);
gboolean aclip_catalogue_writer_finish (AclipCatalogueWriter *writer, GError **error);
void aclip_catalogue_writer_free (AclipCatalogueWriter *writer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipCatalogueWriter, aclip_catalogue_writer_free)

G_END_DECLS
