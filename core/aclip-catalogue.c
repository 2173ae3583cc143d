/* aclip-catalogue.c — reading and writing the galaxy catalogue (docs/catalogue.md).
 *
 * Layout: primary HDU with ACLIPCAT / BANDS / PIXSCALE; WAVELENGTH image HDU (float64, NWAVE)
 * when the catalogue holds spectra; GALAXIES binary table, one row per galaxy. All CFITSIO
 * access goes through aclip-fits.h.
 */
#include "aclip-catalogue.h"

#include "aclip-error.h"
#include "aclip-fits.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define QUANTISED_LIMIT 32767.0 /* int16 steps either side of zero; -32768 left unused */

enum
{
  COLUMN_ID,
  COLUMN_RA,
  COLUMN_DEC,
  COLUMN_Z,
  COLUMN_LOGMSTAR,
  COLUMN_FLUX_G,
  COLUMN_FLUX_R,
  COLUMN_FLUX_Z,
  N_SCALAR_COLUMNS,
  COLUMN_IMAGE = N_SCALAR_COLUMNS,
  COLUMN_SPECTRUM,
  COLUMN_SPECTRUM_IVAR,
  N_FIXED_COLUMNS,
};

typedef struct
{
  const char *name;
  AclipFitsType type;
  const char *type_name; /* for messages */
  const char *unit;
  const char *format; /* TFORM when writing a scalar */
} ScalarColumn;

static const ScalarColumn scalar_columns[N_SCALAR_COLUMNS] = {
  { "ID", ACLIP_FITS_TYPE_INT64, "int64", NULL, "1K" },
  { "RA", ACLIP_FITS_TYPE_DOUBLE, "float64", "deg", "1D" },
  { "DEC", ACLIP_FITS_TYPE_DOUBLE, "float64", "deg", "1D" },
  { "Z", ACLIP_FITS_TYPE_FLOAT, "float32", NULL, "1E" },
  { "LOGMSTAR", ACLIP_FITS_TYPE_FLOAT, "float32", "dex(solMass)", "1E" },
  { "FLUX_G", ACLIP_FITS_TYPE_FLOAT, "float32", "nanomaggy", "1E" },
  { "FLUX_R", ACLIP_FITS_TYPE_FLOAT, "float32", "nanomaggy", "1E" },
  { "FLUX_Z", ACLIP_FITS_TYPE_FLOAT, "float32", "nanomaggy", "1E" },
};

#define SPECTRUM_UNIT "1e-17 erg / (s cm2 Angstrom)"
#define IVAR_UNIT     "1e+34 s2 cm4 Angstrom2 / erg2"

void
aclip_desi_wavelength_grid (double *wavelength)
{
  for (int i = 0; i < ACLIP_DESI_N_WAVE; i++)
    wavelength[i] = ACLIP_DESI_WAVE_MIN + ACLIP_DESI_WAVE_STEP * i;
}

/* Reading -------------------------------------------------------------------------------- */

/* A numeric scalar column and, for aclip_catalogue_read_scalars, where its value sits in a row
 * and how it converts to double the way CFITSIO's column reads convert it. */
typedef struct
{
  char *name;
  char *unit;
  int number;
  AclipFitsType type; /* stored type */
  /* Decoded from the row's bytes; FALSE for columns whose storage we do not decode (scaled
   * int64, variable-length, a TNULL outside the type's range): those are read column by
   * column. */
  gboolean from_bytes;
  gint64 offset; /* byte offset within a row */
  int n_bytes;   /* bytes of the one value */
  double scale, zero;
  gboolean null_check; /* integer columns with TNULL: that value reads as NaN */
  gint64 null_value;
} NumericColumn;

struct _AclipCatalogue
{
  AclipFits *fits;
  gint64 n_rows;
  int image_height, image_width;
  double pixscale;
  int n_wave;
  double *wavelength; /* [n_wave] */
  int fixed_numbers[N_FIXED_COLUMNS]; /* column numbers; 0 when absent */
  GArray *numeric;                    /* NumericColumn, file order */
  const char **numeric_names;         /* NULL-terminated view of numeric[].name */
  int id_index;                       /* index of ID in numeric */
  gint64 row_bytes;                   /* NAXIS1; 0 when unknown (no decoding from bytes) */
};

static void
numeric_column_clear (gpointer data)
{
  NumericColumn *column = data;
  g_free (column->name);
  g_free (column->unit);
}

void
aclip_catalogue_free (AclipCatalogue *catalogue)
{
  if (catalogue == NULL)
    return;
  aclip_fits_close (catalogue->fits);
  g_free (catalogue->wavelength);
  g_free (catalogue->numeric_names);
  if (catalogue->numeric)
    g_array_unref (catalogue->numeric);
  g_free (catalogue);
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
  g_set_error (error, ACLIP_ERROR, code, "%s: %s", path, problem);
  return FALSE;
}

static gboolean
check_primary (AclipCatalogue *catalogue, GError **error)
{
  AclipFits *fits = catalogue->fits;
  const char *path = aclip_fits_path (fits);
  if (!aclip_fits_move_to_index (fits, 1, NULL, error))
    return FALSE;
  if (!aclip_fits_has_key (fits, "ACLIPCAT"))
    return fail_format (error, ACLIP_ERROR_FORMAT, path,
                        _("not a galaxy catalogue (no ACLIPCAT keyword in the primary header)"));
  gint64 version = 0;
  if (!aclip_fits_read_key_int64 (fits, "ACLIPCAT", &version, error))
    return FALSE;
  if (version != ACLIP_CATALOGUE_VERSION)
    return fail_format (error, ACLIP_ERROR_VERSION, path,
                        _("catalogue format version %" PRId64
                          " is not supported (this program reads version %d)"),
                        version, ACLIP_CATALOGUE_VERSION);
  g_autofree char *bands = aclip_fits_read_key_string (fits, "BANDS", error);
  if (bands == NULL)
    return FALSE;
  if (g_ascii_strcasecmp (bands, "grz") != 0)
    return fail_format (error, ACLIP_ERROR_FORMAT, path,
                        _("BANDS is “%s”; catalogues hold the bands “grz”"), bands);
  if (!aclip_fits_read_key_double (fits, "PIXSCALE", &catalogue->pixscale, error))
    return FALSE;
  if (!isfinite (catalogue->pixscale) || catalogue->pixscale <= 0.0)
    return fail_format (error, ACLIP_ERROR_VALUE, path,
                        _("PIXSCALE is %g; it must be a positive number of arcsec per pixel"),
                        catalogue->pixscale);
  return TRUE;
}

static gboolean
check_wavelength (AclipCatalogue *catalogue, GError **error)
{
  AclipFits *fits = catalogue->fits;
  const char *path = aclip_fits_path (fits);
  AclipFitsHduType type;
  if (!aclip_fits_move_to_name (fits, "WAVELENGTH", &type, error))
    return FALSE;
  int n_dims = 0;
  gint64 dims[ACLIP_FITS_MAX_DIMS];
  AclipFitsType element_type;
  if (type != ACLIP_FITS_IMAGE_HDU ||
      !aclip_fits_image_shape (fits, &n_dims, dims, &element_type, error)) {
    if (error && *error)
      return FALSE;
    return fail_format (error, ACLIP_ERROR_FORMAT, path, _("WAVELENGTH is not an image HDU"));
  }
  if (n_dims != 1 || dims[0] < 2)
    return fail_format (error, ACLIP_ERROR_SHAPE, path,
                        _("WAVELENGTH must be a 1-D array of at least 2 values (it has %d axes)"),
                        n_dims);
  if (element_type != ACLIP_FITS_TYPE_DOUBLE)
    return fail_format (error, ACLIP_ERROR_SHAPE, path, _("WAVELENGTH must be float64"));
  if (dims[0] > G_MAXINT / 4)
    return fail_format (error, ACLIP_ERROR_SHAPE, path, _("WAVELENGTH is too long"));

  catalogue->n_wave = (int) dims[0];
  catalogue->wavelength = g_new (double, catalogue->n_wave);
  if (!aclip_fits_read_image_double (fits, catalogue->n_wave, catalogue->wavelength, error))
    return FALSE;
  for (int i = 0; i < catalogue->n_wave; i++) {
    if (!isfinite (catalogue->wavelength[i]) || catalogue->wavelength[i] <= 0.0)
      return fail_format (error, ACLIP_ERROR_VALUE, path,
                          _("WAVELENGTH value %d is %g; wavelengths must be positive numbers"),
                          i + 1, catalogue->wavelength[i]);
    if (i > 0 && catalogue->wavelength[i] <= catalogue->wavelength[i - 1])
      return fail_format (error, ACLIP_ERROR_VALUE, path,
                          _("WAVELENGTH is not increasing at value %d"), i + 1);
  }
  return TRUE;
}

static const char *
type_name (AclipFitsType type)
{
  switch (type) {
    case ACLIP_FITS_TYPE_LOGICAL:
      return "logical";
    case ACLIP_FITS_TYPE_BYTE:
      return "uint8";
    case ACLIP_FITS_TYPE_INT16:
      return "int16";
    case ACLIP_FITS_TYPE_INT32:
      return "int32";
    case ACLIP_FITS_TYPE_INT64:
      return "int64";
    case ACLIP_FITS_TYPE_FLOAT:
      return "float32";
    case ACLIP_FITS_TYPE_DOUBLE:
      return "float64";
    case ACLIP_FITS_TYPE_STRING:
      return "string";
    default:
      return "unknown";
  }
}

static gboolean
check_scalar_columns (AclipCatalogue *catalogue, GError **error)
{
  AclipFits *fits = catalogue->fits;
  const char *path = aclip_fits_path (fits);
  for (int i = 0; i < N_SCALAR_COLUMNS; i++) {
    const ScalarColumn *expected = &scalar_columns[i];
    AclipFitsColumn column;
    if (!aclip_fits_column (fits, expected->name, &column, error))
      return FALSE;
    if (column.type != expected->type || column.scaled)
      return fail_format (error, ACLIP_ERROR_SHAPE, path,
                          _("column %s is %s%s; it must be %s"), expected->name,
                          type_name (column.type), column.scaled ? _(" with scaling") : "",
                          expected->type_name);
    if (column.repeat != 1)
      return fail_format (error, ACLIP_ERROR_SHAPE, path,
                          _("column %s has %" PRId64
                            " values per row; it must hold one"),
                          expected->name, column.repeat);
    catalogue->fixed_numbers[i] = column.number;
  }
  return TRUE;
}

static gboolean
check_image_column (AclipCatalogue *catalogue, GError **error)
{
  AclipFits *fits = catalogue->fits;
  const char *path = aclip_fits_path (fits);
  if (!aclip_fits_has_column (fits, "IMAGE"))
    return TRUE;
  AclipFitsColumn column;
  if (!aclip_fits_column (fits, "IMAGE", &column, error))
    return FALSE;
  gboolean quantised = column.type == ACLIP_FITS_TYPE_INT16 && column.scaled;
  if (column.type != ACLIP_FITS_TYPE_FLOAT && !quantised)
    return fail_format (error, ACLIP_ERROR_SHAPE, path,
                        _("column IMAGE is %s; it must be float32 (or int16 with TSCAL)"),
                        type_name (column.type));
  if (column.n_dims != 3 || column.dims[2] != ACLIP_N_BANDS)
    return fail_format (error, ACLIP_ERROR_SHAPE, path,
                        _("column IMAGE must have TDIM = (W, H, 3) for 3 bands of H×W pixels "
                          "(it has %d dimensions, the last %" PRId64 ")"),
                        column.n_dims, column.n_dims > 0 ? column.dims[column.n_dims - 1] : 0);
  if (column.dims[0] < 1 || column.dims[1] < 1 || column.dims[0] > 8192 ||
      column.dims[1] > 8192 || column.dims[0] * column.dims[1] * ACLIP_N_BANDS != column.repeat)
    return fail_format (error, ACLIP_ERROR_SHAPE, path,
                        _("column IMAGE has TDIM (%" PRId64 ", %" PRId64
                          ", 3) that does not match its %" PRId64 " values per row"),
                        column.dims[0], column.dims[1], column.repeat);
  catalogue->image_width = (int) column.dims[0];
  catalogue->image_height = (int) column.dims[1];
  catalogue->fixed_numbers[COLUMN_IMAGE] = column.number;
  return TRUE;
}

static gboolean
check_spectrum_columns (AclipCatalogue *catalogue, GError **error)
{
  AclipFits *fits = catalogue->fits;
  const char *path = aclip_fits_path (fits);
  gboolean has_flux = aclip_fits_has_column (fits, "SPECTRUM");
  gboolean has_ivar = aclip_fits_has_column (fits, "SPECTRUM_IVAR");
  if (!has_flux && !has_ivar)
    return TRUE;
  if (has_flux != has_ivar)
    return fail_format (error, ACLIP_ERROR_MISSING, path,
                        _("column %s is missing (SPECTRUM and SPECTRUM_IVAR go together)"),
                        has_flux ? "SPECTRUM_IVAR" : "SPECTRUM");
  if (catalogue->wavelength == NULL)
    return fail_format (error, ACLIP_ERROR_MISSING, path,
                        _("the catalogue has spectra but no WAVELENGTH HDU"));
  const char *names[2] = { "SPECTRUM", "SPECTRUM_IVAR" };
  for (int i = 0; i < 2; i++) {
    AclipFitsColumn column;
    if (!aclip_fits_column (fits, names[i], &column, error))
      return FALSE;
    if (column.type != ACLIP_FITS_TYPE_FLOAT || column.scaled)
      return fail_format (error, ACLIP_ERROR_SHAPE, path, _("column %s is %s; it must be float32"),
                          names[i], type_name (column.type));
    if (column.repeat != catalogue->n_wave)
      return fail_format (error, ACLIP_ERROR_SHAPE, path,
                          _("column %s has %" PRId64
                            " values per row but WAVELENGTH has %d"),
                          names[i], column.repeat, catalogue->n_wave);
    catalogue->fixed_numbers[COLUMN_SPECTRUM + i] = column.number;
  }
  return TRUE;
}

static int
type_size (AclipFitsType type)
{
  switch (type) {
    case ACLIP_FITS_TYPE_BYTE:
      return 1;
    case ACLIP_FITS_TYPE_INT16:
      return 2;
    case ACLIP_FITS_TYPE_INT32:
    case ACLIP_FITS_TYPE_FLOAT:
      return 4;
    case ACLIP_FITS_TYPE_INT64:
    case ACLIP_FITS_TYPE_DOUBLE:
      return 8;
    default:
      return 0;
  }
}

/* Decides whether a column's value can be decoded from the row's bytes exactly as CFITSIO
 * converts it to double, and records what the decoding needs. */
static void
describe_storage (AclipCatalogue *catalogue, NumericColumn *entry)
{
  AclipFitsColumnStorage storage;
  int size = type_size (entry->type);
  entry->from_bytes = FALSE;
  if (catalogue->row_bytes <= 0 || size == 0 ||
      !aclip_fits_column_storage (catalogue->fits, entry->number, &storage, NULL) ||
      storage.variable || storage.n_bytes != size || storage.offset < 0 ||
      storage.offset + size > catalogue->row_bytes)
    return;
  gboolean scaled = storage.scale != 1.0 || storage.zero != 0.0;
  if (entry->type == ACLIP_FITS_TYPE_INT64 && scaled)
    return; /* CFITSIO converts scaled int64 (TZERO = 2^63: unsigned) its own way */
  if (storage.has_null) {
    /* A TNULL the stored type cannot hold: CFITSIO ignores it for bytes and int16 and compares
     * it cut to 32 bits for int32; rare enough to leave to CFITSIO. */
    static const gint64 lowest[] = { [ACLIP_FITS_TYPE_BYTE] = 0,
                                     [ACLIP_FITS_TYPE_INT16] = G_MININT16,
                                     [ACLIP_FITS_TYPE_INT32] = G_MININT32,
                                     [ACLIP_FITS_TYPE_INT64] = G_MININT64 };
    static const gint64 highest[] = { [ACLIP_FITS_TYPE_BYTE] = G_MAXUINT8,
                                      [ACLIP_FITS_TYPE_INT16] = G_MAXINT16,
                                      [ACLIP_FITS_TYPE_INT32] = G_MAXINT32,
                                      [ACLIP_FITS_TYPE_INT64] = G_MAXINT64 };
    gboolean integer = entry->type != ACLIP_FITS_TYPE_FLOAT &&
                       entry->type != ACLIP_FITS_TYPE_DOUBLE;
    if (integer && (storage.null_value < lowest[entry->type] ||
                    storage.null_value > highest[entry->type]))
      return;
    entry->null_check = integer;
    entry->null_value = storage.null_value;
  }
  entry->offset = storage.offset;
  entry->n_bytes = size;
  entry->scale = storage.scale;
  entry->zero = storage.zero;
  entry->from_bytes = TRUE;
}

static void
collect_numeric_columns (AclipCatalogue *catalogue)
{
  AclipFits *fits = catalogue->fits;
  catalogue->numeric = g_array_new (FALSE, TRUE, sizeof (NumericColumn));
  g_array_set_clear_func (catalogue->numeric, numeric_column_clear);
  int n_columns = aclip_fits_table_n_columns (fits);
  for (int number = 1; number <= n_columns; number++) {
    g_autofree char *name = aclip_fits_column_name (fits, number);
    AclipFitsColumn column;
    if (name == NULL || !aclip_fits_column (fits, name, &column, NULL))
      continue;
    if (column.repeat != 1 || column.type == ACLIP_FITS_TYPE_STRING ||
        column.type == ACLIP_FITS_TYPE_LOGICAL || column.type == ACLIP_FITS_TYPE_OTHER)
      continue;
    g_autofree char *unit_key = g_strdup_printf ("TUNIT%d", number);
    char *unit = aclip_fits_has_key (fits, unit_key)
                     ? aclip_fits_read_key_string (fits, unit_key, NULL)
                     : NULL;
    NumericColumn entry = { g_steal_pointer (&name), unit ? unit : g_strdup (""), number,
                            column.type };
    describe_storage (catalogue, &entry);
    if (number == catalogue->fixed_numbers[COLUMN_ID])
      catalogue->id_index = (int) catalogue->numeric->len;
    g_array_append_val (catalogue->numeric, entry);
  }
  catalogue->numeric_names = g_new0 (const char *, catalogue->numeric->len + 1);
  for (guint i = 0; i < catalogue->numeric->len; i++)
    catalogue->numeric_names[i] = g_array_index (catalogue->numeric, NumericColumn, i).name;
}

AclipCatalogue *
aclip_catalogue_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  g_autoptr (AclipCatalogue) catalogue = g_new0 (AclipCatalogue, 1);
  catalogue->fits = aclip_fits_open (path, FALSE, error);
  if (catalogue->fits == NULL || !check_primary (catalogue, error))
    return NULL;
  if (aclip_fits_has_hdu (catalogue->fits, "WAVELENGTH") && !check_wavelength (catalogue, error))
    return NULL;

  AclipFitsHduType type;
  if (!aclip_fits_move_to_name (catalogue->fits, "GALAXIES", &type, error))
    return NULL;
  if (type != ACLIP_FITS_BINARY_TABLE) {
    fail_format (error, ACLIP_ERROR_FORMAT, path, _("GALAXIES is not a binary table"));
    return NULL;
  }
  if (!aclip_fits_table_n_rows (catalogue->fits, &catalogue->n_rows, error) ||
      !check_scalar_columns (catalogue, error) || !check_image_column (catalogue, error) ||
      !check_spectrum_columns (catalogue, error))
    return NULL;
  if (!catalogue->fixed_numbers[COLUMN_IMAGE] && !catalogue->fixed_numbers[COLUMN_SPECTRUM]) {
    fail_format (error, ACLIP_ERROR_MISSING, path,
                 _("the catalogue has neither an IMAGE column nor SPECTRUM columns"));
    return NULL;
  }
  if (!aclip_fits_table_row_bytes (catalogue->fits, &catalogue->row_bytes, NULL))
    catalogue->row_bytes = 0;
  collect_numeric_columns (catalogue);
  return g_steal_pointer (&catalogue);
}

const char *
aclip_catalogue_path (AclipCatalogue *catalogue)
{
  return aclip_fits_path (catalogue->fits);
}

gint64
aclip_catalogue_n_rows (AclipCatalogue *catalogue)
{
  return catalogue->n_rows;
}

gboolean
aclip_catalogue_has_images (AclipCatalogue *catalogue)
{
  return catalogue->fixed_numbers[COLUMN_IMAGE] != 0;
}

gboolean
aclip_catalogue_has_spectra (AclipCatalogue *catalogue)
{
  return catalogue->fixed_numbers[COLUMN_SPECTRUM] != 0;
}

int
aclip_catalogue_image_height (AclipCatalogue *catalogue)
{
  return catalogue->image_height;
}

int
aclip_catalogue_image_width (AclipCatalogue *catalogue)
{
  return catalogue->image_width;
}

double
aclip_catalogue_pixscale (AclipCatalogue *catalogue)
{
  return catalogue->pixscale;
}

int
aclip_catalogue_n_wave (AclipCatalogue *catalogue)
{
  return aclip_catalogue_has_spectra (catalogue) ? catalogue->n_wave : 0;
}

const double *
aclip_catalogue_wavelength (AclipCatalogue *catalogue)
{
  return aclip_catalogue_has_spectra (catalogue) ? catalogue->wavelength : NULL;
}

static gboolean
check_row (AclipCatalogue *catalogue, gint64 row, GError **error)
{
  if (row >= 0 && row < catalogue->n_rows)
    return TRUE;
  return fail_format (error, ACLIP_ERROR_INVALID_ARG, aclip_catalogue_path (catalogue),
                      _("row %" PRId64 " does not exist (the catalogue has %"
                        PRId64 " rows)"),
                      row, catalogue->n_rows);
}

gboolean
aclip_catalogue_read_galaxy (AclipCatalogue *catalogue, gint64 row, AclipGalaxy *galaxy,
                             GError **error)
{
  g_return_val_if_fail (catalogue != NULL && galaxy != NULL, FALSE);
  if (!check_row (catalogue, row, error))
    return FALSE;

  AclipFits *fits = catalogue->fits;
  const int *numbers = catalogue->fixed_numbers;
  float scalars[5]; /* Z, LOGMSTAR, FLUX_G, FLUX_R, FLUX_Z */
  if (!aclip_fits_read_column_int64 (fits, numbers[COLUMN_ID], row, 0, 1, &galaxy->id, error) ||
      !aclip_fits_read_column_double (fits, numbers[COLUMN_RA], row, 0, 1, &galaxy->ra, error) ||
      !aclip_fits_read_column_double (fits, numbers[COLUMN_DEC], row, 0, 1, &galaxy->dec, error))
    return FALSE;
  for (int i = 0; i < 5; i++)
    if (!aclip_fits_read_column_float (fits, numbers[COLUMN_Z + i], row, 0, 1, &scalars[i],
                                       error))
      return FALSE;
  galaxy->z = scalars[0];
  galaxy->logmstar = scalars[1];
  memcpy (galaxy->flux, &scalars[2], sizeof galaxy->flux);

  if (galaxy->image && numbers[COLUMN_IMAGE]) {
    gint64 n_pixels = (gint64) ACLIP_N_BANDS * catalogue->image_height * catalogue->image_width;
    if (!aclip_fits_read_column_float (fits, numbers[COLUMN_IMAGE], row, 0, n_pixels,
                                       galaxy->image, error))
      return FALSE;
  }
  if (galaxy->spectrum && numbers[COLUMN_SPECTRUM] &&
      !aclip_fits_read_column_float (fits, numbers[COLUMN_SPECTRUM], row, 0, catalogue->n_wave,
                                     galaxy->spectrum, error))
    return FALSE;
  if (galaxy->spectrum_ivar && numbers[COLUMN_SPECTRUM_IVAR] &&
      !aclip_fits_read_column_float (fits, numbers[COLUMN_SPECTRUM_IVAR], row, 0,
                                     catalogue->n_wave, galaxy->spectrum_ivar, error))
    return FALSE;
  return TRUE;
}

const char *const *
aclip_catalogue_numeric_columns (AclipCatalogue *catalogue)
{
  return (const char *const *) catalogue->numeric_names;
}

static const NumericColumn *
find_numeric (AclipCatalogue *catalogue, const char *name)
{
  for (guint i = 0; i < catalogue->numeric->len; i++) {
    const NumericColumn *column = &g_array_index (catalogue->numeric, NumericColumn, i);
    if (g_ascii_strcasecmp (column->name, name) == 0)
      return column;
  }
  return NULL;
}

gboolean
aclip_catalogue_has_column (AclipCatalogue *catalogue, const char *name)
{
  return aclip_fits_has_column (catalogue->fits, name);
}

const char *
aclip_catalogue_column_unit (AclipCatalogue *catalogue, const char *name)
{
  const NumericColumn *column = find_numeric (catalogue, name);
  return column ? column->unit : NULL;
}

static gboolean
check_range (AclipCatalogue *catalogue, gint64 first_row, gint64 n_rows, GError **error)
{
  /* Written so that no sum can overflow, whatever the caller passes. */
  if (first_row >= 0 && n_rows >= 0 && first_row <= catalogue->n_rows &&
      n_rows <= catalogue->n_rows - first_row)
    return TRUE;
  if (first_row < 0 || n_rows <= 0 || first_row > G_MAXINT64 - n_rows)
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, aclip_catalogue_path (catalogue),
                        _("%" PRId64 " rows from row %" PRId64
                          " do not exist (the catalogue has %" PRId64 " rows)"),
                        n_rows, first_row, catalogue->n_rows);
  return fail_format (error, ACLIP_ERROR_INVALID_ARG, aclip_catalogue_path (catalogue),
                      _("rows %" PRId64 " to %" PRId64
                        " do not exist (the catalogue has %" PRId64 " rows)"),
                      first_row, first_row + n_rows - 1, catalogue->n_rows);
}

gboolean
aclip_catalogue_read_column (AclipCatalogue *catalogue, const char *name, gint64 first_row,
                             gint64 n_rows, double *values, GError **error)
{
  g_return_val_if_fail (catalogue != NULL && name != NULL, FALSE);
  const NumericColumn *column = find_numeric (catalogue, name);
  if (column == NULL)
    return fail_format (error, ACLIP_ERROR_MISSING, aclip_catalogue_path (catalogue),
                        _("has no numeric column %s"), name);
  if (!check_range (catalogue, first_row, n_rows, error))
    return FALSE;
  if (n_rows == 0)
    return TRUE;
  return aclip_fits_read_column_double (catalogue->fits, column->number, first_row, 0, n_rows,
                                        values, error);
}

gboolean
aclip_catalogue_read_ids (AclipCatalogue *catalogue, gint64 first_row, gint64 n_rows,
                          gint64 *ids, GError **error)
{
  if (!check_range (catalogue, first_row, n_rows, error))
    return FALSE;
  if (n_rows == 0)
    return TRUE;
  return aclip_fits_read_column_int64 (catalogue->fits, catalogue->fixed_numbers[COLUMN_ID],
                                       first_row, 0, n_rows, ids, error);
}

/* Reading many rows' scalars --------------------------------------------------------------- */

/* One big-endian value of `size` bytes. */
static guint64
load_big_endian (const guint8 *bytes, int size)
{
  guint64 value = 0;
  for (int i = 0; i < size; i++)
    value = value << 8 | bytes[i];
  return value;
}

/* The value at `bytes` as CFITSIO's column read with a NaN null value gives it: integers equal
 * to TNULL and floating-point NaN and ±Inf become NaN; floating-point zeros and subnormals
 * become TZERO (CFITSIO treats a zero exponent as underflow: −0 reads as +0); the rest
 * value × TSCAL + TZERO. */
static double
decode_double (const NumericColumn *column, const guint8 *bytes)
{
  guint64 bits = load_big_endian (bytes, column->n_bytes);
  double value;
  switch (column->type) {
    case ACLIP_FITS_TYPE_BYTE:
    case ACLIP_FITS_TYPE_INT16:
    case ACLIP_FITS_TYPE_INT32:
    case ACLIP_FITS_TYPE_INT64: {
      /* Sign-extend from the stored width (bytes are unsigned). */
      int unused_bits = 64 - 8 * column->n_bytes;
      gint64 integer = column->type == ACLIP_FITS_TYPE_BYTE
                           ? (gint64) bits
                           : (gint64) (bits << unused_bits) >> unused_bits;
      if (column->null_check && integer == column->null_value)
        return NAN;
      value = (double) integer;
      break;
    }
    case ACLIP_FITS_TYPE_FLOAT: {
      guint32 single_bits = (guint32) bits;
      guint32 exponent = single_bits & 0x7f800000u;
      if (exponent == 0x7f800000u)
        return NAN;
      if (exponent == 0)
        return column->zero;
      float single;
      memcpy (&single, &single_bits, sizeof single);
      value = single;
      break;
    }
    case ACLIP_FITS_TYPE_DOUBLE: {
      guint64 exponent = bits & G_GUINT64_CONSTANT (0x7ff0000000000000);
      if (exponent == G_GUINT64_CONSTANT (0x7ff0000000000000))
        return NAN;
      if (exponent == 0)
        return column->zero;
      memcpy (&value, &bits, sizeof value);
      break;
    }
    default:
      g_assert_not_reached ();
  }
  if (column->scale == 1.0 && column->zero == 0.0)
    return value;
  return value * column->scale + column->zero;
}

/* The part of a row to read for a set of columns: `n_bytes` from byte `first` of the row,
 * running on into the next row when first + n_bytes passes the row's end. Catalogue rows put
 * the required scalars first and the extras last, with the image and spectra between: the
 * extras of one row and the scalars of the next are one short run of bytes, where the row
 * itself would need two reads or one of the whole row. So the run chosen is the complement of
 * the largest gap between the columns, counting the gap that wraps round the row's end. */
typedef struct
{
  gint64 first, n_bytes;
} RowSpan;

static int
compare_offsets (const void *a, const void *b)
{
  const NumericColumn *const *x = a, *const *y = b;
  return ((*x)->offset > (*y)->offset) - ((*x)->offset < (*y)->offset);
}

static RowSpan
span_of_columns (const NumericColumn **columns, int n_columns, gint64 row_bytes)
{
  qsort (columns, (size_t) n_columns, sizeof *columns, compare_offsets);
  gint64 end = 0; /* furthest end among the columns so far */
  for (int i = 0; i < n_columns; i++)
    end = MAX (end, columns[i]->offset + columns[i]->n_bytes);
  /* The gap that wraps: after the last column, round to the first. */
  gint64 best_gap = row_bytes - end + columns[0]->offset, best_first = columns[0]->offset;
  end = 0;
  for (int i = 0; i < n_columns; i++) {
    if (i > 0 && columns[i]->offset - end > best_gap) {
      best_gap = columns[i]->offset - end;
      best_first = columns[i]->offset;
    }
    end = MAX (end, columns[i]->offset + columns[i]->n_bytes);
  }
  return (RowSpan) { best_first, row_bytes - best_gap };
}

gboolean
aclip_catalogue_read_scalars (AclipCatalogue *catalogue, gint64 first_row, gint64 n_rows,
                              gint64 *ids, double *const *columns, GError **error)
{
  g_return_val_if_fail (catalogue != NULL, FALSE);
  if (!check_range (catalogue, first_row, n_rows, error))
    return FALSE;
  if (n_rows == 0)
    return TRUE;

  AclipFits *fits = catalogue->fits;
  guint n_numeric = catalogue->numeric->len;
  const NumericColumn *id_column =
      &g_array_index (catalogue->numeric, NumericColumn, catalogue->id_index);

  /* Columns CFITSIO converts itself, one pass each. */
  for (guint c = 0; c < n_numeric; c++) {
    const NumericColumn *column = &g_array_index (catalogue->numeric, NumericColumn, c);
    if (columns != NULL && columns[c] != NULL && !column->from_bytes &&
        !aclip_fits_read_column_double (fits, column->number, first_row, 0, n_rows, columns[c],
                                        error))
      return FALSE;
  }
  if (ids != NULL && !id_column->from_bytes &&
      !aclip_fits_read_column_int64 (fits, id_column->number, first_row, 0, n_rows, ids, error))
    return FALSE;

  /* The rest from each row's bytes. wanted[] are the columns to decode, output[] where. */
  g_autofree const NumericColumn **wanted = g_new (const NumericColumn *, n_numeric + 1);
  int n_wanted = 0;
  for (guint c = 0; c < n_numeric; c++) {
    const NumericColumn *column = &g_array_index (catalogue->numeric, NumericColumn, c);
    if (columns != NULL && columns[c] != NULL && column->from_bytes)
      wanted[n_wanted++] = column;
  }
  gboolean decode_ids = ids != NULL && id_column->from_bytes;
  if (decode_ids && (columns == NULL || columns[catalogue->id_index] == NULL))
    wanted[n_wanted++] = id_column;
  if (n_wanted == 0)
    return TRUE;
  /* Output arrays by column, before span_of_columns reorders wanted[]. */
  g_autofree double **output = g_new0 (double *, n_numeric);
  for (guint c = 0; c < n_numeric; c++)
    output[c] = columns != NULL ? columns[c] : NULL;
  const NumericColumn *base = &g_array_index (catalogue->numeric, NumericColumn, 0);

  gint64 row_bytes = catalogue->row_bytes;
  RowSpan span = span_of_columns (wanted, n_wanted, row_bytes);
  /* Wrapping: bytes [0, low_bytes) of a row come from the previous read. */
  gint64 low_bytes = MAX (0, span.first + span.n_bytes - row_bytes);
  gint64 high_bytes = span.n_bytes - low_bytes;
  g_autofree guint8 *chunk = g_malloc (span.n_bytes);
  g_autofree guint8 *low = g_malloc (MAX (low_bytes, 1));
  if (low_bytes > 0 &&
      !aclip_fits_read_table_bytes (fits, first_row, 0, low_bytes, low, error))
    return FALSE;

  gint64 end_row = first_row + n_rows;
  for (gint64 row = first_row; row < end_row; row++) {
    gboolean last = row + 1 == end_row;
    gint64 n_bytes = last ? high_bytes : span.n_bytes;
    if (!aclip_fits_read_table_bytes (fits, row, span.first, n_bytes, chunk, error))
      return FALSE;
    gint64 index = row - first_row;
    for (int w = 0; w < n_wanted; w++) {
      const NumericColumn *column = wanted[w];
      const guint8 *bytes = column->offset >= span.first ? chunk + (column->offset - span.first)
                                                         : low + column->offset;
      double *values = output[column - base];
      if (values != NULL)
        values[index] = decode_double (column, bytes);
      if (decode_ids && column == id_column)
        ids[index] = (gint64) load_big_endian (bytes, 8);
    }
    if (low_bytes > 0 && !last)
      memcpy (low, chunk + high_bytes, low_bytes);
  }
  return TRUE;
}

/* Writing -------------------------------------------------------------------------------- */

struct _AclipCatalogueWriter
{
  AclipFits *fits;
  AclipCatalogueLayout layout; /* extra and wavelength pointers cleared: not kept */
  int n_extra;
  AclipColumnType *extra_types;  /* [n_extra] */
  int first_extra_column;        /* column number of the first extra column */
  int column_numbers[N_FIXED_COLUMNS];
  gint64 n_rows;
  gint64 n_clipped;
  float *scratch; /* [max(3·H·W, 2·n_wave)]: sanitised copies of one row's arrays */
  gboolean finished;
};

void
aclip_catalogue_layout_init_desi (AclipCatalogueLayout *layout, int image_height,
                                  int image_width)
{
  memset (layout, 0, sizeof *layout);
  layout->image_height = image_height;
  layout->image_width = image_width;
  layout->pixscale = ACLIP_LEGACY_PIXSCALE;
  layout->n_wave = ACLIP_DESI_N_WAVE;
}

void
aclip_catalogue_writer_free (AclipCatalogueWriter *writer)
{
  if (writer == NULL)
    return;
  aclip_fits_close (writer->fits); /* deletes the temporary file when not finished */
  g_free (writer->extra_types);
  g_free (writer->scratch);
  g_free (writer);
}

static gboolean
check_layout (const char *path, const AclipCatalogueLayout *layout, GError **error)
{
  gboolean has_images = layout->image_height > 0 && layout->image_width > 0;
  if (layout->image_height < 0 || layout->image_width < 0 || layout->image_height > 8192 ||
      layout->image_width > 8192 || (layout->image_height > 0) != (layout->image_width > 0))
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, path, _("invalid image size %d×%d"),
                        layout->image_height, layout->image_width);
  if (layout->n_wave < 0 || (layout->n_wave == 1) ||
      (layout->wavelength == NULL && layout->n_wave != 0 && layout->n_wave != ACLIP_DESI_N_WAVE))
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, path,
                        _("invalid spectrum length %d"), layout->n_wave);
  if (!has_images && layout->n_wave == 0)
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, path,
                        _("a catalogue must hold images, spectra or both"));
  if (!(layout->pixscale > 0.0) || !isfinite (layout->pixscale))
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, path, _("invalid pixel scale %g"),
                        layout->pixscale);
  if (layout->image_quantum < 0.0 || !isfinite (layout->image_quantum))
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, path, _("invalid image quantum %g"),
                        layout->image_quantum);
  if (layout->n_extra < 0 || layout->n_extra > 900)
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, path,
                        _("%d extra columns (a FITS table holds at most 999 columns)"),
                        layout->n_extra);
  for (int i = 0; i < layout->n_extra; i++) {
    const char *name = layout->extra[i].name;
    if (name == NULL || name[0] == '\0' || strlen (name) > 60)
      return fail_format (error, ACLIP_ERROR_INVALID_ARG, path,
                          _("extra column %d has no usable name"), i + 1);
    for (int j = 0; j < N_SCALAR_COLUMNS; j++)
      if (g_ascii_strcasecmp (name, scalar_columns[j].name) == 0)
        return fail_format (error, ACLIP_ERROR_INVALID_ARG, path,
                            _("extra column %s repeats a required column"), name);
  }
  return TRUE;
}

static gboolean
write_primary_and_wavelength (AclipFits *fits, const AclipCatalogueLayout *layout,
                              GError **error)
{
  if (!aclip_fits_write_empty_primary (fits, error) ||
      !aclip_fits_write_key_int64 (fits, "ACLIPCAT", ACLIP_CATALOGUE_VERSION,
                                   "Galaxy Viewer catalogue format version", error) ||
      !aclip_fits_write_key_string (fits, "BANDS", "grz", "image band order", error) ||
      !aclip_fits_write_key_double (fits, "PIXSCALE", layout->pixscale, "arcsec/pixel", error))
    return FALSE;
  if (layout->history) {
    g_auto (GStrv) lines = g_strsplit (layout->history, "\n", -1);
    for (int i = 0; lines[i]; i++)
      if (lines[i][0] && !aclip_fits_write_comment (fits, lines[i], error))
        return FALSE;
  }
  if (layout->n_wave == 0)
    return TRUE;

  g_autofree double *grid = NULL;
  const double *wavelength = layout->wavelength;
  if (wavelength == NULL) {
    grid = g_new (double, ACLIP_DESI_N_WAVE);
    aclip_desi_wavelength_grid (grid);
    wavelength = grid;
  }
  gint64 n_wave = layout->n_wave;
  return aclip_fits_append_image_double (fits, "WAVELENGTH", 1, &n_wave, wavelength, error) &&
         aclip_fits_write_key_string (fits, "BUNIT", "Angstrom", "vacuum wavelength", error) &&
         aclip_fits_write_key_string (fits, "AIRORVAC", "vac", NULL, error);
}

static const char *
extra_format (AclipColumnType type)
{
  switch (type) {
    case ACLIP_COLUMN_DOUBLE:
      return "1D";
    case ACLIP_COLUMN_INT32:
      return "1J";
    case ACLIP_COLUMN_INT64:
      return "1K";
    case ACLIP_COLUMN_FLOAT:
    default:
      return "1E";
  }
}

AclipCatalogueWriter *
aclip_catalogue_writer_new (const char *path, const AclipCatalogueLayout *layout,
                            GError **error)
{
  g_return_val_if_fail (path != NULL && layout != NULL, NULL);
  if (!check_layout (path, layout, error))
    return NULL;

  g_autoptr (AclipCatalogueWriter) writer = g_new0 (AclipCatalogueWriter, 1);
  writer->layout = *layout;
  writer->layout.extra = NULL;
  writer->layout.wavelength = NULL;
  writer->layout.history = NULL;
  writer->n_extra = layout->n_extra;
  writer->extra_types = g_new0 (AclipColumnType, MAX (1, layout->n_extra));
  for (int i = 0; i < layout->n_extra; i++)
    writer->extra_types[i] = layout->extra[i].type;
  gsize image_size = (gsize) ACLIP_N_BANDS * layout->image_height * layout->image_width;
  writer->scratch = g_new (float, MAX (image_size, 2 * (gsize) layout->n_wave));

  writer->fits = aclip_fits_create_temporary (path, error);
  if (writer->fits == NULL || !write_primary_and_wavelength (writer->fits, layout, error))
    return NULL;

  AclipFitsColumnSpec specs[N_FIXED_COLUMNS + layout->n_extra];
  g_autofree char *image_format = NULL, *spectrum_format = NULL;
  int n = 0;
  for (int i = 0; i < N_SCALAR_COLUMNS; i++) {
    specs[n] = (AclipFitsColumnSpec) { scalar_columns[i].name, scalar_columns[i].format,
                                       scalar_columns[i].unit, 0, { 0 }, 1.0, 0.0 };
    writer->column_numbers[i] = ++n;
  }
  if (image_size > 0) {
    gboolean quantised = layout->image_quantum > 0.0;
    image_format = g_strdup_printf ("%zu%s", image_size, quantised ? "I" : "E");
    specs[n] = (AclipFitsColumnSpec) { "IMAGE", image_format, "nanomaggy", 3,
                                       { layout->image_width, layout->image_height,
                                         ACLIP_N_BANDS },
                                       quantised ? layout->image_quantum : 1.0, 0.0 };
    writer->column_numbers[COLUMN_IMAGE] = ++n;
  }
  if (layout->n_wave > 0) {
    spectrum_format = g_strdup_printf ("%dE", layout->n_wave);
    specs[n] = (AclipFitsColumnSpec) { "SPECTRUM", spectrum_format, SPECTRUM_UNIT, 0, { 0 },
                                       1.0, 0.0 };
    writer->column_numbers[COLUMN_SPECTRUM] = ++n;
    specs[n] = (AclipFitsColumnSpec) { "SPECTRUM_IVAR", spectrum_format, IVAR_UNIT, 0, { 0 },
                                       1.0, 0.0 };
    writer->column_numbers[COLUMN_SPECTRUM_IVAR] = ++n;
  }
  writer->first_extra_column = n + 1;
  for (int i = 0; i < layout->n_extra; i++) {
    const AclipExtraColumn *extra = &layout->extra[i];
    specs[n++] = (AclipFitsColumnSpec) { extra->name, extra_format (extra->type), extra->unit,
                                         0, { 0 }, 1.0, 0.0 };
  }
  if (!aclip_fits_append_table (writer->fits, "GALAXIES", n, specs, error))
    return NULL;
  /* Reserved now and updated in place by finish: adding a keyword after the rows would make
   * CFITSIO move the whole table. */
  if (layout->image_quantum > 0.0 &&
      !aclip_fits_write_key_int64 (writer->fits, "NCLIPPED", 0,
                                   "image pixels clipped by 16-bit storage", error))
    return NULL;
  for (int i = 0; i < layout->n_extra; i++) {
    if (layout->extra[i].description == NULL)
      continue;
    g_autofree char *key = g_strdup_printf ("TCOMM%d", writer->first_extra_column + i);
    if (!aclip_fits_write_key_string (writer->fits, key, layout->extra[i].description, NULL,
                                      error))
      return NULL;
  }
  return g_steal_pointer (&writer);
}

/* Copies the image into scratch, rounding-safe for int16 storage: NaN → 0, values beyond
 * ±32767 steps clipped and counted. */
static const float *
prepare_image (AclipCatalogueWriter *writer, const float *image, gsize n_pixels)
{
  double quantum = writer->layout.image_quantum;
  if (quantum <= 0.0)
    return image;
  float limit = (float) (QUANTISED_LIMIT * quantum);
  for (gsize i = 0; i < n_pixels; i++) {
    float value = image[i];
    if (!isfinite (value)) {
      value = 0.0f;
      writer->n_clipped++;
    } else if (value > limit || value < -limit) {
      value = value > 0 ? limit : -limit;
      writer->n_clipped++;
    }
    writer->scratch[i] = value;
  }
  return writer->scratch;
}

gboolean
aclip_catalogue_writer_append (AclipCatalogueWriter *writer, const AclipGalaxy *galaxy,
                               const double *extra_values, GError **error)
{
  return aclip_catalogue_writer_append_full (writer, galaxy, extra_values, NULL, error);
}

gboolean
aclip_catalogue_writer_append_full (AclipCatalogueWriter *writer, const AclipGalaxy *galaxy,
                                    const double *extra_values, const gint64 *extra_int64,
                                    GError **error)
{
  g_return_val_if_fail (writer != NULL && !writer->finished && galaxy != NULL, FALSE);
  AclipFits *fits = writer->fits;
  const AclipCatalogueLayout *layout = &writer->layout;
  const int *numbers = writer->column_numbers;
  gint64 row = writer->n_rows;
  const char *path = aclip_fits_path (fits);

  gsize n_pixels = (gsize) ACLIP_N_BANDS * layout->image_height * layout->image_width;
  if ((n_pixels > 0 && galaxy->image == NULL) ||
      (layout->n_wave > 0 && (galaxy->spectrum == NULL || galaxy->spectrum_ivar == NULL)) ||
      (writer->n_extra > 0 && extra_values == NULL))
    return fail_format (error, ACLIP_ERROR_INVALID_ARG, path,
                        _("galaxy %" PRId64 " lacks an image, spectrum or extra "
                          "values the catalogue holds"),
                        galaxy->id);

  float scalars[5] = { galaxy->z, galaxy->logmstar, galaxy->flux[0], galaxy->flux[1],
                       galaxy->flux[2] };
  if (!aclip_fits_write_column_int64 (fits, numbers[COLUMN_ID], row, 0, 1, &galaxy->id, error) ||
      !aclip_fits_write_column_double (fits, numbers[COLUMN_RA], row, 0, 1, &galaxy->ra, error) ||
      !aclip_fits_write_column_double (fits, numbers[COLUMN_DEC], row, 0, 1, &galaxy->dec, error))
    return FALSE;
  for (int i = 0; i < 5; i++)
    if (!aclip_fits_write_column_float (fits, numbers[COLUMN_Z + i], row, 0, 1, &scalars[i],
                                        error))
      return FALSE;

  if (n_pixels > 0) {
    const float *image = prepare_image (writer, galaxy->image, n_pixels);
    if (!aclip_fits_write_column_float (fits, numbers[COLUMN_IMAGE], row, 0, n_pixels, image,
                                        error))
      return FALSE;
  }
  if (layout->n_wave > 0) {
    /* Bad pixels are stored as flux 0 with ivar 0, so readers never meet NaN. */
    float *flux = writer->scratch, *ivar = writer->scratch + layout->n_wave;
    for (int i = 0; i < layout->n_wave; i++) {
      float f = galaxy->spectrum[i], w = galaxy->spectrum_ivar[i];
      gboolean good = isfinite (f) && isfinite (w) && w > 0.0f;
      flux[i] = isfinite (f) ? f : 0.0f;
      ivar[i] = good ? w : 0.0f;
    }
    if (!aclip_fits_write_column_float (fits, numbers[COLUMN_SPECTRUM], row, 0, layout->n_wave,
                                        flux, error) ||
        !aclip_fits_write_column_float (fits, numbers[COLUMN_SPECTRUM_IVAR], row, 0,
                                        layout->n_wave, ivar, error))
      return FALSE;
  }
  for (int i = 0; i < writer->n_extra; i++) {
    int column = writer->first_extra_column + i;
    double value = extra_values[i];
    gboolean written;
    switch (writer->extra_types[i]) {
      case ACLIP_COLUMN_INT32: {
        gint32 integer = isfinite (value) ? (gint32) CLAMP (value, G_MININT32, G_MAXINT32) : 0;
        written = aclip_fits_write_column_int32 (fits, column, row, 0, 1, &integer, error);
        break;
      }
      case ACLIP_COLUMN_INT64: {
        gint64 integer = extra_int64 != NULL ? extra_int64[i]
                         : isfinite (value)  ? (gint64) value
                                             : 0;
        written = aclip_fits_write_column_int64 (fits, column, row, 0, 1, &integer, error);
        break;
      }
      case ACLIP_COLUMN_DOUBLE:
        written = aclip_fits_write_column_double (fits, column, row, 0, 1, &value, error);
        break;
      case ACLIP_COLUMN_FLOAT:
      default: {
        float single = (float) value;
        written = aclip_fits_write_column_float (fits, column, row, 0, 1, &single, error);
        break;
      }
    }
    if (!written)
      return FALSE;
  }
  writer->n_rows++;
  return TRUE;
}

gint64
aclip_catalogue_writer_n_rows (AclipCatalogueWriter *writer)
{
  return writer->n_rows;
}

gint64
aclip_catalogue_writer_n_clipped (AclipCatalogueWriter *writer)
{
  return writer->n_clipped;
}

gboolean
aclip_catalogue_writer_finish (AclipCatalogueWriter *writer, GError **error)
{
  g_return_val_if_fail (writer != NULL && !writer->finished, FALSE);
  if (writer->layout.image_quantum > 0.0 &&
      !aclip_fits_write_key_int64 (writer->fits, "NCLIPPED", writer->n_clipped,
                                   "image pixels clipped by 16-bit storage", error))
    return FALSE;
  if (!aclip_fits_commit (writer->fits, error))
    return FALSE;
  writer->finished = TRUE;
  return TRUE;
}
