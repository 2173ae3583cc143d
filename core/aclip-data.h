/* aclip-data.h — locating the files the product ships in data/ (templates, filters, priors).
 *
 * Search order: $ACLIP_DATA_DIR, the installed data folder, then the source tree's data/
 * (so an uninstalled build and the tests find them without installing).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Returns the full path of `relative` (e.g. "sed/kcorrect-default-v4.fits"), or NULL with an
 * error listing the folders searched. */
char *aclip_data_find (const char *relative, GError **error);

G_END_DECLS
