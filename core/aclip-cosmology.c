#include "aclip-cosmology.h"

#include <math.h>

#define SPEED_OF_LIGHT_KM_S 299792.458
#define TABLE_STEP          0.001 /* in z */

struct _AclipCosmology
{
  double hubble_distance; /* c/H0, Mpc */
  double omega_m;
  double z_max;
  int n_table;
  double *comoving; /* [n_table] D_C at z = i·TABLE_STEP, Mpc */
};

/* 1/E(z) for flat ΛCDM. */
static double
inverse_hubble (const AclipCosmology *cosmology, double z)
{
  double a3 = (1.0 + z) * (1.0 + z) * (1.0 + z);
  return 1.0 / sqrt (cosmology->omega_m * a3 + 1.0 - cosmology->omega_m);
}

/* ∫ dz/E from z0 to z1 by Simpson's rule with n (even) intervals. */
static double
integrate (const AclipCosmology *cosmology, double z0, double z1, int n)
{
  double h = (z1 - z0) / n;
  double sum = inverse_hubble (cosmology, z0) + inverse_hubble (cosmology, z1);
  for (int i = 1; i < n; i++)
    sum += (i % 2 ? 4.0 : 2.0) * inverse_hubble (cosmology, z0 + i * h);
  return sum * h / 3.0;
}

AclipCosmology *
aclip_cosmology_new_flat (double h0, double omega_m, double z_max)
{
  g_return_val_if_fail (h0 > 0 && omega_m >= 0 && omega_m <= 1 && z_max > 0, NULL);

  AclipCosmology *cosmology = g_new0 (AclipCosmology, 1);
  cosmology->hubble_distance = SPEED_OF_LIGHT_KM_S / h0;
  cosmology->omega_m = omega_m;
  cosmology->z_max = z_max;
  cosmology->n_table = (int) ceil (z_max / TABLE_STEP) + 1;
  cosmology->comoving = g_new (double, cosmology->n_table);
  cosmology->comoving[0] = 0.0;
  for (int i = 1; i < cosmology->n_table; i++)
    cosmology->comoving[i] =
        cosmology->comoving[i - 1] +
        cosmology->hubble_distance * integrate (cosmology, (i - 1) * TABLE_STEP, i * TABLE_STEP, 4);
  return cosmology;
}

AclipCosmology *
aclip_cosmology_new_default (void)
{
  return aclip_cosmology_new_flat (70.0, 0.3, 3.0);
}

void
aclip_cosmology_free (AclipCosmology *cosmology)
{
  if (cosmology == NULL)
    return;
  g_free (cosmology->comoving);
  g_free (cosmology);
}

double
aclip_cosmology_comoving_distance (const AclipCosmology *cosmology, double z)
{
  if (!(z > 0))
    return 0.0;
  double position = z / TABLE_STEP;
  int i = (int) position;
  if (i + 1 < cosmology->n_table) {
    /* Cubic Hermite interpolation with the exact derivative dD_C/dz = D_H/E(z). */
    double t = position - i;
    double d0 = cosmology->comoving[i], d1 = cosmology->comoving[i + 1];
    double m0 =
        cosmology->hubble_distance * inverse_hubble (cosmology, i * TABLE_STEP) * TABLE_STEP;
    double m1 =
        cosmology->hubble_distance * inverse_hubble (cosmology, (i + 1) * TABLE_STEP) * TABLE_STEP;
    double t2 = t * t, t3 = t2 * t;
    return (2 * t3 - 3 * t2 + 1) * d0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * d1 +
           (t3 - t2) * m1;
  }
  double base_z = (cosmology->n_table - 1) * TABLE_STEP;
  int n = 2 * (int) ceil ((z - base_z) / (2 * TABLE_STEP)) + 2;
  return cosmology->comoving[cosmology->n_table - 1] +
         cosmology->hubble_distance * integrate (cosmology, base_z, z, n);
}

double
aclip_cosmology_luminosity_distance (const AclipCosmology *cosmology, double z)
{
  return (1.0 + z) * aclip_cosmology_comoving_distance (cosmology, z);
}

double
aclip_cosmology_angular_diameter_distance (const AclipCosmology *cosmology, double z)
{
  return aclip_cosmology_comoving_distance (cosmology, z) / (1.0 + z);
}
