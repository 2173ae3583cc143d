/* main.c — galaxy-viewer: sets up gettext and runs the application (libgalaxyviewer).
 *
 * Run from the build tree, it finds its translations, settings schema and plugins there
 * (gv_application_is_uninstalled), so `<build>/ui/galaxy-viewer` works without installing.
 */
#include "gv-application.h"
#include "gv-config.h"

#include <glib/gi18n.h>
#include <locale.h>

int
main (int argc, char **argv)
{
  const char *localedir = LOCALEDIR;

  if (gv_application_is_uninstalled ())
    {
      /* meson's i18n module compiles po/<lang>.po into <build>/po/<lang>/LC_MESSAGES. */
      localedir = GV_BUILD_ROOT "/po";
      g_setenv ("GSETTINGS_SCHEMA_DIR", GV_BUILD_ROOT "/data", FALSE);
    }

  setlocale (LC_ALL, "");
  /* CFITSIO parses header numbers with the C library's conversions, which follow LC_NUMERIC:
   * under a decimal-comma locale it rejects TDIMn values. Numbers keep the decimal point. */
  setlocale (LC_NUMERIC, "C");
  bindtextdomain (GETTEXT_PACKAGE, localedir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_autoptr (GvApplication) application = gv_application_new ();
  return g_application_run (G_APPLICATION (application), argc, argv);
}
