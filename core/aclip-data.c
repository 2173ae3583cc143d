#include "aclip-data.h"

#include <glib/gi18n-lib.h>

#include "aclip-error.h"

char *
aclip_data_find (const char *relative, GError **error)
{
  g_return_val_if_fail (relative != NULL, NULL);

  const char *from_env = g_getenv ("ACLIP_DATA_DIR");
  const char *folders[] = { from_env, ACLIP_INSTALLED_DATADIR, ACLIP_SOURCE_DATADIR };
  g_autoptr (GString) searched = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (folders); i++) {
    if (folders[i] == NULL || folders[i][0] == '\0')
      continue;
    g_autofree char *candidate = g_build_filename (folders[i], relative, NULL);
    if (g_file_test (candidate, G_FILE_TEST_IS_REGULAR))
      return g_steal_pointer (&candidate);
    g_string_append_printf (searched, "%s%s", searched->len ? ", " : "", folders[i]);
  }
  g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
               _("data file %s not found (searched %s; set ACLIP_DATA_DIR to the data folder)"),
               relative, searched->str);
  return NULL;
}
