/* aclip-cosmology.h — distances in a flat ΛCDM universe (no radiation).
 *
 * The simulator uses H0 = 70 km/s/Mpc, Ωm = 0.3 (aclip_cosmology_new_default). Distances are
 * tabulated once up to z_max by Simpson's rule and interpolated (relative error < 1e-7);
 * beyond z_max they are integrated directly.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _AclipCosmology AclipCosmology;

AclipCosmology *aclip_cosmology_new_flat (double h0, double omega_m, double z_max);
/* H0 = 70, Ωm = 0.3, tabulated to z = 3. */
AclipCosmology *aclip_cosmology_new_default (void);
void aclip_cosmology_free (AclipCosmology *cosmology);

/* Line-of-sight comoving distance in Mpc; z ≥ 0. */
double aclip_cosmology_comoving_distance (const AclipCosmology *cosmology, double z);
/* Luminosity distance (1+z)·D_C in Mpc. */
double aclip_cosmology_luminosity_distance (const AclipCosmology *cosmology, double z);
/* Angular-diameter distance D_C/(1+z) in Mpc. */
double aclip_cosmology_angular_diameter_distance (const AclipCosmology *cosmology, double z);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipCosmology, aclip_cosmology_free)

G_END_DECLS
