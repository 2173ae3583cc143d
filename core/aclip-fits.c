/* aclip-fits.c — the one file of libaclip that speaks CFITSIO.
 *
 * CFITSIO reports failure through an `int *status` and a global message stack; here every
 * call's status becomes a GError naming the file, the HDU, what we were doing and CFITSIO's
 * messages. Files are opened with the *diskfile variants so that path names are taken
 * literally (no CFITSIO extended-filename syntax: a '[' in a folder name is just a character).
 */
#include "aclip-fits.h"

#include "aclip-error.h"

#include <errno.h>
#include <fitsio.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

struct _AclipFits
{
  fitsfile *file;
  char *path;           /* the name the user knows: the final path for temporary files */
  char *temporary_path; /* non-NULL while writing to a temporary file not yet committed */
};

/* What CFITSIO reports as a column's TNULL when the header gives none (NULL_UNDEFINED in its
 * private header fitsio2.h). */
#define CFITSIO_NO_TNULL 1234554321

/* Errors ------------------------------------------------------------------------------- */

static AclipError
error_code_for_status (int status)
{
  switch (status) {
    case FILE_NOT_OPENED:
    case FILE_NOT_CREATED:
    case READ_ERROR:
    case WRITE_ERROR:
    case END_OF_FILE:
      return ACLIP_ERROR_IO;
    case BAD_HDU_NUM:
    case NOT_IMAGE:
    case NOT_TABLE:
    case NOT_BTABLE:
    case UNKNOWN_EXT:
    case UNKNOWN_REC:
    case NO_SIMPLE:
    case BAD_NAXIS:
    case NO_END:
      return ACLIP_ERROR_FORMAT;
    case KEY_NO_EXIST:
    case COL_NOT_FOUND:
      return ACLIP_ERROR_MISSING;
    case BAD_ELEM_NUM:
    case BAD_ROW_NUM:
    case BAD_DIMEN:
    case BAD_TFORM:
    case BAD_TDIM:
      return ACLIP_ERROR_SHAPE;
    case NUM_OVERFLOW:
    case BAD_C2D:
    case BAD_C2I:
      return ACLIP_ERROR_VALUE;
    default:
      return ACLIP_ERROR_IO;
  }
}

static char *
describe_location (AclipFits *fits)
{
  if (fits->file == NULL)
    return g_strdup (fits->path);
  int index = 0;
  fits_get_hdu_num (fits->file, &index);
  g_autofree char *name = aclip_fits_current_name (fits);
  if (index <= 1)
    return g_strdup (fits->path);
  return g_strdup_printf ("%s[%s]", fits->path, name);
}

/* Sets `error` from a CFITSIO status and the message stack, which it clears. `what` says what
 * we were doing, in words for the user. */
static gboolean
set_status_error (GError **error, int status, const char *path, const char *location,
                  const char *what)
{
  char status_text[FLEN_STATUS] = "";
  char stack_message[FLEN_ERRMSG];
  fits_get_errstatus (status, status_text);

  g_autoptr (GString) details = g_string_new (NULL);
  while (fits_read_errmsg (stack_message)) {
    g_strstrip (stack_message);
    if (stack_message[0] == '\0' || strstr (stack_message, path) != NULL)
      continue;
    g_string_append_printf (details, "%s%s", details->len ? "; " : "", stack_message);
    if (details->len > 400)
      break;
  }
  fits_clear_errmsg ();

  if (details->len)
    g_set_error (error, ACLIP_ERROR, error_code_for_status (status), "%s: %s: %s (%s)",
                 location ? location : path, what, status_text, details->str);
  else
    g_set_error (error, ACLIP_ERROR, error_code_for_status (status), "%s: %s: %s",
                 location ? location : path, what, status_text);
  return FALSE;
}

static gboolean
fail (AclipFits *fits, int status, GError **error, const char *what)
{
  g_autofree char *location = describe_location (fits);
  return set_status_error (error, status, fits->path, location, what);
}

/* Opening and closing ---------------------------------------------------------------------- */

/* A file cut short is caught on open, whichever HDU lost its end: walk the headers and compare
 * where the last HDU's data ends with the file's size. (CFITSIO itself only notices when the
 * missing bytes are read.) */
static gboolean
check_complete (AclipFits *fits, gint64 file_size, GError **error)
{
  int status = 0, n_hdus = 0;
  fits_get_num_hdus (fits->file, &n_hdus, &status);
  if (status == 0 && n_hdus > 0)
    fits_movabs_hdu (fits->file, n_hdus, NULL, &status);
  LONGLONG header_start = 0, data_start = 0, data_end = 0;
  if (status == 0)
    fits_get_hduaddrll (fits->file, &header_start, &data_start, &data_end, &status);
  if (status) {
    set_status_error (error, status, fits->path, NULL,
                      _("the file is damaged or truncated: its HDUs cannot be read"));
    return FALSE;
  }
  /* data_end is rounded up to whole 2880-byte blocks; a writer may omit the last block's
   * padding, so only missing data (not padding) counts. */
  if (data_end - 2880 >= file_size) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO,
                 _("%s: the file is truncated: it has %" PRId64
                   " bytes but its HDU %d needs %lld"),
                 fits->path, file_size, n_hdus, (long long) data_end);
    return FALSE;
  }
  status = 0;
  fits_movabs_hdu (fits->file, 1, NULL, &status);
  fits_clear_errmsg ();
  return TRUE;
}

AclipFits *
aclip_fits_open (const char *path, gboolean writable, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: no such file"), path);
    return NULL;
  }
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: is a folder, not a FITS file"),
                 path);
    return NULL;
  }
  GStatBuf info;
  if (g_stat (path, &info) != 0) {
    int saved_errno = errno;
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: cannot be read: %s"), path,
                 g_strerror (saved_errno));
    return NULL;
  }
  if (info.st_size == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: the file is empty"), path);
    return NULL;
  }

  int status = 0;
  fitsfile *file = NULL;
  fits_open_diskfile (&file, path, writable ? READWRITE : READONLY, &status);
  if (status) {
    set_status_error (error, status, path, NULL, _("cannot be opened as a FITS file"));
    if (file) {
      int ignored = 0;
      fits_close_file (file, &ignored);
    }
    return NULL;
  }
  AclipFits *fits = g_new0 (AclipFits, 1);
  fits->file = file;
  fits->path = g_strdup (path);
  if (!writable && !check_complete (fits, (gint64) info.st_size, error)) {
    aclip_fits_close (fits);
    return NULL;
  }
  return fits;
}

static AclipFits *
create_at (const char *create_path, const char *user_path, GError **error)
{
  int status = 0;
  fitsfile *file = NULL;
  /* CFITSIO refuses to overwrite; the caller decided that overwriting is wanted. */
  if (g_file_test (create_path, G_FILE_TEST_EXISTS) && g_unlink (create_path) != 0) {
    int saved_errno = errno;
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: cannot replace the file: %s"),
                 user_path, g_strerror (saved_errno));
    return NULL;
  }
  fits_create_diskfile (&file, create_path, &status);
  if (status) {
    set_status_error (error, status, user_path, NULL, _("cannot be created"));
    return NULL;
  }
  AclipFits *fits = g_new0 (AclipFits, 1);
  fits->file = file;
  fits->path = g_strdup (user_path);
  return fits;
}

AclipFits *
aclip_fits_create (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  return create_at (path, path, error);
}

AclipFits *
aclip_fits_create_temporary (const char *final_path, GError **error)
{
  g_return_val_if_fail (final_path != NULL, NULL);

  g_autofree char *template = g_strdup_printf ("%s.tmp-XXXXXX", final_path);
  int descriptor = g_mkstemp (template);
  if (descriptor < 0) {
    int saved_errno = errno;
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: cannot create a file there: %s"),
                 final_path, g_strerror (saved_errno));
    return NULL;
  }
  close (descriptor);
  /* The name is now reserved; CFITSIO creates its own file there. */
  AclipFits *fits = create_at (template, final_path, error);
  if (fits == NULL) {
    g_unlink (template);
    return NULL;
  }
  fits->temporary_path = g_steal_pointer (&template);
  return fits;
}

gboolean
aclip_fits_commit (AclipFits *fits, GError **error)
{
  g_return_val_if_fail (fits != NULL && fits->file != NULL, FALSE);

  int status = 0;
  fits_close_file (fits->file, &status);
  fits->file = NULL;
  if (status) {
    set_status_error (error, status, fits->path, NULL, _("writing the file failed"));
    if (fits->temporary_path)
      g_unlink (fits->temporary_path);
    g_clear_pointer (&fits->temporary_path, g_free);
    return FALSE;
  }
  if (fits->temporary_path) {
    if (g_rename (fits->temporary_path, fits->path) != 0) {
      int saved_errno = errno;
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: cannot rename %s to it: %s"),
                   fits->path, fits->temporary_path, g_strerror (saved_errno));
      g_unlink (fits->temporary_path);
      g_clear_pointer (&fits->temporary_path, g_free);
      return FALSE;
    }
    g_clear_pointer (&fits->temporary_path, g_free);
  }
  return TRUE;
}

void
aclip_fits_close (AclipFits *fits)
{
  if (fits == NULL)
    return;
  if (fits->file) {
    int status = 0;
    fits_close_file (fits->file, &status);
    fits_clear_errmsg ();
  }
  if (fits->temporary_path)
    g_unlink (fits->temporary_path);
  g_free (fits->temporary_path);
  g_free (fits->path);
  g_free (fits);
}

const char *
aclip_fits_path (AclipFits *fits)
{
  g_return_val_if_fail (fits != NULL, NULL);
  return fits->path;
}

gboolean
aclip_fits_flush (AclipFits *fits, GError **error)
{
  int status = 0;
  fits_flush_file (fits->file, &status);
  return status ? fail (fits, status, error, _("flushing the file failed")) : TRUE;
}

/* HDUs ------------------------------------------------------------------------------------- */

int
aclip_fits_n_hdus (AclipFits *fits)
{
  int status = 0, n = 0;
  fits_get_num_hdus (fits->file, &n, &status);
  fits_clear_errmsg ();
  return status ? 0 : n;
}

static AclipFitsHduType
hdu_type_from_cfitsio (int type)
{
  switch (type) {
    case ASCII_TBL:
      return ACLIP_FITS_ASCII_TABLE;
    case BINARY_TBL:
      return ACLIP_FITS_BINARY_TABLE;
    default:
      return ACLIP_FITS_IMAGE_HDU;
  }
}

gboolean
aclip_fits_move_to_index (AclipFits *fits, int index, AclipFitsHduType *type, GError **error)
{
  int status = 0, hdu_type = 0;
  fits_movabs_hdu (fits->file, index, &hdu_type, &status);
  if (status) {
    g_autofree char *what = g_strdup_printf (_("cannot read HDU %d"), index);
    return set_status_error (error, status, fits->path, NULL, what);
  }
  if (type)
    *type = hdu_type_from_cfitsio (hdu_type);
  return TRUE;
}

gboolean
aclip_fits_move_to_name (AclipFits *fits, const char *extname, AclipFitsHduType *type,
                         GError **error)
{
  int status = 0;
  fits_movnam_hdu (fits->file, ANY_HDU, (char *) extname, 0, &status);
  if (status == BAD_HDU_NUM) {
    fits_clear_errmsg ();
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("%s: has no HDU named %s"),
                 fits->path, extname);
    return FALSE;
  }
  if (status) {
    g_autofree char *what = g_strdup_printf (_("cannot read HDU %s"), extname);
    return set_status_error (error, status, fits->path, NULL, what);
  }
  if (type) {
    int hdu_type = 0;
    fits_get_hdu_type (fits->file, &hdu_type, &status);
    *type = hdu_type_from_cfitsio (hdu_type);
  }
  return TRUE;
}

gboolean
aclip_fits_has_hdu (AclipFits *fits, const char *extname)
{
  int status = 0, current = 1;
  fits_get_hdu_num (fits->file, &current);
  fits_movnam_hdu (fits->file, ANY_HDU, (char *) extname, 0, &status);
  gboolean found = status == 0;
  status = 0;
  fits_movabs_hdu (fits->file, current, NULL, &status);
  fits_clear_errmsg ();
  return found;
}

char *
aclip_fits_current_name (AclipFits *fits)
{
  char value[FLEN_VALUE] = "";
  int status = 0, index = 1;
  fits_get_hdu_num (fits->file, &index);
  fits_read_key (fits->file, TSTRING, "EXTNAME", value, NULL, &status);
  fits_clear_errmsg ();
  if (status == 0)
    return g_strstrip (g_strdup (value));
  return index == 1 ? g_strdup ("PRIMARY") : g_strdup_printf ("HDU %d", index);
}

/* Keywords --------------------------------------------------------------------------------- */

gboolean
aclip_fits_has_key (AclipFits *fits, const char *key)
{
  char card[FLEN_CARD];
  int status = 0;
  fits_read_card (fits->file, (char *) key, card, &status);
  fits_clear_errmsg ();
  return status == 0;
}

static gboolean
fail_key (AclipFits *fits, int status, const char *key, GError **error)
{
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg ();
    g_autofree char *location = describe_location (fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("%s: keyword %s is missing"),
                 location, key);
    return FALSE;
  }
  g_autofree char *what = g_strdup_printf (_("cannot read keyword %s"), key);
  return fail (fits, status, error, what);
}

char *
aclip_fits_read_key_string (AclipFits *fits, const char *key, GError **error)
{
  int status = 0;
  char *long_value = NULL;
  fits_read_key_longstr (fits->file, (char *) key, &long_value, NULL, &status);
  if (status) {
    if (long_value)
      fits_free_memory (long_value, &status);
    fail_key (fits, status, key, error);
    return NULL;
  }
  char *value = g_strstrip (g_strdup (long_value));
  int ignored = 0;
  fits_free_memory (long_value, &ignored);
  return value;
}

gboolean
aclip_fits_read_key_double (AclipFits *fits, const char *key, double *value, GError **error)
{
  int status = 0;
  fits_read_key (fits->file, TDOUBLE, (char *) key, value, NULL, &status);
  return status ? fail_key (fits, status, key, error) : TRUE;
}

gboolean
aclip_fits_read_key_int64 (AclipFits *fits, const char *key, gint64 *value, GError **error)
{
  int status = 0;
  LONGLONG read_value = 0;
  fits_read_key (fits->file, TLONGLONG, (char *) key, &read_value, NULL, &status);
  if (status)
    return fail_key (fits, status, key, error);
  *value = read_value;
  return TRUE;
}

gboolean
aclip_fits_write_key_string (AclipFits *fits, const char *key, const char *value,
                             const char *comment, GError **error)
{
  int status = 0;
  if (strlen (value) > 68)
    fits_update_key_longstr (fits->file, (char *) key, (char *) value, (char *) comment,
                             &status);
  else
    fits_update_key (fits->file, TSTRING, (char *) key, (char *) value, (char *) comment,
                     &status);
  g_autofree char *what = g_strdup_printf (_("cannot write keyword %s"), key);
  return status ? fail (fits, status, error, what) : TRUE;
}

gboolean
aclip_fits_write_key_double (AclipFits *fits, const char *key, double value,
                             const char *comment, GError **error)
{
  int status = 0;
  fits_update_key (fits->file, TDOUBLE, (char *) key, &value, (char *) comment, &status);
  g_autofree char *what = g_strdup_printf (_("cannot write keyword %s"), key);
  return status ? fail (fits, status, error, what) : TRUE;
}

gboolean
aclip_fits_write_key_int64 (AclipFits *fits, const char *key, gint64 value,
                            const char *comment, GError **error)
{
  int status = 0;
  LONGLONG written = value;
  fits_update_key (fits->file, TLONGLONG, (char *) key, &written, (char *) comment, &status);
  g_autofree char *what = g_strdup_printf (_("cannot write keyword %s"), key);
  return status ? fail (fits, status, error, what) : TRUE;
}

gboolean
aclip_fits_write_comment (AclipFits *fits, const char *text, GError **error)
{
  int status = 0;
  fits_write_comment (fits->file, text, &status);
  return status ? fail (fits, status, error, _("cannot write a comment")) : TRUE;
}

/* Types ------------------------------------------------------------------------------------ */

static AclipFitsType
type_from_bitpix (int bitpix)
{
  switch (bitpix) {
    case BYTE_IMG:
      return ACLIP_FITS_TYPE_BYTE;
    case SHORT_IMG:
      return ACLIP_FITS_TYPE_INT16;
    case LONG_IMG:
      return ACLIP_FITS_TYPE_INT32;
    case LONGLONG_IMG:
      return ACLIP_FITS_TYPE_INT64;
    case FLOAT_IMG:
      return ACLIP_FITS_TYPE_FLOAT;
    case DOUBLE_IMG:
      return ACLIP_FITS_TYPE_DOUBLE;
    default:
      return ACLIP_FITS_TYPE_OTHER;
  }
}

static AclipFitsType
type_from_typecode (int typecode)
{
  switch (typecode < 0 ? -typecode : typecode) {
    case TLOGICAL:
      return ACLIP_FITS_TYPE_LOGICAL;
    case TBYTE:
    case TSBYTE:
      return ACLIP_FITS_TYPE_BYTE;
    case TSHORT:
    case TUSHORT:
      return ACLIP_FITS_TYPE_INT16;
    case TINT:
    case TUINT:
    case TLONG:
    case TULONG:
      return ACLIP_FITS_TYPE_INT32;
    case TLONGLONG:
    case TULONGLONG:
      return ACLIP_FITS_TYPE_INT64;
    case TFLOAT:
      return ACLIP_FITS_TYPE_FLOAT;
    case TDOUBLE:
      return ACLIP_FITS_TYPE_DOUBLE;
    case TSTRING:
      return ACLIP_FITS_TYPE_STRING;
    default:
      return ACLIP_FITS_TYPE_OTHER;
  }
}

/* Images ----------------------------------------------------------------------------------- */

gboolean
aclip_fits_image_shape (AclipFits *fits, int *n_dims, gint64 dims[ACLIP_FITS_MAX_DIMS],
                        AclipFitsType *type, GError **error)
{
  int status = 0, bitpix = 0, naxis = 0;
  LONGLONG naxes[ACLIP_FITS_MAX_DIMS] = { 0 };
  fits_get_img_paramll (fits->file, ACLIP_FITS_MAX_DIMS, &bitpix, &naxis, naxes, &status);
  if (status)
    return fail (fits, status, error, _("cannot read the image dimensions"));
  if (naxis > ACLIP_FITS_MAX_DIMS) {
    g_autofree char *location = describe_location (fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE, _("%s: the image has %d axes (at most %d)"),
                 location, naxis, ACLIP_FITS_MAX_DIMS);
    return FALSE;
  }
  *n_dims = naxis;
  for (int i = 0; i < ACLIP_FITS_MAX_DIMS; i++)
    dims[i] = i < naxis ? naxes[i] : 0;
  if (type) {
    int equivalent = bitpix;
    fits_get_img_equivtype (fits->file, &equivalent, &status);
    *type = type_from_bitpix (equivalent);
  }
  return TRUE;
}

static gboolean
read_image (AclipFits *fits, int datatype, gint64 n_elements, void *values, void *null_value,
            GError **error)
{
  int status = 0, any_null = 0;
  fits_read_img (fits->file, datatype, 1, n_elements, null_value, values, &any_null, &status);
  return status ? fail (fits, status, error, _("cannot read the image")) : TRUE;
}

gboolean
aclip_fits_read_image_float (AclipFits *fits, gint64 n_elements, float *values, GError **error)
{
  float null_value = NAN;
  return read_image (fits, TFLOAT, n_elements, values, &null_value, error);
}

gboolean
aclip_fits_read_image_double (AclipFits *fits, gint64 n_elements, double *values,
                              GError **error)
{
  double null_value = NAN;
  return read_image (fits, TDOUBLE, n_elements, values, &null_value, error);
}

static gboolean
append_image (AclipFits *fits, int bitpix, int datatype, const char *extname, int n_dims,
              const gint64 *dims, const void *values, GError **error)
{
  int status = 0;
  LONGLONG naxes[ACLIP_FITS_MAX_DIMS];
  LONGLONG n_elements = 1;
  g_return_val_if_fail (n_dims >= 0 && n_dims <= ACLIP_FITS_MAX_DIMS, FALSE);
  for (int i = 0; i < n_dims; i++) {
    naxes[i] = dims[i];
    n_elements *= dims[i];
  }
  fits_create_imgll (fits->file, bitpix, n_dims, naxes, &status);
  if (extname)
    fits_update_key (fits->file, TSTRING, "EXTNAME", (char *) extname, NULL, &status);
  if (n_dims > 0 && n_elements > 0)
    fits_write_img (fits->file, datatype, 1, n_elements, (void *) values, &status);
  return status ? fail (fits, status, error, _("cannot write an image")) : TRUE;
}

gboolean
aclip_fits_append_image_double (AclipFits *fits, const char *extname, int n_dims,
                                const gint64 *dims, const double *values, GError **error)
{
  return append_image (fits, DOUBLE_IMG, TDOUBLE, extname, n_dims, dims, values, error);
}

gboolean
aclip_fits_append_image_float (AclipFits *fits, const char *extname, int n_dims,
                               const gint64 *dims, const float *values, GError **error)
{
  return append_image (fits, FLOAT_IMG, TFLOAT, extname, n_dims, dims, values, error);
}

gboolean
aclip_fits_write_empty_primary (AclipFits *fits, GError **error)
{
  return append_image (fits, BYTE_IMG, TBYTE, NULL, 0, NULL, NULL, error);
}

/* Tables ----------------------------------------------------------------------------------- */

gboolean
aclip_fits_table_n_rows (AclipFits *fits, gint64 *n_rows, GError **error)
{
  int status = 0;
  LONGLONG rows = 0;
  fits_get_num_rowsll (fits->file, &rows, &status);
  if (status)
    return fail (fits, status, error, _("cannot read the number of rows"));
  *n_rows = rows;
  return TRUE;
}

int
aclip_fits_table_n_columns (AclipFits *fits)
{
  int status = 0, n = 0;
  fits_get_num_cols (fits->file, &n, &status);
  fits_clear_errmsg ();
  return status ? 0 : n;
}

gboolean
aclip_fits_has_column (AclipFits *fits, const char *name)
{
  int status = 0, number = 0;
  fits_get_colnum (fits->file, CASEINSEN, (char *) name, &number, &status);
  fits_clear_errmsg ();
  return status == 0;
}

gboolean
aclip_fits_column (AclipFits *fits, const char *name, AclipFitsColumn *column, GError **error)
{
  int status = 0, number = 0;
  fits_get_colnum (fits->file, CASEINSEN, (char *) name, &number, &status);
  if (status == COL_NOT_FOUND || status == COL_NOT_UNIQUE) {
    fits_clear_errmsg ();
    g_autofree char *location = describe_location (fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("%s: column %s is missing"),
                 location, name);
    return FALSE;
  }
  if (status) {
    g_autofree char *what = g_strdup_printf (_("cannot find column %s"), name);
    return fail (fits, status, error, what);
  }

  int typecode = 0, equivalent = 0;
  LONGLONG repeat = 0, width = 0;
  fits_get_coltypell (fits->file, number, &typecode, &repeat, &width, &status);
  fits_get_eqcoltypell (fits->file, number, &equivalent, NULL, NULL, &status);
  int n_dims = 0;
  LONGLONG dims[ACLIP_FITS_MAX_DIMS] = { 0 };
  fits_read_tdimll (fits->file, number, ACLIP_FITS_MAX_DIMS, &n_dims, dims, &status);
  if (status) {
    g_autofree char *what = g_strdup_printf (_("cannot read the format of column %s"), name);
    return fail (fits, status, error, what);
  }

  memset (column, 0, sizeof *column);
  column->number = number;
  column->type = type_from_typecode (typecode);
  column->repeat = repeat;
  column->n_dims = MIN (n_dims, ACLIP_FITS_MAX_DIMS);
  for (int i = 0; i < column->n_dims; i++)
    column->dims[i] = dims[i];
  /* An equivalent type other than the stored one means TSCAL/TZERO are in use. */
  column->scaled = type_from_typecode (equivalent) != column->type;
  if (column->type != ACLIP_FITS_TYPE_STRING && !column->scaled) {
    char key[FLEN_KEYWORD];
    double scale = 1.0;
    g_snprintf (key, sizeof key, "TSCAL%d", number);
    fits_read_key (fits->file, TDOUBLE, key, &scale, NULL, &status);
    column->scaled = status == 0 && scale != 1.0;
    status = 0;
    fits_clear_errmsg ();
  }
  return TRUE;
}

char *
aclip_fits_column_name (AclipFits *fits, int number)
{
  char key[FLEN_KEYWORD], value[FLEN_VALUE] = "";
  int status = 0;
  g_snprintf (key, sizeof key, "TTYPE%d", number);
  fits_read_key (fits->file, TSTRING, key, value, NULL, &status);
  fits_clear_errmsg ();
  return status ? NULL : g_strstrip (g_strdup (value));
}

static gboolean
read_column (AclipFits *fits, int datatype, int column, gint64 row, gint64 first_element,
             gint64 n_elements, void *null_value, void *values, GError **error)
{
  int status = 0, any_null = 0;
  fits_read_col (fits->file, datatype, column, row + 1, first_element + 1, n_elements,
                 null_value, values, &any_null, &status);
  if (status) {
    g_autofree char *name = aclip_fits_column_name (fits, column);
    g_autofree char *what = g_strdup_printf (_("cannot read column %s at row %" PRId64),
                                             name ? name : "?", row + 1);
    return fail (fits, status, error, what);
  }
  return TRUE;
}

gboolean
aclip_fits_read_column_float (AclipFits *fits, int column, gint64 row, gint64 first_element,
                              gint64 n_elements, float *values, GError **error)
{
  float null_value = NAN;
  return read_column (fits, TFLOAT, column, row, first_element, n_elements, &null_value, values,
                      error);
}

gboolean
aclip_fits_read_column_double (AclipFits *fits, int column, gint64 row, gint64 first_element,
                               gint64 n_elements, double *values, GError **error)
{
  double null_value = NAN;
  return read_column (fits, TDOUBLE, column, row, first_element, n_elements, &null_value,
                      values, error);
}

gboolean
aclip_fits_read_column_int64 (AclipFits *fits, int column, gint64 row, gint64 first_element,
                              gint64 n_elements, gint64 *values, GError **error)
{
  G_STATIC_ASSERT (sizeof (LONGLONG) == sizeof (gint64));
  return read_column (fits, TLONGLONG, column, row, first_element, n_elements, NULL, values,
                      error);
}

gboolean
aclip_fits_read_column_int32 (AclipFits *fits, int column, gint64 row, gint64 first_element,
                              gint64 n_elements, gint32 *values, GError **error)
{
  G_STATIC_ASSERT (sizeof (int) == sizeof (gint32));
  return read_column (fits, TINT, column, row, first_element, n_elements, NULL, values, error);
}

char *
aclip_fits_read_column_string (AclipFits *fits, int column, gint64 row, GError **error)
{
  int status = 0, typecode = 0;
  LONGLONG repeat = 0, width = 0;
  fits_get_coltypell (fits->file, column, &typecode, &repeat, &width, &status);
  if (status) {
    fail (fits, status, error, _("cannot read a string column's format"));
    return NULL;
  }
  g_autofree char *buffer = g_malloc0 (MAX (repeat, width) + 1);
  char *cells[1] = { buffer };
  if (!read_column (fits, TSTRING, column, row, 0, 1, "", cells, error))
    return NULL;
  return g_strstrip (g_steal_pointer (&buffer));
}

gboolean
aclip_fits_table_row_bytes (AclipFits *fits, gint64 *row_bytes, GError **error)
{
  int status = 0;
  LONGLONG naxis1 = 0;
  fits_read_key (fits->file, TLONGLONG, "NAXIS1", &naxis1, NULL, &status);
  if (status)
    return fail (fits, status, error, _("cannot read the width of the table's rows"));
  *row_bytes = naxis1;
  return TRUE;
}

gboolean
aclip_fits_column_storage (AclipFits *fits, int column, AclipFitsColumnStorage *storage,
                           GError **error)
{
  int status = 0, hdu_type = 0, index = 1, n_columns = 0;
  /* CFITSIO keeps the parsed column table (tableptr) of the HDU it last moved to; moving to
   * our own current HDU makes sure the table we read is this HDU's. */
  fits_get_hdu_num (fits->file, &index);
  fits_movabs_hdu (fits->file, index, &hdu_type, &status);
  fits_get_num_cols (fits->file, &n_columns, &status);
  if (status)
    return fail (fits, status, error, _("cannot read the table's columns"));
  if (hdu_type != BINARY_TBL || column < 1 || column > n_columns) {
    g_autofree char *location = describe_location (fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("%s: there is no binary table column %d"), location, column);
    return FALSE;
  }

  /* The byte offsets of a binary table's columns follow from the TFORMs of those before it;
   * CFITSIO has worked them out (tbcol) when it read the header, and reads with them. A column
   * runs up to the next one, the last up to the end of the row. */
  FITSfile *file = fits->file->Fptr;
  const tcolumn *columns = file->tableptr;
  LONGLONG end = column < n_columns ? columns[column].tbcol : file->rowlength;
  const tcolumn *info = &columns[column - 1];

  LONGLONG null_value = 0;
  double scale = 1.0, zero = 0.0;
  fits_get_bcolparmsll (fits->file, column, NULL, NULL, NULL, NULL, &scale, &zero, &null_value,
                        NULL, &status);
  if (status) {
    g_autofree char *what = g_strdup_printf (_("cannot read the format of column %d"), column);
    return fail (fits, status, error, what);
  }
  memset (storage, 0, sizeof *storage);
  storage->offset = info->tbcol;
  storage->n_bytes = end - info->tbcol;
  storage->variable = info->tdatatype < 0;
  storage->scale = scale;
  storage->zero = zero;
  storage->has_null = null_value != CFITSIO_NO_TNULL;
  storage->null_value = storage->has_null ? null_value : 0;
  return TRUE;
}

gboolean
aclip_fits_read_table_bytes (AclipFits *fits, gint64 row, gint64 first_byte, gint64 n_bytes,
                             guint8 *bytes, GError **error)
{
  int status = 0;
  fits_read_tblbytes (fits->file, row + 1, first_byte + 1, n_bytes, bytes, &status);
  if (status) {
    g_autofree char *what = g_strdup_printf (_("cannot read the table at row %" PRId64),
                                             row + 1);
    return fail (fits, status, error, what);
  }
  return TRUE;
}

gboolean
aclip_fits_append_table (AclipFits *fits, const char *extname, int n_columns,
                         const AclipFitsColumnSpec *columns, GError **error)
{
  int status = 0;
  g_autofree char **names = g_new0 (char *, n_columns);
  g_autofree char **formats = g_new0 (char *, n_columns);
  g_autofree char **units = g_new0 (char *, n_columns);
  for (int i = 0; i < n_columns; i++) {
    names[i] = (char *) columns[i].name;
    formats[i] = (char *) columns[i].format;
    units[i] = (char *) (columns[i].unit ? columns[i].unit : "");
  }
  fits_create_tbl (fits->file, BINARY_TBL, 0, n_columns, names, formats, units, extname,
                   &status);
  gboolean rescaled = FALSE;
  for (int i = 0; i < n_columns && status == 0; i++) {
    const AclipFitsColumnSpec *spec = &columns[i];
    if (spec->n_dims > 0) {
      LONGLONG dims[ACLIP_FITS_MAX_DIMS];
      for (int d = 0; d < spec->n_dims; d++)
        dims[d] = spec->dims[d];
      fits_write_tdimll (fits->file, i + 1, spec->n_dims, dims, &status);
    }
    double scale = spec->scale == 0.0 ? 1.0 : spec->scale;
    if (scale != 1.0 || spec->zero != 0.0) {
      char key[FLEN_KEYWORD];
      g_snprintf (key, sizeof key, "TSCAL%d", i + 1);
      fits_update_key (fits->file, TDOUBLE, key, &scale, "physical = stored * TSCAL + TZERO",
                       &status);
      double zero = spec->zero;
      g_snprintf (key, sizeof key, "TZERO%d", i + 1);
      fits_update_key (fits->file, TDOUBLE, key, &zero, NULL, &status);
      rescaled = TRUE;
    }
  }
  /* CFITSIO reads TSCAL/TZERO when it parses the header; make it parse the new keywords. */
  if (rescaled && status == 0)
    fits_set_hdustruc (fits->file, &status);
  if (status) {
    g_autofree char *what = g_strdup_printf (_("cannot create table %s"), extname);
    return fail (fits, status, error, what);
  }
  return TRUE;
}

static gboolean
write_column (AclipFits *fits, int datatype, int column, gint64 row, gint64 first_element,
              gint64 n_elements, const void *values, GError **error)
{
  int status = 0;
  fits_write_col (fits->file, datatype, column, row + 1, first_element + 1, n_elements,
                  (void *) values, &status);
  if (status) {
    g_autofree char *name = aclip_fits_column_name (fits, column);
    g_autofree char *what = g_strdup_printf (_("cannot write column %s at row %" PRId64),
                                             name ? name : "?", row + 1);
    return fail (fits, status, error, what);
  }
  return TRUE;
}

gboolean
aclip_fits_write_column_float (AclipFits *fits, int column, gint64 row, gint64 first_element,
                               gint64 n_elements, const float *values, GError **error)
{
  return write_column (fits, TFLOAT, column, row, first_element, n_elements, values, error);
}

gboolean
aclip_fits_write_column_double (AclipFits *fits, int column, gint64 row, gint64 first_element,
                                gint64 n_elements, const double *values, GError **error)
{
  return write_column (fits, TDOUBLE, column, row, first_element, n_elements, values, error);
}

gboolean
aclip_fits_write_column_int64 (AclipFits *fits, int column, gint64 row, gint64 first_element,
                               gint64 n_elements, const gint64 *values, GError **error)
{
  return write_column (fits, TLONGLONG, column, row, first_element, n_elements, values, error);
}

gboolean
aclip_fits_write_column_int32 (AclipFits *fits, int column, gint64 row, gint64 first_element,
                               gint64 n_elements, const gint32 *values, GError **error)
{
  return write_column (fits, TINT, column, row, first_element, n_elements, values, error);
}

gboolean
aclip_fits_write_column_string (AclipFits *fits, int column, gint64 row, const char *value,
                                GError **error)
{
  const char *cells[1] = { value };
  return write_column (fits, TSTRING, column, row, 0, 1, cells, error);
}
