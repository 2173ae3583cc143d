/* gv-galaxy.h — one galaxy of an open catalogue: what the detail view shows and what window
 * addins receive with `selection-changed`.
 *
 * Immutable once made (by gv_catalogue_read_galaxy), so it may be passed between threads. It
 * keeps its catalogue alive. Arrays are owned by the galaxy.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct _GvCatalogue GvCatalogue;

#define GV_TYPE_GALAXY (gv_galaxy_get_type ())
G_DECLARE_FINAL_TYPE (GvGalaxy, gv_galaxy, GV, GALAXY, GObject)

GvCatalogue *gv_galaxy_get_catalogue (GvGalaxy *self);
gint64 gv_galaxy_get_row (GvGalaxy *self); /* 0-based row in the catalogue */
gint64 gv_galaxy_get_id (GvGalaxy *self);
double gv_galaxy_get_ra (GvGalaxy *self);  /* degrees */
double gv_galaxy_get_dec (GvGalaxy *self); /* degrees */
double gv_galaxy_get_z (GvGalaxy *self);   /* NaN when unknown */
double gv_galaxy_get_logmstar (GvGalaxy *self); /* NaN when unknown */
/* Any numeric column of the galaxy's row; NaN when the catalogue has no such column. */
double gv_galaxy_get_column (GvGalaxy *self, const char *name);

/* The g,r,z flux cube in nanomaggies, 3×H×W band-major (image[(b*H + y)*W + x]), or NULL when
 * it was not read or the catalogue has no images. */
const float *gv_galaxy_get_image (GvGalaxy *self, int *height, int *width);
/* The spectrum (1e-17 erg/s/cm²/Å) and its inverse variance (0 marks bad pixels), n_wave
 * values on gv_galaxy_get_wavelength's grid; NULL when not read or absent. */
const float *gv_galaxy_get_spectrum (GvGalaxy *self, int *n_wave);
const float *gv_galaxy_get_spectrum_ivar (GvGalaxy *self);
const double *gv_galaxy_get_wavelength (GvGalaxy *self); /* vacuum Å, the catalogue's grid */

/* For gv-catalogue.c: takes ownership of the arrays (g_free'd). */
GvGalaxy *gv_galaxy_new (GvCatalogue *catalogue, gint64 row, gint64 id, double ra, double dec,
                         double z, double logmstar, float *image, int height, int width,
                         float *spectrum, float *spectrum_ivar, int n_wave);

G_END_DECLS
