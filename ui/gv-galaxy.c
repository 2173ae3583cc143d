/* gv-galaxy.c — one galaxy read from an open catalogue (gv-galaxy.h).
 *
 * A plain immutable value object: scalar fields copied from the row, optional arrays owned by
 * the galaxy, and a reference on the catalogue so that columns and the wavelength grid can be
 * looked up for as long as the galaxy lives.
 */
#include "gv-galaxy.h"

#include "gv-catalogue.h"

#include <math.h>

struct _GvGalaxy
{
  GObject parent_instance;

  GvCatalogue *catalogue; /* owned reference */
  gint64 row, id;
  double ra, dec, z, logmstar;
  float *image; /* 3×height×width, or NULL */
  int height, width;
  float *spectrum; /* n_wave, or NULL */
  float *spectrum_ivar;
  int n_wave;
};

G_DEFINE_FINAL_TYPE (GvGalaxy, gv_galaxy, G_TYPE_OBJECT)

static void
gv_galaxy_finalize (GObject *object)
{
  GvGalaxy *self = GV_GALAXY (object);

  g_clear_object (&self->catalogue);
  g_clear_pointer (&self->image, g_free);
  g_clear_pointer (&self->spectrum, g_free);
  g_clear_pointer (&self->spectrum_ivar, g_free);

  G_OBJECT_CLASS (gv_galaxy_parent_class)->finalize (object);
}

static void
gv_galaxy_class_init (GvGalaxyClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gv_galaxy_finalize;
}

static void
gv_galaxy_init (GvGalaxy *self)
{
  self->z = NAN;
  self->logmstar = NAN;
}

GvGalaxy *
gv_galaxy_new (GvCatalogue *catalogue, gint64 row, gint64 id, double ra, double dec, double z,
               double logmstar, float *image, int height, int width, float *spectrum,
               float *spectrum_ivar, int n_wave)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), NULL);
  g_return_val_if_fail (row >= 0, NULL);

  GvGalaxy *self = g_object_new (GV_TYPE_GALAXY, NULL);
  self->catalogue = g_object_ref (catalogue);
  self->row = row;
  self->id = id;
  self->ra = ra;
  self->dec = dec;
  self->z = z;
  self->logmstar = logmstar;
  self->image = image;
  self->height = image != NULL ? height : 0;
  self->width = image != NULL ? width : 0;
  self->spectrum = spectrum;
  self->spectrum_ivar = spectrum_ivar;
  self->n_wave = spectrum != NULL ? n_wave : 0;
  return self;
}

GvCatalogue *
gv_galaxy_get_catalogue (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NULL);
  return self->catalogue;
}

gint64
gv_galaxy_get_row (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), -1);
  return self->row;
}

gint64
gv_galaxy_get_id (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), -1);
  return self->id;
}

double
gv_galaxy_get_ra (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NAN);
  return self->ra;
}

double
gv_galaxy_get_dec (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NAN);
  return self->dec;
}

double
gv_galaxy_get_z (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NAN);
  return self->z;
}

double
gv_galaxy_get_logmstar (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NAN);
  return self->logmstar;
}

double
gv_galaxy_get_column (GvGalaxy *self, const char *name)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NAN);
  g_return_val_if_fail (name != NULL, NAN);

  const double *values = gv_catalogue_get_column (self->catalogue, name);
  return values != NULL ? values[self->row] : NAN;
}

const float *
gv_galaxy_get_image (GvGalaxy *self, int *height, int *width)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NULL);
  if (height != NULL)
    *height = self->height;
  if (width != NULL)
    *width = self->width;
  return self->image;
}

const float *
gv_galaxy_get_spectrum (GvGalaxy *self, int *n_wave)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NULL);
  if (n_wave != NULL)
    *n_wave = self->n_wave;
  return self->spectrum;
}

const float *
gv_galaxy_get_spectrum_ivar (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NULL);
  return self->spectrum_ivar;
}

const double *
gv_galaxy_get_wavelength (GvGalaxy *self)
{
  g_return_val_if_fail (GV_IS_GALAXY (self), NULL);
  return gv_catalogue_get_wavelength (self->catalogue);
}
