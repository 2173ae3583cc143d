/* astroclip export-model — an aligned checkpoint without its training state: the parameters and
 * the text section (configuration and training record) only, for shipping a model. The
 * optimiser's moments are two more copies of every trained tensor, which a model that is only
 * used for embedding never reads (docs/checkpoint.md). */
#include "astroclip-commands.h"

#include "aclip-checkpoint.h"
#include "aclip-model.h"

#include <glib/gi18n.h>

int
astroclip_export_model_main (int argc, char **argv)
{
  g_autofree char *model = NULL;
  g_autofree char *out = NULL;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
      N_("Checkpoint of astroclip align"), N_("FILE") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      N_("Checkpoint to write, without the optimiser state"), N_("FILE") },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                _("Writes a copy of an aligned model without its training state "
                                  "(AdamW moments): what embed, search and the viewer need, at a "
                                  "third of the size. It cannot be resumed."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!astroclip_parse_options (context, &argc, &argv, "export-model"))
    return 2;
  if (model == NULL || out == NULL || argc != 1) {
    g_printerr (_("astroclip export-model: give --model and --out\n"));
    return 2;
  }

  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (model, &error);
  if (checkpoint == NULL)
    return astroclip_report_error ("export-model", error);
  g_autoptr (AclipModel) loaded = aclip_model_load (model, 1, &error);
  if (loaded == NULL)
    return astroclip_report_error ("export-model", error);
  if (!aclip_checkpoint_save (out, aclip_checkpoint_get_text (checkpoint),
                              aclip_model_params (loaded), FALSE, NULL, NULL, &error))
    return astroclip_report_error ("export-model", error);
  g_print (_("wrote %s: the model of %s without its training state\n"), out, model);
  return 0;
}
