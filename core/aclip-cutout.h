/* aclip-cutout.h — Legacy Surveys image cutouts as g, r, z flux cubes on the catalogue's grid.
 *
 * Two kinds of file are read:
 *  - FITS cubes (the cutout service's `fits` layer): a float image of planes × H × W in
 *    nanomaggies per pixel, with a BANDS keyword naming the planes in order (e.g. 'grz', or
 *    BAND0, BAND1, … one letter each); the planes g, r, z are picked whatever their order and
 *    other bands ignored; the pixel scale and centre come from the WCS (CD or CDELT, TAN).
 *  - JPEG/PNG colour cutouts (the sky viewer's images): decoded with gdk-pixbuf and turned back
 *    into approximate nanomaggies by inverting the Legacy Survey RGB mapping
 *    (aclip_rgb_inverse_u8); their pixel scale must be given (the viewer's default is 0.262″,
 *    many saved cutouts are 0.1″).
 * Either is then resampled by aclip_resample_image (area-weighted, flux-conserving) to the
 * requested size and pixel scale about the image centre, centre-cropping or zero-padding.
 *
 * Orientation: the cube follows the FITS convention, row 0 is the bottom row (south, for
 * Legacy Surveys cutouts with north up and east left); JPEG/PNG rows, stored top first, are
 * flipped on reading so both kinds agree.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  ACLIP_CUTOUT_FITS,
  ACLIP_CUTOUT_RGB, /* JPEG, PNG or another format gdk-pixbuf decodes */
} AclipCutoutKind;

typedef struct
{
  AclipCutoutKind kind;
  int height, width; /* as stored */
  double pixscale;   /* arcsec/pixel from the FITS WCS; 0 when the file does not say */
  double ra, dec;    /* degrees, the image centre from the FITS WCS; NaN when unknown */
  int band_plane[3]; /* FITS: the plane (0-based) holding g, r and z; -1 for RGB */
} AclipCutoutInfo;

/* What to make of a cutout. */
typedef struct
{
  int height, width;     /* output size, e.g. 152 × 152 */
  double pixscale;       /* output arcsec/pixel, e.g. ACLIP_LEGACY_PIXSCALE */
  /* arcsec/pixel of the input when the file does not state it (always for JPEG/PNG) */
  double input_pixscale;
} AclipCutoutRequest;

/* Identifies the file's kind and reads its size, scale, bands and centre without decoding the
 * pixels of a FITS cube (JPEG/PNG files are decoded). */
gboolean aclip_cutout_probe (const char *path, AclipCutoutInfo *info, GError **error);

/* Reads a cutout into image: 3 × request->height × request->width floats (g, r, z planes,
 * nanomaggies per output pixel). info may be NULL. n_replaced (may be NULL) receives the
 * number of non-finite input pixels, which are taken as 0; a band with no finite pixel is an
 * error. */
gboolean aclip_cutout_read (const char *path, const AclipCutoutRequest *request, float *image,
                            AclipCutoutInfo *info, gint64 *n_replaced, GError **error);

G_END_DECLS
