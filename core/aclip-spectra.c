/* aclip-spectra.c — DESI coadd/redrock and SDSS/BOSS spec readers (see aclip-spectra.h). */
#include "aclip-spectra.h"

#include "aclip-catalogue.h"
#include "aclip-error.h"
#include "aclip-fits.h"
#include "aclip-resample.h"

#include <inttypes.h>
#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

/* Shared helpers ----------------------------------------------------------------------------- */

/* A read that failed part-way through a file usually means the file was cut short: say so. */
static gboolean
hint_truncation (GError **error)
{
  if (error && *error && g_error_matches (*error, ACLIP_ERROR, ACLIP_ERROR_IO)) {
    char *message = g_strdup_printf (_("%s — the file may be truncated or damaged"),
                                     (*error)->message);
    g_free ((*error)->message);
    (*error)->message = message;
  }
  return FALSE;
}

AclipSpectype
aclip_spectype_from_string (const char *text)
{
  if (text == NULL)
    return ACLIP_SPECTYPE_UNKNOWN;
  g_autofree char *trimmed = g_strstrip (g_ascii_strup (text, -1));
  if (strcmp (trimmed, "GALAXY") == 0)
    return ACLIP_SPECTYPE_GALAXY;
  if (strcmp (trimmed, "QSO") == 0)
    return ACLIP_SPECTYPE_QSO;
  if (strcmp (trimmed, "STAR") == 0)
    return ACLIP_SPECTYPE_STAR;
  return ACLIP_SPECTYPE_UNKNOWN;
}

const char *
aclip_spectype_to_string (AclipSpectype spectype)
{
  switch (spectype) {
    case ACLIP_SPECTYPE_GALAXY:
      return "GALAXY";
    case ACLIP_SPECTYPE_QSO:
      return "QSO";
    case ACLIP_SPECTYPE_STAR:
      return "STAR";
    case ACLIP_SPECTYPE_UNKNOWN:
    default:
      return "UNKNOWN";
  }
}

double
aclip_air_to_vacuum (double air_wavelength)
{
  /* Morton (2000) gives n(σ) for vacuum wavenumber σ = 10⁴/λ_vac (µm⁻¹); solve
   * λ_vac = λ_air·n(λ_vac) by fixed-point iteration (converges to < 1e-9 Å in 3 steps). */
  double vacuum = air_wavelength;
  for (int iteration = 0; iteration < 4; iteration++) {
    double sigma2 = (1e4 / vacuum) * (1e4 / vacuum);
    double n = 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - sigma2) + 1.5998e-4 / (38.9 - sigma2);
    vacuum = air_wavelength * n;
  }
  return vacuum;
}

static void
info_init (AclipSpectrumInfo *info, AclipSpectrumSource source)
{
  memset (info, 0, sizeof *info);
  info->source = source;
  info->id = -1;
  info->ra = info->dec = NAN;
  info->z = info->z_err = NAN;
  info->zwarn = -1;
  info->spectype = ACLIP_SPECTYPE_UNKNOWN;
  info->plate = info->mjd = info->fiber = -1;
  for (int b = 0; b < 3; b++)
    info->ls_flux[b] = NAN;
}

/* "PRIMARY, FIBERMAP, B_FLUX, …" — for messages about a file of the wrong kind. Moves the
 * current HDU. */
static char *
describe_hdus (AclipFits *fits)
{
  g_autoptr (GString) names = g_string_new (NULL);
  int n = aclip_fits_n_hdus (fits);
  for (int index = 1; index <= n && index <= 12; index++) {
    if (!aclip_fits_move_to_index (fits, index, NULL, NULL))
      break;
    g_autofree char *name = aclip_fits_current_name (fits);
    g_string_append_printf (names, "%s%s", names->len ? ", " : "", name);
  }
  if (n > 12)
    g_string_append (names, ", …");
  return g_string_free (g_steal_pointer (&names), FALSE);
}

/* The column `name` of the current table, which must hold one number per row. */
static gboolean
scalar_column (AclipFits *fits, const char *name, int *number, GError **error)
{
  AclipFitsColumn column;
  if (!aclip_fits_column (fits, name, &column, error))
    return FALSE;
  if (column.type == ACLIP_FITS_TYPE_STRING || column.type == ACLIP_FITS_TYPE_OTHER ||
      column.repeat != 1) {
    g_autofree char *location = aclip_fits_current_name (fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: column %s of HDU %s holds %" PRId64
                   " values of another type per row; expected one number"),
                 aclip_fits_path (fits), name, location, (gint64) column.repeat);
    return FALSE;
  }
  *number = column.number;
  return TRUE;
}

/* Reads one number of row `row` of column `name`; `fallback` when the column is absent. */
static gboolean
read_optional_double (AclipFits *fits, const char *name, gint64 row, double fallback,
                      double *value, GError **error)
{
  *value = fallback;
  if (!aclip_fits_has_column (fits, name))
    return TRUE;
  int number = 0;
  if (!scalar_column (fits, name, &number, error))
    return FALSE;
  return aclip_fits_read_column_double (fits, number, row, 0, 1, value, error);
}

static gboolean
read_optional_int64 (AclipFits *fits, const char *name, gint64 row, gint64 fallback,
                     gint64 *value, GError **error)
{
  *value = fallback;
  if (!aclip_fits_has_column (fits, name))
    return TRUE;
  int number = 0;
  if (!scalar_column (fits, name, &number, error))
    return FALSE;
  return aclip_fits_read_column_int64 (fits, number, row, 0, 1, value, error);
}

static char *
read_optional_string (AclipFits *fits, const char *name, gint64 row, GError **error)
{
  AclipFitsColumn column;
  if (!aclip_fits_has_column (fits, name))
    return g_strdup ("");
  if (!aclip_fits_column (fits, name, &column, error))
    return NULL;
  return aclip_fits_read_column_string (fits, column.number, row, error);
}

static gboolean
read_whole_column_double (AclipFits *fits, const char *name, gint64 n_rows, double *values,
                          GError **error)
{
  int number = 0;
  if (!scalar_column (fits, name, &number, error))
    return FALSE;
  if (!aclip_fits_read_column_double (fits, number, 0, 0, n_rows, values, error))
    return hint_truncation (error);
  return TRUE;
}

static gboolean
read_whole_column_int64 (AclipFits *fits, const char *name, gint64 n_rows, gint64 *values,
                         GError **error)
{
  int number = 0;
  if (!scalar_column (fits, name, &number, error))
    return FALSE;
  if (!aclip_fits_read_column_int64 (fits, number, 0, 0, n_rows, values, error))
    return hint_truncation (error);
  return TRUE;
}

static gboolean
check_spectrum_has_pixels (const char *path, gint64 id, int n_good, GError **error)
{
  if (n_good > 0)
    return TRUE;
  g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_EMPTY,
               _("%s: spectrum %" PRId64 " has no valid pixel on the DESI grid "
                 "(every pixel is masked, NaN, has ivar 0 or lies outside 3600–9824 Å)"),
               path, id);
  return FALSE;
}

/* DESI ------------------------------------------------------------------------------------- */

#define DESI_MAX_ARMS 4

typedef struct
{
  char name[4]; /* "B", "R", "Z" or "BRZ" */
  int offset;   /* DESI-grid index of the arm's first pixel */
  int n_wave;   /* pixels in the arm */
  gboolean has_mask;
} DesiArm;

struct _AclipDesiCoadd
{
  char *path;
  char *redrock_path;
  AclipFits *fits;
  int n_targets;
  int n_without_redshift;
  AclipSpectrumInfo *infos; /* [n_targets] */
  DesiArm arms[DESI_MAX_ARMS];
  int n_arms;
  float *flux; /* [n_targets × ACLIP_DESI_N_WAVE], NULL until read */
  float *ivar; /* [n_targets × ACLIP_DESI_N_WAVE] */
};

char *
aclip_desi_find_redrock (const char *coadd_path, GError **error)
{
  g_return_val_if_fail (coadd_path != NULL, NULL);

  g_autofree char *folder = g_path_get_dirname (coadd_path);
  g_autofree char *base = g_path_get_basename (coadd_path);
  if (!g_str_has_prefix (base, "coadd")) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s: cannot guess the redrock file of a coadd whose name does not start "
                   "with “coadd”; give it as COADD:REDROCK"),
                 coadd_path);
    return NULL;
  }
  const char *prefixes[] = { "redrock", "zbest" };
  g_autoptr (GString) tried = g_string_new (NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (prefixes); i++) {
    g_autofree char *name = g_strconcat (prefixes[i], base + strlen ("coadd"), NULL);
    g_autofree char *candidate = g_build_filename (folder, name, NULL);
    if (g_file_test (candidate, G_FILE_TEST_IS_REGULAR))
      return g_steal_pointer (&candidate);
    g_string_append_printf (tried, "%s%s", tried->len ? _(" or ") : "", candidate);
  }
  g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
               _("%s: no redshift file beside it (looked for %s); give it as COADD:REDROCK"),
               coadd_path, tried->str);
  return NULL;
}

void
aclip_desi_coadd_free (AclipDesiCoadd *coadd)
{
  if (coadd == NULL)
    return;
  g_clear_pointer (&coadd->fits, aclip_fits_close);
  g_free (coadd->path);
  g_free (coadd->redrock_path);
  g_free (coadd->infos);
  g_free (coadd->flux);
  g_free (coadd->ivar);
  g_free (coadd);
}

/* Checks the shape of <ARM>_<what>: n_wave × n_targets (FITS NAXIS1 = n_wave). */
static gboolean
check_arm_image (AclipDesiCoadd *coadd, const DesiArm *arm, const char *what, int *n_targets,
                 GError **error)
{
  g_autofree char *extname = g_strdup_printf ("%s_%s", arm->name, what);
  AclipFitsHduType type;
  if (!aclip_fits_move_to_name (coadd->fits, extname, &type, error))
    return FALSE;
  int n_dims = 0;
  gint64 dims[ACLIP_FITS_MAX_DIMS];
  if (type != ACLIP_FITS_IMAGE_HDU ||
      !aclip_fits_image_shape (coadd->fits, &n_dims, dims, NULL, error)) {
    if (error && *error == NULL)
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: HDU %s is not an image"),
                   coadd->path, extname);
    return FALSE;
  }
  gint64 targets = n_dims == 2 ? dims[1] : 1;
  if ((n_dims != 1 && n_dims != 2) || dims[0] != arm->n_wave || targets < 1 ||
      targets > G_MAXINT) {
    g_autofree char *shape = n_dims == 2 ? g_strdup_printf ("%" PRId64 " × %"
                                                            PRId64, dims[1], dims[0])
                                         : g_strdup_printf (_("%d axes"), n_dims);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: HDU %s has shape %s; expected targets × %d wavelengths like %s_WAVELENGTH"),
                 coadd->path, extname, shape, arm->n_wave, arm->name);
    return FALSE;
  }
  if (*n_targets < 0) {
    *n_targets = (int) targets;
  } else if (*n_targets != targets) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: HDU %s holds %" PRId64 " spectra but other HDUs hold %d"),
                 coadd->path, extname, targets, *n_targets);
    return FALSE;
  }
  return TRUE;
}

/* Reads <ARM>_WAVELENGTH, checks it lies on the DESI grid and sets arm->offset, n_wave. */
static gboolean
read_arm_wavelength (AclipDesiCoadd *coadd, DesiArm *arm, GError **error)
{
  g_autofree char *extname = g_strdup_printf ("%s_WAVELENGTH", arm->name);
  AclipFitsHduType type;
  if (!aclip_fits_move_to_name (coadd->fits, extname, &type, error))
    return FALSE;
  int n_dims = 0;
  gint64 dims[ACLIP_FITS_MAX_DIMS];
  if (type != ACLIP_FITS_IMAGE_HDU ||
      !aclip_fits_image_shape (coadd->fits, &n_dims, dims, NULL, error) || n_dims != 1 ||
      dims[0] < 2 || dims[0] > ACLIP_DESI_N_WAVE) {
    g_clear_error (error);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: HDU %s is not a list of 2 to %d wavelengths"), coadd->path, extname,
                 ACLIP_DESI_N_WAVE);
    return FALSE;
  }
  arm->n_wave = (int) dims[0];
  g_autofree double *wave = g_new (double, arm->n_wave); /* [n_wave], Å */
  if (!aclip_fits_read_image_double (coadd->fits, arm->n_wave, wave, error))
    return hint_truncation (error);

  double first_index = (wave[0] - ACLIP_DESI_WAVE_MIN) / ACLIP_DESI_WAVE_STEP;
  arm->offset = (int) lround (first_index);
  for (int k = 0; k < arm->n_wave; k++) {
    double expected = ACLIP_DESI_WAVE_MIN + (arm->offset + k) * ACLIP_DESI_WAVE_STEP;
    if (!isfinite (wave[k]) || fabs (wave[k] - expected) > 1e-3 || arm->offset < 0 ||
        arm->offset + arm->n_wave > ACLIP_DESI_N_WAVE) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s: %s pixel %d is at %.4f Å, not on the DESI grid (3600–9824 Å in "
                     "0.8 Å steps)"),
                   coadd->path, extname, k + 1, wave[k]);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
read_fibermap (AclipDesiCoadd *coadd, GError **error)
{
  AclipFits *fits = coadd->fits;
  AclipFitsHduType type;
  if (!aclip_fits_move_to_name (fits, "FIBERMAP", &type, error))
    return FALSE;
  gint64 n_rows = 0;
  if (type != ACLIP_FITS_BINARY_TABLE || !aclip_fits_table_n_rows (fits, &n_rows, error)) {
    if (error && *error == NULL)
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                   _("%s: HDU FIBERMAP is not a binary table"), coadd->path);
    return FALSE;
  }
  if (n_rows != coadd->n_targets) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: FIBERMAP has %" PRId64 " rows but the file holds %d spectra"),
                 coadd->path, n_rows, coadd->n_targets);
    return FALSE;
  }

  int n = coadd->n_targets;
  g_autofree gint64 *targetid = g_new (gint64, n);
  g_autofree double *ra = g_new (double, n);
  g_autofree double *dec = g_new (double, n);
  if (!read_whole_column_int64 (fits, "TARGETID", n, targetid, error))
    return FALSE;
  const char *ra_name = aclip_fits_has_column (fits, "TARGET_RA") ? "TARGET_RA" : "RA";
  const char *dec_name = aclip_fits_has_column (fits, "TARGET_DEC") ? "TARGET_DEC" : "DEC";
  gboolean has_position = aclip_fits_has_column (fits, ra_name) &&
                          aclip_fits_has_column (fits, dec_name);
  if (has_position && (!read_whole_column_double (fits, ra_name, n, ra, error) ||
                       !read_whole_column_double (fits, dec_name, n, dec, error)))
    return FALSE;

  for (int t = 0; t < n; t++) {
    AclipSpectrumInfo *info = &coadd->infos[t];
    info_init (info, ACLIP_SPECTRUM_SOURCE_DESI);
    info->id = targetid[t];
    info->ra = has_position && isfinite (ra[t]) ? ra[t] : NAN;
    info->dec = has_position && isfinite (dec[t]) ? dec[t] : NAN;
  }

  /* Legacy Surveys photometry: a flux whose inverse variance is 0 was not measured. */
  const char *flux_names[3] = { "FLUX_G", "FLUX_R", "FLUX_Z" };
  const char *ivar_names[3] = { "FLUX_IVAR_G", "FLUX_IVAR_R", "FLUX_IVAR_Z" };
  g_autofree double *flux = g_new (double, n);
  g_autofree double *flux_ivar = g_new (double, n);
  for (int b = 0; b < 3; b++) {
    if (!aclip_fits_has_column (fits, flux_names[b]))
      continue;
    if (!read_whole_column_double (fits, flux_names[b], n, flux, error))
      return FALSE;
    gboolean has_ivar = aclip_fits_has_column (fits, ivar_names[b]);
    if (has_ivar && !read_whole_column_double (fits, ivar_names[b], n, flux_ivar, error))
      return FALSE;
    for (int t = 0; t < n; t++) {
      gboolean measured = isfinite (flux[t]) && (!has_ivar || flux_ivar[t] > 0);
      coadd->infos[t].ls_flux[b] = measured ? (float) flux[t] : NAN;
    }
  }
  return TRUE;
}

static gboolean
read_redshifts (AclipDesiCoadd *coadd, GError **error)
{
  g_autoptr (AclipFits) fits = aclip_fits_open (coadd->redrock_path, FALSE, error);
  if (fits == NULL)
    return FALSE;
  const char *extname = aclip_fits_has_hdu (fits, "REDSHIFTS") ? "REDSHIFTS" : "ZBEST";
  if (!aclip_fits_has_hdu (fits, extname)) {
    g_autofree char *hdus = describe_hdus (fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: not a redrock file: it has no REDSHIFTS (or ZBEST) HDU (HDUs: %s)"),
                 coadd->redrock_path, hdus);
    return FALSE;
  }
  AclipFitsHduType type;
  gint64 n_rows = 0;
  if (!aclip_fits_move_to_name (fits, extname, &type, error))
    return FALSE;
  if (type != ACLIP_FITS_BINARY_TABLE) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: HDU %s is not a binary table"),
                 coadd->redrock_path, extname);
    return FALSE;
  }
  if (!aclip_fits_table_n_rows (fits, &n_rows, error))
    return FALSE;

  g_autofree gint64 *targetid = g_new (gint64, MAX (n_rows, 1));
  g_autofree double *z = g_new (double, MAX (n_rows, 1));
  if (n_rows > 0 && (!read_whole_column_int64 (fits, "TARGETID", n_rows, targetid, error) ||
                     !read_whole_column_double (fits, "Z", n_rows, z, error)))
    return FALSE;

  g_autoptr (GHashTable) row_of_target = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (gint64 row = 0; row < n_rows; row++)
    g_hash_table_insert (row_of_target, &targetid[row], GINT_TO_POINTER ((int) row + 1));

  coadd->n_without_redshift = 0;
  for (int t = 0; t < coadd->n_targets; t++) {
    AclipSpectrumInfo *info = &coadd->infos[t];
    int row = GPOINTER_TO_INT (g_hash_table_lookup (row_of_target, &info->id)) - 1;
    if (row < 0) {
      coadd->n_without_redshift++;
      continue;
    }
    info->z = z[row];
    if (!read_optional_double (fits, "ZERR", row, NAN, &info->z_err, error) ||
        !read_optional_int64 (fits, "ZWARN", row, -1, &info->zwarn, error))
      return FALSE;
    g_autofree char *spectype = read_optional_string (fits, "SPECTYPE", row, error);
    if (spectype == NULL)
      return FALSE;
    info->spectype = aclip_spectype_from_string (spectype);
  }
  return TRUE;
}

AclipDesiCoadd *
aclip_desi_coadd_open (const char *coadd_path, const char *redrock_path, GError **error)
{
  g_return_val_if_fail (coadd_path != NULL, NULL);

  g_autoptr (AclipDesiCoadd) coadd = g_new0 (AclipDesiCoadd, 1);
  coadd->path = g_strdup (coadd_path);
  coadd->fits = aclip_fits_open (coadd_path, FALSE, error);
  if (coadd->fits == NULL)
    return NULL;

  /* A camera-combined coadd has BRZ_*; otherwise B, R and Z must all be there. */
  const char *candidates[] = { "BRZ", "B", "R", "Z" };
  for (gsize i = 0; i < G_N_ELEMENTS (candidates); i++) {
    g_autofree char *extname = g_strdup_printf ("%s_FLUX", candidates[i]);
    if (!aclip_fits_has_hdu (coadd->fits, extname))
      continue;
    DesiArm *arm = &coadd->arms[coadd->n_arms++];
    g_strlcpy (arm->name, candidates[i], sizeof arm->name);
    if (i == 0)
      break;
  }
  /* A coadd has all three cameras; one missing is most likely a truncated file. */
  if (coadd->n_arms > 0 && strcmp (coadd->arms[0].name, "BRZ") != 0 && coadd->n_arms < 3) {
    const char *missing = !aclip_fits_has_hdu (coadd->fits, "B_FLUX")   ? "B_FLUX"
                          : !aclip_fits_has_hdu (coadd->fits, "R_FLUX") ? "R_FLUX"
                                                                        : "Z_FLUX";
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s: the DESI coadd has no %s HDU (%d of the 3 cameras found; is the file "
                   "truncated?)"),
                 coadd_path, missing, coadd->n_arms);
    return NULL;
  }
  if (coadd->n_arms == 0) {
    g_autofree char *hdus = describe_hdus (coadd->fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: not a DESI coadd file: it has no B_FLUX, R_FLUX, Z_FLUX or BRZ_FLUX "
                   "HDU (HDUs: %s)"),
                 coadd_path, hdus);
    return NULL;
  }

  coadd->n_targets = -1;
  for (int a = 0; a < coadd->n_arms; a++) {
    DesiArm *arm = &coadd->arms[a];
    g_autofree char *mask_name = g_strdup_printf ("%s_MASK", arm->name);
    arm->has_mask = aclip_fits_has_hdu (coadd->fits, mask_name);
    if (!read_arm_wavelength (coadd, arm, error) ||
        !check_arm_image (coadd, arm, "FLUX", &coadd->n_targets, error) ||
        !check_arm_image (coadd, arm, "IVAR", &coadd->n_targets, error) ||
        (arm->has_mask && !check_arm_image (coadd, arm, "MASK", &coadd->n_targets, error)))
      return NULL;
  }

  coadd->infos = g_new0 (AclipSpectrumInfo, coadd->n_targets);
  if (!read_fibermap (coadd, error))
    return NULL;

  if (redrock_path != NULL)
    coadd->redrock_path = g_strdup (redrock_path);
  else if ((coadd->redrock_path = aclip_desi_find_redrock (coadd_path, error)) == NULL)
    return NULL;
  if (!read_redshifts (coadd, error))
    return NULL;
  return g_steal_pointer (&coadd);
}

const char *
aclip_desi_coadd_path (AclipDesiCoadd *coadd)
{
  return coadd->path;
}

const char *
aclip_desi_coadd_redrock_path (AclipDesiCoadd *coadd)
{
  return coadd->redrock_path;
}

int
aclip_desi_coadd_n_targets (AclipDesiCoadd *coadd)
{
  return coadd->n_targets;
}

const AclipSpectrumInfo *
aclip_desi_coadd_info (AclipDesiCoadd *coadd, int target)
{
  g_return_val_if_fail (target >= 0 && target < coadd->n_targets, NULL);
  return &coadd->infos[target];
}

int
aclip_desi_coadd_n_without_redshift (AclipDesiCoadd *coadd)
{
  return coadd->n_without_redshift;
}

static gboolean
read_arm_pixels (AclipDesiCoadd *coadd, const DesiArm *arm, const char *what, float *values,
                 GError **error)
{
  g_autofree char *extname = g_strdup_printf ("%s_%s", arm->name, what);
  if (!aclip_fits_move_to_name (coadd->fits, extname, NULL, error))
    return FALSE;
  if (!aclip_fits_read_image_float (coadd->fits, (gint64) arm->n_wave * coadd->n_targets,
                                    values, error))
    return hint_truncation (error);
  return TRUE;
}

/* Reads every arm and joins them on the DESI grid: flux = Σ ivar_a·flux_a / Σ ivar_a,
 * ivar = Σ ivar_a over the arms whose pixel is good. */
static gboolean
read_all_targets (AclipDesiCoadd *coadd, GError **error)
{
  gsize n_grid = (gsize) coadd->n_targets * ACLIP_DESI_N_WAVE;
  g_autofree float *weighted_sum = g_new0 (float, n_grid); /* [n_targets × N_WAVE] */
  g_autofree float *ivar_sum = g_new0 (float, n_grid);     /* [n_targets × N_WAVE] */

  for (int a = 0; a < coadd->n_arms; a++) {
    const DesiArm *arm = &coadd->arms[a];
    gsize n_arm = (gsize) arm->n_wave * coadd->n_targets;
    g_autofree float *flux = g_new (float, n_arm); /* [n_targets × n_wave] */
    g_autofree float *ivar = g_new (float, n_arm);
    g_autofree float *mask = arm->has_mask ? g_new (float, n_arm) : NULL;
    if (!read_arm_pixels (coadd, arm, "FLUX", flux, error) ||
        !read_arm_pixels (coadd, arm, "IVAR", ivar, error) ||
        (mask && !read_arm_pixels (coadd, arm, "MASK", mask, error)))
      return FALSE;

    for (int t = 0; t < coadd->n_targets; t++) {
      for (int k = 0; k < arm->n_wave; k++) {
        gsize in = (gsize) t * arm->n_wave + k;
        gsize out = (gsize) t * ACLIP_DESI_N_WAVE + arm->offset + k;
        gboolean good = isfinite (flux[in]) && isfinite (ivar[in]) && ivar[in] > 0 &&
                        (mask == NULL || mask[in] == 0);
        if (!good)
          continue;
        weighted_sum[out] += ivar[in] * flux[in];
        ivar_sum[out] += ivar[in];
      }
    }
  }

  for (gsize i = 0; i < n_grid; i++)
    weighted_sum[i] = ivar_sum[i] > 0 ? weighted_sum[i] / ivar_sum[i] : 0.0f;
  coadd->flux = g_steal_pointer (&weighted_sum);
  coadd->ivar = g_steal_pointer (&ivar_sum);
  return TRUE;
}

gboolean
aclip_desi_coadd_read (AclipDesiCoadd *coadd, int target, float *flux, float *ivar,
                       GError **error)
{
  g_return_val_if_fail (coadd != NULL && flux != NULL && ivar != NULL, FALSE);
  g_return_val_if_fail (target >= 0 && target < coadd->n_targets, FALSE);

  if (coadd->flux == NULL && !read_all_targets (coadd, error))
    return FALSE;
  gsize first = (gsize) target * ACLIP_DESI_N_WAVE;
  memcpy (flux, coadd->flux + first, ACLIP_DESI_N_WAVE * sizeof (float));
  memcpy (ivar, coadd->ivar + first, ACLIP_DESI_N_WAVE * sizeof (float));
  int n_good = 0;
  for (int k = 0; k < ACLIP_DESI_N_WAVE; k++)
    n_good += ivar[k] > 0;
  return check_spectrum_has_pixels (coadd->path, coadd->infos[target].id, n_good, error);
}

/* SDSS / BOSS ------------------------------------------------------------------------------ */

/* Moves to the COADD table and checks its columns; n_rows receives its length. */
static gboolean
move_to_sdss_coadd (AclipFits *fits, gint64 *n_rows, GError **error)
{
  const char *path = aclip_fits_path (fits);
  AclipFitsHduType type;
  if (!aclip_fits_has_hdu (fits, "COADD")) {
    g_autofree char *hdus = describe_hdus (fits);
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: not an SDSS/BOSS spec file: it has no COADD HDU (HDUs: %s)"), path,
                 hdus);
    return FALSE;
  }
  if (!aclip_fits_move_to_name (fits, "COADD", &type, error))
    return FALSE;
  if (type != ACLIP_FITS_BINARY_TABLE) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: HDU COADD is not a binary table"),
                 path);
    return FALSE;
  }
  const char *required[] = { "loglam", "flux", "ivar" };
  for (gsize i = 0; i < G_N_ELEMENTS (required); i++) {
    int number = 0;
    if (!scalar_column (fits, required[i], &number, error))
      return FALSE;
  }
  if (!aclip_fits_table_n_rows (fits, n_rows, error))
    return FALSE;
  if (*n_rows < 2) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: the COADD table has %" PRId64 " rows; a spectrum needs at "
                   "least 2 pixels"),
                 path, *n_rows);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_sdss_info (AclipFits *fits, AclipSpectrumInfo *info, GError **error)
{
  const char *path = aclip_fits_path (fits);
  info_init (info, ACLIP_SPECTRUM_SOURCE_SDSS);

  /* Plate, MJD, fiber and position from the primary header, then the SPECOBJ (SDSS) or SPALL
   * (BOSS) row, which also carries the redshift and class. */
  if (!aclip_fits_move_to_index (fits, 1, NULL, error))
    return FALSE;
  gint64 plate = -1, mjd = -1, fiber = -1;
  double ra = NAN, dec = NAN;
  if (aclip_fits_has_key (fits, "PLATEID") &&
      !aclip_fits_read_key_int64 (fits, "PLATEID", &plate, error))
    return FALSE;
  if (aclip_fits_has_key (fits, "MJD") && !aclip_fits_read_key_int64 (fits, "MJD", &mjd, error))
    return FALSE;
  if (aclip_fits_has_key (fits, "FIBERID") &&
      !aclip_fits_read_key_int64 (fits, "FIBERID", &fiber, error))
    return FALSE;
  if (aclip_fits_has_key (fits, "PLUG_RA") &&
      !aclip_fits_read_key_double (fits, "PLUG_RA", &ra, error))
    return FALSE;
  if (aclip_fits_has_key (fits, "PLUG_DEC") &&
      !aclip_fits_read_key_double (fits, "PLUG_DEC", &dec, error))
    return FALSE;

  const char *object_hdu = aclip_fits_has_hdu (fits, "SPECOBJ") ? "SPECOBJ"
                           : aclip_fits_has_hdu (fits, "SPALL") ? "SPALL"
                                                                : NULL;
  if (object_hdu != NULL) {
    AclipFitsHduType type;
    gint64 n_rows = 0;
    if (!aclip_fits_move_to_name (fits, object_hdu, &type, error))
      return FALSE;
    if (type != ACLIP_FITS_BINARY_TABLE || !aclip_fits_table_n_rows (fits, &n_rows, error) ||
        n_rows < 1) {
      g_clear_error (error);
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("%s: HDU %s is not a table with one row per spectrum"), path, object_hdu);
      return FALSE;
    }
    double plate_d = (double) plate, mjd_d = (double) mjd, fiber_d = (double) fiber;
    gint64 zwarn = -1;
    if (!read_optional_double (fits, "PLATE", 0, plate_d, &plate_d, error) ||
        !read_optional_double (fits, "MJD", 0, mjd_d, &mjd_d, error) ||
        !read_optional_double (fits, "FIBERID", 0, fiber_d, &fiber_d, error) ||
        !read_optional_double (fits, "PLUG_RA", 0, ra, &ra, error) ||
        !read_optional_double (fits, "PLUG_DEC", 0, dec, &dec, error) ||
        !read_optional_double (fits, "Z", 0, NAN, &info->z, error) ||
        !read_optional_double (fits, "Z_ERR", 0, NAN, &info->z_err, error) ||
        !read_optional_int64 (fits, "ZWARNING", 0, -1, &zwarn, error))
      return FALSE;
    plate = (gint64) plate_d;
    mjd = (gint64) mjd_d;
    fiber = (gint64) fiber_d;
    info->zwarn = zwarn;
    g_autofree char *class_name = read_optional_string (fits, "CLASS", 0, error);
    if (class_name == NULL)
      return FALSE;
    info->spectype = aclip_spectype_from_string (class_name);
  }

  if (plate < 0 || mjd < 0 || fiber < 0 || plate > 999999 || mjd > 99999 || fiber > 9999) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s: cannot tell the plate, MJD and fiber of this spectrum (no PLATEID, MJD "
                   "and FIBERID keywords and no SPECOBJ or SPALL HDU)"),
                 path);
    return FALSE;
  }
  info->plate = (int) plate;
  info->mjd = (int) mjd;
  info->fiber = (int) fiber;
  info->id = plate * G_GINT64_CONSTANT (1000000000) + mjd * 10000 + fiber;
  info->ra = ra;
  info->dec = dec;
  return TRUE;
}

gboolean
aclip_sdss_read_info (const char *path, AclipSpectrumInfo *info, GError **error)
{
  g_return_val_if_fail (path != NULL && info != NULL, FALSE);

  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  gint64 n_rows = 0;
  return fits != NULL && move_to_sdss_coadd (fits, &n_rows, error) &&
         read_sdss_info (fits, info, error);
}

gboolean
aclip_sdss_read (const char *path, AclipSpectrumInfo *info, float *flux, float *ivar,
                 int *n_good, GError **error)
{
  g_return_val_if_fail (path != NULL && flux != NULL && ivar != NULL, FALSE);

  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  if (fits == NULL)
    return FALSE;
  AclipSpectrumInfo read_info;
  gint64 n_rows = 0;
  if (!move_to_sdss_coadd (fits, &n_rows, error) || !read_sdss_info (fits, &read_info, error))
    return FALSE;

  gboolean vacuum = TRUE;
  if (!aclip_fits_move_to_index (fits, 1, NULL, error))
    return FALSE;
  if (aclip_fits_has_key (fits, "VACUUM")) {
    g_autofree char *value = aclip_fits_read_key_string (fits, "VACUUM", error);
    if (value == NULL)
      return FALSE;
    vacuum = !(value[0] == 'F' || value[0] == 'f');
  }

  if (!move_to_sdss_coadd (fits, &n_rows, error))
    return FALSE;
  if (n_rows > 1000000) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: the COADD table has %" PRId64 " rows, too many for a spectrum"),
                 path, n_rows);
    return FALSE;
  }
  int n = (int) n_rows;
  g_autofree double *loglam = g_new (double, n);  /* [n], log10 Å */
  g_autofree double *wave = g_new (double, n);    /* [n], vacuum Å */
  g_autofree double *values = g_new (double, n);  /* [n], scratch */
  g_autofree float *in_flux = g_new (float, n);   /* [n], 1e-17 erg/s/cm²/Å */
  g_autofree float *in_ivar = g_new (float, n);   /* [n] */
  g_autofree gint64 *and_mask = g_new0 (gint64, n); /* [n] */
  if (!read_whole_column_double (fits, "loglam", n, loglam, error))
    return FALSE;
  if (!read_whole_column_double (fits, "flux", n, values, error))
    return FALSE;
  for (int i = 0; i < n; i++)
    in_flux[i] = (float) values[i];
  if (!read_whole_column_double (fits, "ivar", n, values, error))
    return FALSE;
  for (int i = 0; i < n; i++)
    in_ivar[i] = (float) values[i];
  if (aclip_fits_has_column (fits, "and_mask") &&
      !read_whole_column_int64 (fits, "and_mask", n, and_mask, error))
    return FALSE;

  for (int i = 0; i < n; i++) {
    if (!isfinite (loglam[i]) || (i > 0 && loglam[i] <= loglam[i - 1])) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s: loglam is not finite and increasing at COADD row %d"), path, i + 1);
      return FALSE;
    }
    wave[i] = pow (10.0, loglam[i]);
    if (!vacuum)
      wave[i] = aclip_air_to_vacuum (wave[i]);
    /* A pixel bad in every exposure (and_mask ≠ 0) is bad. */
    if (and_mask[i] != 0)
      in_ivar[i] = 0;
  }

  g_autofree double *grid = g_new (double, ACLIP_DESI_N_WAVE);
  aclip_desi_wavelength_grid (grid);
  int good = aclip_resample_spectrum (wave, in_flux, in_ivar, n, grid, ACLIP_DESI_WAVE_STEP,
                                      ACLIP_DESI_N_WAVE, flux, ivar);
  if (n_good)
    *n_good = good;
  if (info)
    *info = read_info;
  return check_spectrum_has_pixels (path, read_info.id, good, error);
}
