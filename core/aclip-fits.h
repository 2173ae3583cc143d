/* aclip-fits.h — FITS access for the rest of libaclip.
 *
 * CFITSIO's `int *status` convention stays inside aclip-fits.c: every function here returns
 * FALSE/NULL with a GError whose message names the file, the HDU when one is current, what we
 * were doing, and CFITSIO's own message stack. Nothing outside aclip-fits.c includes fitsio.h.
 *
 * One AclipFits is one open file with a current HDU; it is not safe to share between threads
 * (open the file once per thread instead — CFITSIO is built reentrant on Debian).
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct _AclipFits AclipFits;

typedef enum
{
  ACLIP_FITS_IMAGE_HDU,
  ACLIP_FITS_ASCII_TABLE,
  ACLIP_FITS_BINARY_TABLE,
} AclipFitsHduType;

/* Element types, independent of CFITSIO's codes. */
typedef enum
{
  ACLIP_FITS_TYPE_OTHER,
  ACLIP_FITS_TYPE_LOGICAL, /* L */
  ACLIP_FITS_TYPE_BYTE,    /* B, BITPIX 8 */
  ACLIP_FITS_TYPE_INT16,   /* I, BITPIX 16 */
  ACLIP_FITS_TYPE_INT32,   /* J, BITPIX 32 */
  ACLIP_FITS_TYPE_INT64,   /* K, BITPIX 64 */
  ACLIP_FITS_TYPE_FLOAT,   /* E, BITPIX -32 */
  ACLIP_FITS_TYPE_DOUBLE,  /* D, BITPIX -64 */
  ACLIP_FITS_TYPE_STRING,  /* A */
} AclipFitsType;

#define ACLIP_FITS_MAX_DIMS 6

typedef struct
{
  int number;          /* 1-based column number */
  AclipFitsType type;  /* stored type (before TSCAL/TZERO) */
  gint64 repeat;       /* elements per row (characters for strings) */
  int n_dims;          /* from TDIMn, or 1 */
  gint64 dims[ACLIP_FITS_MAX_DIMS]; /* FITS order: dims[0] varies fastest */
  gboolean scaled;     /* TSCAL/TZERO other than 1/0 */
} AclipFitsColumn;

/* Opening and closing ------------------------------------------------------------------- */

AclipFits *aclip_fits_open (const char *path, gboolean writable, GError **error);
/* Creates a new file at exactly `path` (an existing file there is overwritten). Callers that
 * must not leave half-written output write to a temporary name and rename (see
 * aclip_fits_create_temporary / aclip_fits_commit). */
AclipFits *aclip_fits_create (const char *path, GError **error);
/* Creates `<final_path>.tmp-XXXXXX` beside final_path; aclip_fits_commit closes and renames it
 * to final_path, aclip_fits_close on an uncommitted temporary file deletes it. */
AclipFits *aclip_fits_create_temporary (const char *final_path, GError **error);
gboolean aclip_fits_commit (AclipFits *fits, GError **error);
void aclip_fits_close (AclipFits *fits);
const char *aclip_fits_path (AclipFits *fits);

/* HDUs ------------------------------------------------------------------------------------ */

int aclip_fits_n_hdus (AclipFits *fits);
/* index is 1-based: 1 is the primary HDU. */
gboolean aclip_fits_move_to_index (AclipFits *fits, int index, AclipFitsHduType *type,
                                   GError **error);
gboolean aclip_fits_move_to_name (AclipFits *fits, const char *extname, AclipFitsHduType *type,
                                  GError **error);
gboolean aclip_fits_has_hdu (AclipFits *fits, const char *extname);
/* The EXTNAME of the current HDU ("PRIMARY" for HDU 1 without one), newly allocated. */
char *aclip_fits_current_name (AclipFits *fits);

/* Header keywords (current HDU) --------------------------------------------------------- */

gboolean aclip_fits_has_key (AclipFits *fits, const char *key);
char *aclip_fits_read_key_string (AclipFits *fits, const char *key, GError **error);
gboolean aclip_fits_read_key_double (AclipFits *fits, const char *key, double *value,
                                     GError **error);
gboolean aclip_fits_read_key_int64 (AclipFits *fits, const char *key, gint64 *value,
                                    GError **error);
gboolean aclip_fits_write_key_string (AclipFits *fits, const char *key, const char *value,
                                      const char *comment, GError **error);
gboolean aclip_fits_write_key_double (AclipFits *fits, const char *key, double value,
                                      const char *comment, GError **error);
gboolean aclip_fits_write_key_int64 (AclipFits *fits, const char *key, gint64 value,
                                     const char *comment, GError **error);
gboolean aclip_fits_write_comment (AclipFits *fits, const char *text, GError **error);

/* Images (current HDU) -------------------------------------------------------------------- */

/* dims in FITS order (dims[0] = NAXIS1, fastest varying). */
gboolean aclip_fits_image_shape (AclipFits *fits, int *n_dims, gint64 dims[ACLIP_FITS_MAX_DIMS],
                                 AclipFitsType *type, GError **error);
/* Reads n_elements from the start of the image, converting to the buffer's type; BSCALE/BZERO
 * applied; undefined integer pixels become NaN. */
gboolean aclip_fits_read_image_float (AclipFits *fits, gint64 n_elements, float *values,
                                      GError **error);
gboolean aclip_fits_read_image_double (AclipFits *fits, gint64 n_elements, double *values,
                                       GError **error);
/* Appends a new image HDU with the given shape and writes all of it; extname may be NULL. */
gboolean aclip_fits_append_image_double (AclipFits *fits, const char *extname, int n_dims,
                                         const gint64 *dims, const double *values,
                                         GError **error);
gboolean aclip_fits_append_image_float (AclipFits *fits, const char *extname, int n_dims,
                                        const gint64 *dims, const float *values, GError **error);
/* Writes an empty primary HDU (only meaningful as the first HDU of a new file). */
gboolean aclip_fits_write_empty_primary (AclipFits *fits, GError **error);

/* Binary tables (current HDU) ------------------------------------------------------------- */

gboolean aclip_fits_table_n_rows (AclipFits *fits, gint64 *n_rows, GError **error);
int aclip_fits_table_n_columns (AclipFits *fits);
/* Column lookup by exact name (case-insensitive, as FITS); FALSE + ACLIP_ERROR_MISSING when
 * absent. */
gboolean aclip_fits_column (AclipFits *fits, const char *name, AclipFitsColumn *column,
                            GError **error);
gboolean aclip_fits_has_column (AclipFits *fits, const char *name);
/* Name of column `number` (1-based), newly allocated. */
char *aclip_fits_column_name (AclipFits *fits, int number);

/* Read n_elements starting at (row, first_element), both 0-based, converting to the buffer's
 * type; TSCAL/TZERO applied; null integers become NaN for float/double buffers. Elements run
 * on across rows when n_elements exceeds a row's repeat (a whole column in one call). */
gboolean aclip_fits_read_column_float (AclipFits *fits, int column, gint64 row,
                                       gint64 first_element, gint64 n_elements, float *values,
                                       GError **error);
gboolean aclip_fits_read_column_double (AclipFits *fits, int column, gint64 row,
                                        gint64 first_element, gint64 n_elements,
                                        double *values, GError **error);
gboolean aclip_fits_read_column_int64 (AclipFits *fits, int column, gint64 row,
                                       gint64 first_element, gint64 n_elements, gint64 *values,
                                       GError **error);
gboolean aclip_fits_read_column_int32 (AclipFits *fits, int column, gint64 row,
                                       gint64 first_element, gint64 n_elements, gint32 *values,
                                       GError **error);
/* One string cell, trailing blanks removed, newly allocated. */
char *aclip_fits_read_column_string (AclipFits *fits, int column, gint64 row, GError **error);

/* Raw rows, for callers that read several scalar columns of many rows: reading a column
 * touches every row once, so N columns cost N passes over a file whose rows are wide, while
 * the bytes of one row's scalars are read in one call. The caller decodes the big-endian
 * values itself, with what aclip_fits_column_storage says about each column. */
typedef struct
{
  gint64 offset;      /* byte offset of the column's first element within a row */
  gint64 n_bytes;     /* bytes the column occupies in each row */
  gboolean variable;  /* a variable-length array: the row holds only a descriptor */
  double scale, zero; /* TSCALn, TZEROn; 1 and 0 when absent */
  gboolean has_null;  /* TNULLn is given (integer columns) */
  gint64 null_value;  /* TNULLn */
} AclipFitsColumnStorage;

/* Bytes per row of the current binary table (NAXIS1). */
gboolean aclip_fits_table_row_bytes (AclipFits *fits, gint64 *row_bytes, GError **error);
gboolean aclip_fits_column_storage (AclipFits *fits, int column, AclipFitsColumnStorage *storage,
                                    GError **error);
/* n_bytes raw bytes of the current binary table starting at byte first_byte of `row` (both
 * 0-based); the bytes may run on into the following rows. */
gboolean aclip_fits_read_table_bytes (AclipFits *fits, gint64 row, gint64 first_byte,
                                      gint64 n_bytes, guint8 *bytes, GError **error);

/* A column of a table to create: TFORM such as "1K", "7781E", "3I"; dims (FITS order) for
 * TDIM, n_dims 0 for none; unit may be NULL; scale/zero for TSCAL/TZERO (1, 0 for none). */
typedef struct
{
  const char *name;
  const char *format;
  const char *unit;
  int n_dims;
  gint64 dims[ACLIP_FITS_MAX_DIMS];
  double scale;
  double zero;
} AclipFitsColumnSpec;

gboolean aclip_fits_append_table (AclipFits *fits, const char *extname, int n_columns,
                                  const AclipFitsColumnSpec *columns, GError **error);
/* Writes values at (row, first_element), 0-based, growing the table as needed; physical values
 * are converted by TSCAL/TZERO and rounded. A value outside the stored type's range is an
 * error: callers that quantise clip first. NaN in a float/double column stays NaN. */
gboolean aclip_fits_write_column_float (AclipFits *fits, int column, gint64 row,
                                        gint64 first_element, gint64 n_elements,
                                        const float *values, GError **error);
gboolean aclip_fits_write_column_double (AclipFits *fits, int column, gint64 row,
                                         gint64 first_element, gint64 n_elements,
                                         const double *values, GError **error);
gboolean aclip_fits_write_column_int64 (AclipFits *fits, int column, gint64 row,
                                        gint64 first_element, gint64 n_elements,
                                        const gint64 *values, GError **error);
gboolean aclip_fits_write_column_int32 (AclipFits *fits, int column, gint64 row,
                                        gint64 first_element, gint64 n_elements,
                                        const gint32 *values, GError **error);
gboolean aclip_fits_write_column_string (AclipFits *fits, int column, gint64 row,
                                         const char *value, GError **error);

/* Flushes CFITSIO's buffers so a reader in another process sees complete rows. */
gboolean aclip_fits_flush (AclipFits *fits, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipFits, aclip_fits_close)

G_END_DECLS
