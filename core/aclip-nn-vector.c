/* aclip-nn-vector.c — the baseline (x86-64 SSE2, or whatever the build targets) variant of
 * the instruction-set-dependent loops in aclip-nn-vector.inc. */
#include "aclip-nn-private.h"

#include <math.h>

#define ACLIP_NN_VARIANT_NAME(name) baseline_##name
#define ACLIP_NN_VARIANT_TABLE      aclip_nn_vector_kernels_baseline
#include "aclip-nn-vector.inc"
