/* aclip-error.h — the error domain of libaclip.
 *
 * Every fallible function of the core library takes `GError **error` last and returns
 * FALSE/NULL on failure; the message always names the file (when there is one) and the
 * problem, in words a user can act on.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_ERROR (aclip_error_quark ())

typedef enum
{
  ACLIP_ERROR_IO,          /* the file cannot be opened, read or written */
  ACLIP_ERROR_FORMAT,      /* the file is not of the expected kind (wrong HDU, not FITS, ...) */
  ACLIP_ERROR_SHAPE,       /* an array or column has the wrong shape or type */
  ACLIP_ERROR_MISSING,     /* a required HDU, column or keyword is absent */
  ACLIP_ERROR_VALUE,       /* a value is out of range or not finite where it must be */
  ACLIP_ERROR_VERSION,     /* an unknown format version */
  ACLIP_ERROR_INVALID_ARG, /* the caller asked for something impossible */
  ACLIP_ERROR_CANCELLED,   /* a progress callback asked to stop */
  ACLIP_ERROR_EMPTY,       /* the data is readable but holds nothing usable (a spectrum with no
                            * valid pixel): callers may skip it */
} AclipError;

GQuark aclip_error_quark (void);

G_END_DECLS
