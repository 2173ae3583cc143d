/* reference-conv.h — plain double-precision versions of the convolutional kernels, written
 * straight from their definitions (loops over every index, no im2col, no fused formulas),
 * for tests/test-nn-conv.cc. Shapes are those of core/aclip-nn-conv.h; arrays are flat
 * std::vector<double> in the same row-major layouts. Backward functions return fresh
 * gradients (they do not accumulate). */
#pragma once

#include <vector>

extern "C" {
#include "aclip-nn-conv.h"
#include "aclip-resblock.h"
}

using RefArray = std::vector<double>;

/* ---- Convolution ---- */

/* output [B, OC, OH, OW] from input [B, IC, H, W], weight [OC, IC, KH, KW], bias [OC] or
 * empty. */
RefArray ref_conv2d_forward (const AclipConv2dShape &shape, const RefArray &input,
                             const RefArray &weight, const RefArray &bias);

struct RefConv2dGradients
{
  RefArray dinput;  /* [B, IC, H, W] */
  RefArray dweight; /* [OC, IC, KH, KW] */
  RefArray dbias;   /* [OC] */
};
RefConv2dGradients ref_conv2d_backward (const AclipConv2dShape &shape, const RefArray &doutput,
                                        const RefArray &input, const RefArray &weight);

/* ---- Batch normalisation ---- */

struct RefNormState
{
  RefArray mean;   /* BN: [C]; GN: [B, G] */
  RefArray invstd; /* same shape */
};

/* Training: batch statistics (saved in `state`), running_mean / running_var [C] updated when
 * not empty. Evaluation: running statistics, `state` gets them as mean / invstd. */
RefArray ref_batchnorm2d_forward (const RefArray &input, const RefArray &weight,
                                  const RefArray &bias, int batch, int channels, int spatial,
                                  double eps, double momentum, bool training,
                                  RefArray &running_mean, RefArray &running_var,
                                  RefNormState &state);

struct RefNormGradients
{
  RefArray dinput;  /* [B, C, H, W] */
  RefArray dweight; /* [C] */
  RefArray dbias;   /* [C] */
};
/* Textbook chain rule through x̂, the variance and the mean (training), or through x̂ alone
 * (evaluation). weight empty means γ = 1. */
RefNormGradients ref_batchnorm2d_backward (const RefArray &doutput, const RefArray &input,
                                           const RefArray &weight, const RefNormState &state,
                                           int batch, int channels, int spatial, bool training);

/* ---- Group normalisation ---- */

RefArray ref_groupnorm_forward (const RefArray &input, const RefArray &weight, const RefArray &bias,
                                int batch, int channels, int spatial, int groups, double eps,
                                RefNormState &state);
RefNormGradients ref_groupnorm_backward (const RefArray &doutput, const RefArray &input,
                                         const RefArray &weight, const RefNormState &state,
                                         int batch, int channels, int spatial, int groups);

/* ---- Pooling ---- */

/* output [B, C, OH, OW]; argmax (as double) the index ih·W + iw of the first maximum. */
RefArray ref_maxpool2d_forward (const AclipPool2dShape &shape, const RefArray &input,
                                RefArray &argmax);
RefArray ref_maxpool2d_backward (const AclipPool2dShape &shape, const RefArray &doutput,
                                 const RefArray &argmax);
RefArray ref_avgpool2d_forward (const AclipPool2dShape &shape, bool count_include_pad,
                                const RefArray &input);
RefArray ref_avgpool2d_backward (const AclipPool2dShape &shape, bool count_include_pad,
                                 const RefArray &doutput);
RefArray ref_global_avgpool_forward (const RefArray &input, int batch, int channels, int spatial);
RefArray ref_global_avgpool_backward (const RefArray &doutput, int batch, int channels,
                                      int spatial);

/* ---- The ResNet basic block ---- */

struct RefResBlockParams
{
  RefArray conv1_weight, bn1_weight, bn1_bias;
  RefArray conv2_weight, bn2_weight, bn2_bias;
  RefArray shortcut_weight, shortcut_bn_weight, shortcut_bn_bias; /* empty: identity */
};

struct RefResBlockRunning
{
  RefArray bn1_mean, bn1_var, bn2_mean, bn2_var, shortcut_mean, shortcut_var;
};

/* Forward saves the intermediate values in `tape` for the backward. */
struct RefResBlockTape
{
  RefArray conv1_out, bn1_out, relu1_out, conv2_out, bn2_out, shortcut_conv_out, shortcut_out, sum;
  RefNormState bn1, bn2, shortcut_bn;
};

RefArray ref_resblock_forward (const AclipResBlockShape &shape, const RefArray &input,
                               const RefResBlockParams &params, RefResBlockRunning &running,
                               double eps, double momentum, bool training, RefResBlockTape &tape);

struct RefResBlockGradients
{
  RefArray dinput;
  RefResBlockParams dparams;
};
RefResBlockGradients ref_resblock_backward (const AclipResBlockShape &shape,
                                            const RefArray &doutput, const RefArray &input,
                                            const RefResBlockParams &params,
                                            const RefResBlockTape &tape, bool training);
