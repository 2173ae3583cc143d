/* aclip-nn-vector-avx2.c — the AVX2+FMA variant of the loops in aclip-nn-vector.inc, chosen at
 * run time on CPUs that have both (aclip_nn_vector_kernels). The target pragma comes before
 * every include so that the vector width (ACLIP_VEC_WIDTH, from __AVX__) is 8 here. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#pragma GCC target("avx2,fma")

#include "aclip-nn-private.h"

#include <math.h>

#define ACLIP_NN_VARIANT_NAME(name) avx2_##name
#define ACLIP_NN_VARIANT_TABLE      aclip_nn_vector_kernels_avx2
#include "aclip-nn-vector.inc"
#else
/* Nothing to build on other targets; ISO C wants a declaration in every file. */
typedef int aclip_nn_vector_avx2_unused;
#endif
