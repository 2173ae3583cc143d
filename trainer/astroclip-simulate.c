/* astroclip simulate — a catalogue of simulated galaxies with paired g, r, z images and DESI-like
 * spectra, from the physical simulator in core/aclip-simulate.h (DESIGN §4).
 *
 * The output appears only when the whole catalogue is written: an error, or an interrupt
 * (Ctrl-C, SIGTERM), stops the rendering threads and deletes the temporary file.
 */
#include "astroclip-commands.h"

#include "aclip-error.h"
#include "aclip-simulate.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

typedef struct
{
  gboolean print_progress;
  gint64 last_printed;
} Progress;

static volatile sig_atomic_t interrupted = 0;

static void
on_interrupt (int signal_number)
{
  interrupted = 1;
}

static gboolean
report_progress (gint64 n_done, gint64 n_total, gpointer user_data)
{
  Progress *progress = user_data;
  /* Machine-readable: "progress DONE TOTAL", at most every 1% and at the end. */
  if (progress->print_progress &&
      (n_done == n_total || n_done - progress->last_printed >= MAX (1, n_total / 100))) {
    printf ("progress %" PRId64 " %" PRId64 "\n", n_done, n_total);
    fflush (stdout);
    progress->last_printed = n_done;
  }
  return !interrupted;
}

static char *
command_line (int argc, char **argv)
{
  GString *text = g_string_new ("astroclip");
  for (int i = 0; i < argc; i++) {
    g_autofree char *quoted = g_shell_quote (argv[i]);
    g_string_append_printf (text, " %s", strpbrk (argv[i], " '\"\\$") ? quoted : argv[i]);
  }
  return g_string_free (text, FALSE);
}

int
astroclip_simulate_main (int argc, char **argv)
{
  g_autofree char *history = command_line (argc, argv);
  AclipSimulateParams params;
  aclip_simulate_params_init (&params);
  gint64 n_galaxies = 1000;
  gint64 seed = 1;
  g_autofree char *out_path = NULL;
  gboolean no_spectra = FALSE, quiet = FALSE;
  Progress progress = { FALSE, 0 };

  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path,
      N_("Catalogue to write (replaced only when the simulation succeeds)"), N_("FILE") },
    { "n", 'n', 0, G_OPTION_ARG_INT64, &n_galaxies, N_("Number of galaxies (default 1000)"),
      N_("N") },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed,
      N_("Random seed; the same seed gives the same file (default 1)"), N_("SEED") },
    { "image-size", 0, 0, G_OPTION_ARG_INT, &params.image_size,
      N_("Cutout size in pixels of 0.262″, 0 for no images (default 152)"), N_("PX") },
    { "image-quantum", 0, 0, G_OPTION_ARG_DOUBLE, &params.image_quantum,
      N_("Store images as 16-bit integers in steps of this many nanomaggies (default 0: "
          "32-bit floats; 0.002 suits Legacy Surveys depth)"),
      N_("NMGY") },
    { "no-spectra", 0, 0, G_OPTION_ARG_NONE, &no_spectra, N_("Write images only"), NULL },
    { "threads", 'j', 0, G_OPTION_ARG_INT, &params.n_threads,
      N_("Rendering threads (default: one per processor)"), N_("N") },
    { "neighbours", 0, 0, G_OPTION_ARG_DOUBLE, &params.neighbour_fraction,
      N_("Fraction of cutouts with a neighbouring galaxy (default 0.15)"), N_("FRACTION") },
    { "stars", 0, 0, G_OPTION_ARG_DOUBLE, &params.star_fraction,
      N_("Fraction of cutouts with a star (default 0.10)"), N_("FRACTION") },
    { "exposure", 0, 0, G_OPTION_ARG_DOUBLE, &params.exposure_time,
      N_("Spectroscopic exposure in seconds (default 180, DESI’s bright survey)"), N_("S") },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &progress.print_progress,
      N_("Print “progress DONE TOTAL” lines on standard output"), NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, N_("Print nothing on success"), NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_option_context_set_summary (
      context, _("Simulates a catalogue of galaxies with g, r, z images and DESI-like spectra "
                  "made from the same physical model: kcorrect templates fitted to real SDSS "
                  "galaxies, COSMOS shapes, Legacy Surveys depth and seeing. All truth is "
                  "written as columns."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!astroclip_parse_options (context, &argc, &argv, "simulate"))
    return 2;
  if (argc > 1) {
    g_printerr (_("astroclip simulate: unexpected argument “%s”\n"), argv[1]);
    return 2;
  }
  if (out_path == NULL) {
    g_printerr ("%s\n", _("astroclip simulate: give the output file with --out FILE"));
    return 2;
  }
  if (n_galaxies < 1 || seed < 0 || params.image_size < 0 || params.image_size > 4096 ||
      params.image_quantum < 0 || params.n_threads < 0 || !(params.exposure_time > 0) ||
      !(params.neighbour_fraction >= 0 && params.neighbour_fraction <= 1) ||
      !(params.star_fraction >= 0 && params.star_fraction <= 1) ||
      (no_spectra && params.image_size == 0)) {
    g_printerr ("%s\n",
                _("astroclip simulate: --n must be positive, --seed not negative, --image-size "
                   "0–4096 (not 0 with --no-spectra), --image-quantum and --threads not "
                   "negative, --exposure positive and fractions within 0–1"));
    return 2;
  }
  params.seed = (guint64) seed;
  params.spectra = !no_spectra;

  struct sigaction action;
  memset (&action, 0, sizeof action);
  action.sa_handler = on_interrupt;
  sigaction (SIGINT, &action, NULL);
  sigaction (SIGTERM, &action, NULL);

  g_autoptr (GError) error = NULL;
  g_autoptr (AclipSimulator) simulator = aclip_simulator_new (&error);
  if (simulator == NULL)
    return astroclip_report_error ("simulate", error);
  AclipSimulateSummary summary = { 0 };
  if (!aclip_simulator_write_catalogue (simulator, &params, out_path, n_galaxies, history,
                                        report_progress, &progress, &summary, &error)) {
    if (interrupted && g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_CANCELLED)) {
      g_printerr (_("astroclip simulate: interrupted; %s was not written\n"), out_path);
      return 1;
    }
    return astroclip_report_error ("simulate", error);
  }

  if (summary.n_clipped > 0)
    g_printerr (_("astroclip simulate: %" PRId64 " image pixels were clipped by the "
                   "16-bit storage (raise --image-quantum to avoid it)\n"),
                summary.n_clipped);
  if (!quiet) {
    GStatBuf info;
    double megabytes = g_stat (out_path, &info) == 0 ? info.st_size / 1e6 : 0.0;
    printf (_("wrote %" PRId64 " galaxies to %s (%.1f MB) in %.1f s, %.0f galaxies/s\n"),
            summary.n_rows, out_path, megabytes, summary.seconds,
            summary.seconds > 0 ? summary.n_rows / summary.seconds : 0.0);
  }
  return 0;
}
