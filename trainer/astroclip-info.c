/* astroclip info — a summary of a catalogue: its size, what it holds, and the range of every
 * numeric column (read one column at a time, never the images). */
#include "astroclip-commands.h"

#include "aclip-catalogue.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static gboolean
print_column_summary (AclipCatalogue *catalogue, const char *name, double *values,
                      GError **error)
{
  gint64 n_rows = aclip_catalogue_n_rows (catalogue);
  if (!aclip_catalogue_read_column (catalogue, name, 0, n_rows, values, error))
    return FALSE;
  gint64 n_finite = 0;
  for (gint64 i = 0; i < n_rows; i++)
    if (isfinite (values[i]))
      values[n_finite++] = values[i];
  /* units such as "Å" are wider in bytes than on the terminal */
  g_autoptr (GString) line = g_string_new ("  ");
  astroclip_append_column (line, name, -14);
  g_string_append_c (line, ' ');
  astroclip_append_column (line, aclip_catalogue_column_unit (catalogue, name), -14);
  if (n_finite == 0) {
    printf ("%s %s\n", line->str, _("no finite values"));
    return TRUE;
  }
  qsort (values, n_finite, sizeof *values, compare_doubles);
  printf ("%s %12.5g %12.5g %12.5g %12.5g %12.5g %8" PRId64 "\n", line->str, values[0],
          values[n_finite / 10], values[n_finite / 2], values[(n_finite * 9) / 10],
          values[n_finite - 1], n_rows - n_finite);
  return TRUE;
}

int
astroclip_info_main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new (_("CATALOGUE.fits"));
  g_option_context_set_summary (context,
                                _("Prints what a galaxy catalogue holds and the range of each "
                                  "numeric column (minimum, 10th percentile, median, 90th "
                                  "percentile, maximum, number of NaN)."));
  if (!astroclip_parse_options (context, &argc, &argv, "info"))
    return 2;
  if (argc != 2) {
    g_printerr (_("astroclip info: give one catalogue file\n"));
    return 2;
  }

  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (argv[1], &error);
  if (catalogue == NULL)
    return astroclip_report_error ("info", error);

  GStatBuf info;
  double size_mb = g_stat (argv[1], &info) == 0 ? info.st_size / 1e6 : NAN;
  gint64 n_rows = aclip_catalogue_n_rows (catalogue);
  printf (_("%s: %" PRId64 " galaxies, %.1f MB\n"), argv[1], n_rows, size_mb);
  if (aclip_catalogue_has_images (catalogue))
    printf (_("  images: g, r, z, %d×%d pixels at %.3f″/pixel (%.1f″ across)\n"),
            aclip_catalogue_image_width (catalogue), aclip_catalogue_image_height (catalogue),
            aclip_catalogue_pixscale (catalogue),
            aclip_catalogue_image_width (catalogue) * aclip_catalogue_pixscale (catalogue));
  else
    printf ("%s\n", _("  images: none"));
  int n_wave = aclip_catalogue_n_wave (catalogue);
  if (n_wave > 0) {
    const double *wavelength = aclip_catalogue_wavelength (catalogue);
    printf (_("  spectra: %d pixels, %.1f–%.1f Å (vacuum)\n"), n_wave, wavelength[0],
            wavelength[n_wave - 1]);
  } else {
    printf ("%s\n", _("  spectra: none"));
  }

  g_autoptr (GString) heading = g_string_new ("\n  ");
  astroclip_append_column (heading, _("column"), -14);
  g_string_append_c (heading, ' ');
  astroclip_append_column (heading, _("unit"), -14);
  const char *statistics[] = { _("min"), _("p10"), _("median"), _("p90"), _("max") };
  for (gsize i = 0; i < G_N_ELEMENTS (statistics); i++) {
    g_string_append_c (heading, ' ');
    astroclip_append_column (heading, statistics[i], 12);
  }
  g_string_append_c (heading, ' ');
  astroclip_append_column (heading, _("NaN"), 8);
  printf ("%s\n", heading->str);
  g_autofree double *values = g_new (double, MAX (n_rows, 1));
  for (const char *const *name = aclip_catalogue_numeric_columns (catalogue); *name; name++)
    if (!print_column_summary (catalogue, *name, values, &error))
      return astroclip_report_error ("info", error);
  return 0;
}
