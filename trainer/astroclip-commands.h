/* astroclip-commands.h — the subcommands of the astroclip program.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and returns
 * the process exit status: 0 on success, 1 on a failure it has reported on stderr, 2 on a
 * usage error. Each parses its own options with GOptionContext, so `astroclip X --help` works.
 */
#pragma once

#include <glib.h>

#include "astroclip-train.h"

G_BEGIN_DECLS

int astroclip_info_main (int argc, char **argv);
int astroclip_import_main (int argc, char **argv);
int astroclip_simulate_main (int argc, char **argv);
int astroclip_search_main (int argc, char **argv);
int astroclip_eval_main (int argc, char **argv);
int astroclip_pretrain_images_main (int argc, char **argv);
int astroclip_pretrain_spectra_main (int argc, char **argv);
int astroclip_align_main (int argc, char **argv);
int astroclip_embed_main (int argc, char **argv);
int astroclip_export_model_main (int argc, char **argv);
int astroclip_train_supervised_main (int argc, char **argv);

/* Prints "astroclip <command>: <message>" on stderr and returns 1 (for `return report…`). */
int astroclip_report_error (const char *command, const GError *error);
/* Parses options; on failure prints the problem and returns FALSE (exit 2). */
gboolean astroclip_parse_options (GOptionContext *context, int *argc, char ***argv,
                                  const char *command);

/* The whole command line of a training command: adds the command's entries and the common
 * ones to `context`, parses and finishes them. A problem is printed as "astroclip STAGE: …"
 * and FALSE returned: a usage error (exit 2). */
gboolean astroclip_train_parse_command_line (GOptionContext *context, const GOptionEntry *entries,
                                             AstroclipTrainOptions *options, int *argc,
                                             char ***argv, const char *stage);

/* Appends text padded with spaces to width characters — on the left when width > 0 (right-
 * aligned), on the right when width < 0 — counting characters, not bytes: translated headings
 * and "—" are wider in bytes than on the terminal. */
void astroclip_append_column (GString *line, const char *text, int width);

/* TRUE when an image [n] (a flux cube) has a finite pixel other than 0: a galaxy whose image is
 * all zero or not finite has no image to embed or predict from (astroclip-embed.c). */
gboolean astroclip_image_present (const float *image, gsize n);

G_END_DECLS
