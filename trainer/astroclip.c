/* astroclip — the command-line program: simulation, import, training, embedding, search and
 * evaluation. The viewer's plugin runs it as a subprocess; it is usable alone on a server. */
#include "astroclip-commands.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

typedef struct
{
  const char *name;
  int (*main) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "simulate", astroclip_simulate_main, N_("Simulate a catalogue of paired galaxy images and spectra") },
  { "import", astroclip_import_main, N_("Build a catalogue from survey cutouts and spectra") },
  { "info", astroclip_info_main, N_("Summarise a catalogue") },
  { "search", astroclip_search_main, N_("Find the galaxies most similar to a galaxy") },
  { "eval", astroclip_eval_main, N_("Evaluate embeddings: k-NN regression, retrieval, baselines") },
  { "pretrain-images", astroclip_pretrain_images_main, N_("Pretrain the image encoder with augmented views (SimCLR)") },
  { "pretrain-spectra", astroclip_pretrain_spectra_main, N_("Pretrain the spectrum encoder by masked reconstruction") },
  { "align", astroclip_align_main, N_("Align the two pretrained encoders in a shared embedding space") },
  { "embed", astroclip_embed_main, N_("Embed every galaxy of a catalogue with an aligned model") },
  { "export-model", astroclip_export_model_main, N_("Copy an aligned model without its training state, for shipping") },
  { "train-supervised", astroclip_train_supervised_main, N_("Train the supervised baseline: the image encoder on redshift and log M*") },
};

int
astroclip_report_error (const char *command, const GError *error)
{
  g_printerr ("astroclip %s: %s\n", command, error->message);
  return 1;
}

void
astroclip_append_column (GString *line, const char *text, int width)
{
  int pad = ABS (width) - (int) g_utf8_strlen (text, -1);
  if (width > 0)
    for (int i = 0; i < pad; i++)
      g_string_append_c (line, ' ');
  g_string_append (line, text);
  if (width < 0)
    for (int i = 0; i < pad; i++)
      g_string_append_c (line, ' ');
}

gboolean
astroclip_parse_options (GOptionContext *context, int *argc, char ***argv, const char *command)
{
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, argc, argv, &error)) {
    g_printerr ("astroclip %s: %s\n", command, error->message);
    g_printerr (_("Try “astroclip %s --help”.\n"), command);
    return FALSE;
  }
  return TRUE;
}

gboolean
astroclip_train_parse_command_line (GOptionContext *context, const GOptionEntry *entries,
                                    AstroclipTrainOptions *options, int *argc, char ***argv,
                                    const char *stage)
{
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, astroclip_train_option_entries (options),
                                     GETTEXT_PACKAGE);
  if (!astroclip_parse_options (context, argc, argv, stage))
    return FALSE;
  g_autoptr (GError) error = NULL;
  if (!astroclip_train_options_finish (options, &error)) {
    astroclip_report_error (stage, error);
    return FALSE;
  }
  return TRUE;
}

static void
print_usage (FILE *stream)
{
  fprintf (stream, "%s\n\n", _("Usage: astroclip COMMAND [OPTION…]"));
  fprintf (stream, "%s\n", _("Commands:"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (stream, "  %-16s %s\n", commands[i].name, _(commands[i].summary));
  fprintf (stream, "\n%s\n", _("Run “astroclip COMMAND --help” for a command’s options."));
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  /* CFITSIO reads and writes header numbers with the C library's conversions: under a locale
   * with a decimal comma it rejects TDIMn values and writes unreadable keywords. Messages are
   * translated; numbers keep the decimal point, as FITS and the command line have them. */
  setlocale (LC_NUMERIC, "C");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
      strcmp (argv[1], "help") == 0) {
    print_usage (stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp (argv[1], "--version") == 0) {
    printf ("astroclip %s\n", PACKAGE_VERSION);
    return 0;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0) {
      /* GOptionContext's usage lines then read “astroclip import [OPTION…]”. */
      g_autofree char *program_name = g_strdup_printf ("astroclip %s", commands[i].name);
      g_set_prgname (program_name);
      return commands[i].main (argc - 1, argv + 1);
    }

  fprintf (stderr, _("astroclip: unknown command “%s”\n\n"), argv[1]);
  print_usage (stderr);
  return 2;
}
