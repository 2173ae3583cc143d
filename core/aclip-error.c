#include "aclip-error.h"

G_DEFINE_QUARK (aclip-error-quark, aclip_error)
