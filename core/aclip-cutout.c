/* aclip-cutout.c — FITS and JPEG/PNG cutout readers (see aclip-cutout.h). */
#include "aclip-cutout.h"

#include "aclip-catalogue.h"
#include "aclip-error.h"
#include "aclip-fits.h"
#include "aclip-render.h"
#include "aclip-resample.h"

#include <inttypes.h>
#include <errno.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Larger inputs are refused rather than decoded (a 16k × 16k cube is 3 GB of floats). */
#define MAX_INPUT_SIDE 16384
/* A colour cutout smaller than this on a side is not a cutout. */
#define MIN_RGB_SIDE 8

static const char band_letters[3] = { 'g', 'r', 'z' };

static void
info_init (AclipCutoutInfo *info, AclipCutoutKind kind)
{
  memset (info, 0, sizeof *info);
  info->kind = kind;
  info->ra = info->dec = NAN;
  for (int b = 0; b < 3; b++)
    info->band_plane[b] = -1;
}

static gboolean
request_is_valid (const char *path, const AclipCutoutRequest *request, GError **error)
{
  if (request->height < 1 || request->width < 1 || request->height > MAX_INPUT_SIDE ||
      request->width > MAX_INPUT_SIDE || !(request->pixscale > 0) ||
      !isfinite (request->pixscale)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("%s: cannot make a %d × %d cutout at %g″/pixel"), path, request->width,
                 request->height, request->pixscale);
    return FALSE;
  }
  return TRUE;
}

/* FITS ------------------------------------------------------------------------------------ */

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

/* The linear part of a celestial WCS. */
typedef struct
{
  gboolean celestial; /* CTYPE1 RA…, CTYPE2 DEC… with CRVAL and CRPIX */
  gboolean tangent;   /* the TAN projection */
  gboolean has_matrix;
  double crval[2], crpix[2];
  double cd[2][2]; /* degrees per pixel */
} Wcs;

static gboolean
read_key_if_present (AclipFits *fits, const char *key, double *value, gboolean *present,
                     GError **error)
{
  if (!aclip_fits_has_key (fits, key))
    return TRUE;
  if (!aclip_fits_read_key_double (fits, key, value, error))
    return FALSE;
  if (present)
    *present = TRUE;
  return TRUE;
}

static gboolean
read_wcs (AclipFits *fits, Wcs *wcs, GError **error)
{
  memset (wcs, 0, sizeof *wcs);
  gboolean has_cd = FALSE, has_cdelt = FALSE, has_crval = FALSE, has_crpix = FALSE;
  double cdelt[2] = { 1, 1 };
  double pc[2][2] = { { 1, 0 }, { 0, 1 } };
  const char *cd_keys[2][2] = { { "CD1_1", "CD1_2" }, { "CD2_1", "CD2_2" } };
  const char *pc_keys[2][2] = { { "PC1_1", "PC1_2" }, { "PC2_1", "PC2_2" } };
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 2; j++) {
      if (!read_key_if_present (fits, cd_keys[i][j], &wcs->cd[i][j], &has_cd, error) ||
          !read_key_if_present (fits, pc_keys[i][j], &pc[i][j], NULL, error))
        return FALSE;
    }
  }
  if (!read_key_if_present (fits, "CDELT1", &cdelt[0], &has_cdelt, error) ||
      !read_key_if_present (fits, "CDELT2", &cdelt[1], &has_cdelt, error) ||
      !read_key_if_present (fits, "CRVAL1", &wcs->crval[0], &has_crval, error) ||
      !read_key_if_present (fits, "CRVAL2", &wcs->crval[1], &has_crval, error) ||
      !read_key_if_present (fits, "CRPIX1", &wcs->crpix[0], &has_crpix, error) ||
      !read_key_if_present (fits, "CRPIX2", &wcs->crpix[1], &has_crpix, error))
    return FALSE;
  if (!has_cd && has_cdelt) {
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++)
        wcs->cd[i][j] = cdelt[i] * pc[i][j];
  }
  wcs->has_matrix = has_cd || has_cdelt;

  g_autofree char *ctype1 = NULL, *ctype2 = NULL;
  if (aclip_fits_has_key (fits, "CTYPE1") &&
      (ctype1 = aclip_fits_read_key_string (fits, "CTYPE1", error)) == NULL)
    return FALSE;
  if (aclip_fits_has_key (fits, "CTYPE2") &&
      (ctype2 = aclip_fits_read_key_string (fits, "CTYPE2", error)) == NULL)
    return FALSE;
  wcs->celestial = ctype1 && ctype2 && g_str_has_prefix (ctype1, "RA") &&
                   g_str_has_prefix (ctype2, "DEC") && has_crval && has_crpix &&
                   wcs->has_matrix;
  wcs->tangent = wcs->celestial && g_str_has_suffix (ctype1, "-TAN") &&
                 g_str_has_suffix (ctype2, "-TAN");
  return TRUE;
}

/* Sky position (degrees) of FITS pixel (x, y), 1-based, by the gnomonic (TAN) projection. */
static void
tan_pixel_to_sky (const Wcs *wcs, double x, double y, double *ra, double *dec)
{
  double dx = x - wcs->crpix[0], dy = y - wcs->crpix[1];
  double xi = (wcs->cd[0][0] * dx + wcs->cd[0][1] * dy) * G_PI / 180.0;
  double eta = (wcs->cd[1][0] * dx + wcs->cd[1][1] * dy) * G_PI / 180.0;
  double ra0 = wcs->crval[0] * G_PI / 180.0, dec0 = wcs->crval[1] * G_PI / 180.0;
  double rho = hypot (xi, eta);
  if (rho == 0) {
    *ra = wcs->crval[0];
    *dec = wcs->crval[1];
    return;
  }
  double c = atan (rho);
  double sin_dec = cos (c) * sin (dec0) + eta * sin (c) * cos (dec0) / rho;
  *dec = asin (CLAMP (sin_dec, -1.0, 1.0)) * 180.0 / G_PI;
  double longitude = ra0 + atan2 (xi * sin (c), rho * cos (dec0) * cos (c) -
                                                    eta * sin (dec0) * sin (c));
  *ra = fmod (longitude * 180.0 / G_PI + 360.0, 360.0);
}

/* Finds which plane holds g, r and z from BANDS ('grz') or BAND0, BAND1, … */
static gboolean
read_band_planes (AclipFits *fits, int n_planes, int band_plane[3], GError **error)
{
  const char *path = aclip_fits_path (fits);
  g_autofree char *letters = NULL;
  if (aclip_fits_has_key (fits, "BANDS")) {
    g_autofree char *value = aclip_fits_read_key_string (fits, "BANDS", error);
    if (value == NULL)
      return FALSE;
    GString *kept = g_string_new (NULL);
    for (const char *c = value; *c; c++)
      if (g_ascii_isalpha (*c))
        g_string_append_c (kept, g_ascii_tolower (*c));
    letters = g_string_free (kept, FALSE);
  } else if (aclip_fits_has_key (fits, "BAND0")) {
    GString *kept = g_string_new (NULL);
    for (int p = 0; p < n_planes; p++) {
      char key[16];
      g_snprintf (key, sizeof key, "BAND%d", p);
      if (!aclip_fits_has_key (fits, key))
        break;
      g_autofree char *value = aclip_fits_read_key_string (fits, key, error);
      if (value == NULL) {
        g_string_free (kept, TRUE);
        return FALSE;
      }
      g_string_append_c (kept, g_ascii_tolower (value[0] ? value[0] : '?'));
    }
    letters = g_string_free (kept, FALSE);
  } else {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s: no BANDS keyword (or BAND0, BAND1, …) says which of the %d planes are "
                   "g, r and z"),
                 path, n_planes);
    return FALSE;
  }

  if ((int) strlen (letters) != n_planes) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: the band keywords name %d bands (“%s”) but the cube has %d planes"), path,
                 (int) strlen (letters), letters, n_planes);
    return FALSE;
  }
  for (int b = 0; b < 3; b++) {
    const char *found = strchr (letters, band_letters[b]);
    if (found == NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("%s: the cube holds bands “%s”; the catalogue needs g, r and z (band %c "
                     "is missing)"),
                   path, letters, band_letters[b]);
      return FALSE;
    }
    band_plane[b] = (int) (found - letters);
  }
  return TRUE;
}

/* Moves to the first image HDU holding pixels and checks it is a planes × H × W cube. */
static gboolean
move_to_cube (AclipFits *fits, gint64 dims[ACLIP_FITS_MAX_DIMS], GError **error)
{
  const char *path = aclip_fits_path (fits);
  int n_hdus = aclip_fits_n_hdus (fits);
  for (int index = 1; index <= n_hdus; index++) {
    AclipFitsHduType type;
    int n_dims = 0;
    if (!aclip_fits_move_to_index (fits, index, &type, error))
      return FALSE;
    if (type != ACLIP_FITS_IMAGE_HDU)
      continue;
    if (!aclip_fits_image_shape (fits, &n_dims, dims, NULL, error))
      return FALSE;
    if (n_dims == 0)
      continue;
    g_autofree char *name = aclip_fits_current_name (fits);
    if (n_dims != 3) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("%s: HDU %s is a %d-dimensional image; a cutout is a bands × height × "
                     "width cube"),
                   path, name, n_dims);
      return FALSE;
    }
    if (dims[0] < 1 || dims[1] < 1 || dims[0] > MAX_INPUT_SIDE || dims[1] > MAX_INPUT_SIDE ||
        dims[2] > 64) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("%s: HDU %s has an unusable cube shape %" PRId64
                     " × %" PRId64 " × %" PRId64),
                   path, name, dims[2], dims[1], dims[0]);
      return FALSE;
    }
    return TRUE;
  }
  g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
               _("%s: no image HDU with pixels (a cutout is a bands × height × width image)"),
               path);
  return FALSE;
}

static gboolean
probe_fits (AclipFits *fits, AclipCutoutInfo *info, GError **error)
{
  gint64 dims[ACLIP_FITS_MAX_DIMS];
  info_init (info, ACLIP_CUTOUT_FITS);
  if (!move_to_cube (fits, dims, error))
    return FALSE;
  info->width = (int) dims[0];
  info->height = (int) dims[1];
  if (!read_band_planes (fits, (int) dims[2], info->band_plane, error))
    return FALSE;

  Wcs wcs;
  if (!read_wcs (fits, &wcs, error))
    return FALSE;
  double determinant = wcs.cd[0][0] * wcs.cd[1][1] - wcs.cd[0][1] * wcs.cd[1][0];
  if (wcs.has_matrix && determinant != 0 && isfinite (determinant)) {
    info->pixscale = sqrt (fabs (determinant)) * 3600.0;
  } else if (aclip_fits_has_key (fits, "PIXSCALE")) {
    if (!aclip_fits_read_key_double (fits, "PIXSCALE", &info->pixscale, error))
      return FALSE;
  }
  if (!(info->pixscale > 0) || !isfinite (info->pixscale))
    info->pixscale = 0;

  double centre_x = (info->width + 1) / 2.0, centre_y = (info->height + 1) / 2.0;
  if (wcs.tangent) {
    tan_pixel_to_sky (&wcs, centre_x, centre_y, &info->ra, &info->dec);
  } else if (wcs.celestial && fabs (centre_x - wcs.crpix[0]) <= 1 &&
             fabs (centre_y - wcs.crpix[1]) <= 1) {
    info->ra = wcs.crval[0];
    info->dec = wcs.crval[1];
  }
  return TRUE;
}

static gboolean
read_fits_cutout (AclipFits *fits, const AclipCutoutRequest *request, float *image,
                  AclipCutoutInfo *info, gint64 *n_replaced, GError **error)
{
  const char *path = aclip_fits_path (fits);
  if (!probe_fits (fits, info, error))
    return FALSE;
  double pixscale = info->pixscale > 0 ? info->pixscale : request->input_pixscale;
  if (!(pixscale > 0)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s: the file does not state its pixel scale; give the input pixel scale"),
                 path);
    return FALSE;
  }

  gint64 dims[ACLIP_FITS_MAX_DIMS];
  if (!move_to_cube (fits, dims, error))
    return FALSE;
  gsize plane_size = (gsize) info->height * info->width;
  gint64 n_planes = dims[2];
  g_autofree float *cube = g_try_new (float, plane_size * n_planes); /* [planes × H × W] */
  if (cube == NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: not enough memory for the cube"),
                 path);
    return FALSE;
  }
  if (!aclip_fits_read_image_float (fits, (gint64) (plane_size * n_planes), cube, error))
    return hint_truncation (error);

  gsize out_plane = (gsize) request->height * request->width;
  gint64 replaced = 0;
  for (int b = 0; b < 3; b++) {
    float *plane = cube + plane_size * info->band_plane[b];
    gsize n_finite = 0;
    for (gsize i = 0; i < plane_size; i++) {
      if (isfinite (plane[i])) {
        n_finite++;
      } else {
        plane[i] = 0;
        replaced++;
      }
    }
    if (n_finite == 0) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s: band %c has no finite pixel (all NaN or infinite)"), path,
                   band_letters[b]);
      return FALSE;
    }
    aclip_resample_image (plane, info->height, info->width, pixscale, image + b * out_plane,
                          request->height, request->width, request->pixscale);
  }
  if (n_replaced)
    *n_replaced = replaced;
  return TRUE;
}

/* JPEG / PNG ------------------------------------------------------------------------------ */

/* Decodes an image into rgb (H × W × 3, rows flipped so that row 0 is the bottom). */
static guint8 *
decode_rgb (const char *path, int *height, int *width, GError **error)
{
  g_autoptr (GError) pixbuf_error = NULL;
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new_from_file (path, &pixbuf_error);
  if (pixbuf == NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: cannot be read as a FITS, JPEG or PNG cutout: %s"), path,
                 pixbuf_error ? pixbuf_error->message : _("unknown image format"));
    return NULL;
  }
  int w = gdk_pixbuf_get_width (pixbuf), h = gdk_pixbuf_get_height (pixbuf);
  int channels = gdk_pixbuf_get_n_channels (pixbuf);
  if (gdk_pixbuf_get_colorspace (pixbuf) != GDK_COLORSPACE_RGB ||
      gdk_pixbuf_get_bits_per_sample (pixbuf) != 8 || channels < 3) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: not an 8-bit RGB image"), path);
    return NULL;
  }
  if (w < MIN_RGB_SIDE || h < MIN_RGB_SIDE || w > MAX_INPUT_SIDE || h > MAX_INPUT_SIDE) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: a %d × %d pixel image cannot be a cutout (each side must be %d to %d "
                   "pixels)"),
                 path, w, h, MIN_RGB_SIDE, MAX_INPUT_SIDE);
    return NULL;
  }
  int rowstride = gdk_pixbuf_get_rowstride (pixbuf);
  const guint8 *pixels = gdk_pixbuf_read_pixels (pixbuf);
  guint8 *rgb = g_new (guint8, (gsize) w * h * 3); /* [H × W × 3], bottom row first */
  for (int y = 0; y < h; y++) {
    const guint8 *source = pixels + (gsize) (h - 1 - y) * rowstride;
    guint8 *target = rgb + (gsize) y * w * 3;
    for (int x = 0; x < w; x++)
      memcpy (target + 3 * x, source + channels * x, 3);
  }
  *height = h;
  *width = w;
  return rgb;
}

static gboolean
read_rgb_cutout (const char *path, const AclipCutoutRequest *request, float *image,
                 AclipCutoutInfo *info, GError **error)
{
  info_init (info, ACLIP_CUTOUT_RGB);
  if (!(request->input_pixscale > 0) || !isfinite (request->input_pixscale)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("%s: a JPEG/PNG cutout needs its pixel scale (got %g″/pixel)"), path,
                 request->input_pixscale);
    return FALSE;
  }
  int height = 0, width = 0;
  g_autofree guint8 *rgb = decode_rgb (path, &height, &width, error);
  if (rgb == NULL)
    return FALSE;
  info->height = height;
  info->width = width;

  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  gsize plane_size = (gsize) height * width;
  g_autofree float *flux = g_new (float, plane_size * 3); /* [3 × H × W], nanomaggies */
  aclip_rgb_inverse_u8 (&params, rgb, height, width, flux);

  gsize out_plane = (gsize) request->height * request->width;
  for (int b = 0; b < 3; b++)
    aclip_resample_image (flux + b * plane_size, height, width, request->input_pixscale,
                          image + b * out_plane, request->height, request->width,
                          request->pixscale);
  return TRUE;
}

/* Either kind ----------------------------------------------------------------------------- */

/* gdk-pixbuf decodes a cut-off JPEG without complaint (libjpeg pads it with grey), so look for
 * the end-of-image marker FF D9 ourselves. Outside the entropy-coded data an FF is never
 * followed by D9 except at the end of an image; the last 1 kB of a complete file holds it (an
 * embedded thumbnail's marker lies near the start of a file, not in its last kilobyte). */
static gboolean
check_jpeg_complete (const char *path, FILE *stream, gint64 size, GError **error)
{
  guint8 tail[1024];
  gint64 n_tail = MIN (size, (gint64) sizeof tail);
  size_t n_read = 0;
  if (fseek (stream, (long) (size - n_tail), SEEK_SET) == 0)
    n_read = fread (tail, 1, (size_t) n_tail, stream);
  for (size_t i = 0; i + 1 < n_read; i++)
    if (tail[i] == 0xff && tail[i + 1] == 0xd9)
      return TRUE;
  g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
               _("%s: the JPEG image has no end marker; the file is truncated"), path);
  return FALSE;
}

/* TRUE for a FITS file (it starts with "SIMPLE  ="); errors for a missing, empty or truncated
 * JPEG file. */
static gboolean
sniff_fits (const char *path, gboolean *is_fits, GError **error)
{
  GStatBuf stat_buffer;
  if (g_stat (path, &stat_buffer) != 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: no such file"), path);
    return FALSE;
  }
  if (stat_buffer.st_size == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: the file is empty"), path);
    return FALSE;
  }
  FILE *stream = g_fopen (path, "rb");
  if (stream == NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: cannot be opened: %s"), path,
                 g_strerror (errno));
    return FALSE;
  }
  char start[10] = "";
  size_t n_read = fread (start, 1, 9, stream);
  *is_fits = n_read == 9 && memcmp (start, "SIMPLE  =", 9) == 0;
  gboolean is_jpeg = n_read >= 3 && memcmp (start, "\xff\xd8\xff", 3) == 0;
  gboolean ok = !is_jpeg || check_jpeg_complete (path, stream, stat_buffer.st_size, error);
  fclose (stream);
  return ok;
}

gboolean
aclip_cutout_probe (const char *path, AclipCutoutInfo *info, GError **error)
{
  g_return_val_if_fail (path != NULL && info != NULL, FALSE);

  gboolean is_fits = FALSE;
  if (!sniff_fits (path, &is_fits, error))
    return FALSE;
  if (is_fits) {
    g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
    return fits != NULL && probe_fits (fits, info, error);
  }
  info_init (info, ACLIP_CUTOUT_RGB);
  g_autofree guint8 *rgb = decode_rgb (path, &info->height, &info->width, error);
  return rgb != NULL;
}

gboolean
aclip_cutout_read (const char *path, const AclipCutoutRequest *request, float *image,
                   AclipCutoutInfo *info, gint64 *n_replaced, GError **error)
{
  g_return_val_if_fail (path != NULL && request != NULL && image != NULL, FALSE);

  AclipCutoutInfo local_info;
  if (info == NULL)
    info = &local_info;
  if (n_replaced)
    *n_replaced = 0;
  gboolean is_fits = FALSE;
  if (!request_is_valid (path, request, error) || !sniff_fits (path, &is_fits, error))
    return FALSE;
  if (!is_fits)
    return read_rgb_cutout (path, request, image, info, error);
  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  return fits != NULL && read_fits_cutout (fits, request, image, info, n_replaced, error);
}
