/* reference-conv.cc — double-precision reference kernels (see reference-conv.h). */
#include "reference-conv.h"

#include "test-support.h"

#include <cmath>
#include <limits>

/* ---- Convolution ---- */

RefArray
ref_conv2d_forward (const AclipConv2dShape &s, const RefArray &input, const RefArray &weight,
                    const RefArray &bias)
{
  int OH = aclip_conv2d_out_height (&s), OW = aclip_conv2d_out_width (&s);
  int B = s.batch, IC = s.in_channels, H = s.in_height, W = s.in_width, OC = s.out_channels;
  int KH = s.kernel_height, KW = s.kernel_width;
  RefArray output ((size_t) B * OC * OH * OW, 0.0);
  for (int b = 0; b < B; b++)
    for (int oc = 0; oc < OC; oc++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          double total = bias.empty () ? 0.0 : bias[oc];
          for (int ic = 0; ic < IC; ic++)
            for (int kh = 0; kh < KH; kh++)
              for (int kw = 0; kw < KW; kw++) {
                int ih = oh * s.stride_height - s.pad_height + kh;
                int iw = ow * s.stride_width - s.pad_width + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                  continue; /* zero padding */
                total += weight[(((size_t) oc * IC + ic) * KH + kh) * KW + kw] *
                         input[(((size_t) b * IC + ic) * H + ih) * W + iw];
              }
          output[(((size_t) b * OC + oc) * OH + oh) * OW + ow] = total;
        }
  return output;
}

RefConv2dGradients
ref_conv2d_backward (const AclipConv2dShape &s, const RefArray &doutput, const RefArray &input,
                     const RefArray &weight)
{
  int OH = aclip_conv2d_out_height (&s), OW = aclip_conv2d_out_width (&s);
  int B = s.batch, IC = s.in_channels, H = s.in_height, W = s.in_width, OC = s.out_channels;
  int KH = s.kernel_height, KW = s.kernel_width;
  RefConv2dGradients g;
  g.dinput.assign (input.size (), 0.0);
  g.dweight.assign (weight.size (), 0.0);
  g.dbias.assign (OC, 0.0);
  for (int b = 0; b < B; b++)
    for (int oc = 0; oc < OC; oc++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          double dy = doutput[(((size_t) b * OC + oc) * OH + oh) * OW + ow];
          g.dbias[oc] += dy;
          for (int ic = 0; ic < IC; ic++)
            for (int kh = 0; kh < KH; kh++)
              for (int kw = 0; kw < KW; kw++) {
                int ih = oh * s.stride_height - s.pad_height + kh;
                int iw = ow * s.stride_width - s.pad_width + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                  continue;
                size_t w_index = (((size_t) oc * IC + ic) * KH + kh) * KW + kw;
                size_t x_index = (((size_t) b * IC + ic) * H + ih) * W + iw;
                g.dweight[w_index] += dy * input[x_index];
                g.dinput[x_index] += dy * weight[w_index];
              }
        }
  return g;
}

/* ---- Batch normalisation ---- */

RefArray
ref_batchnorm2d_forward (const RefArray &input, const RefArray &weight, const RefArray &bias,
                         int batch, int channels, int spatial, double eps, double momentum,
                         bool training, RefArray &running_mean, RefArray &running_var,
                         RefNormState &state)
{
  double N = (double) batch * spatial;
  state.mean.assign (channels, 0.0);
  state.invstd.assign (channels, 0.0);
  RefArray output (input.size ());
  auto at = [&] (int b, int c, int i) { return ((size_t) b * channels + c) * spatial + i; };
  for (int c = 0; c < channels; c++) {
    double mean, variance;
    if (training) {
      double total = 0.0;
      for (int b = 0; b < batch; b++)
        for (int i = 0; i < spatial; i++)
          total += input[at (b, c, i)];
      mean = total / N;
      double squares = 0.0;
      for (int b = 0; b < batch; b++)
        for (int i = 0; i < spatial; i++)
          squares += (input[at (b, c, i)] - mean) * (input[at (b, c, i)] - mean);
      variance = squares / N; /* biased, for normalising */
      if (!running_mean.empty ()) {
        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1 - momentum) * running_var[c] + momentum * squares / (N - 1);
      }
    } else {
      mean = running_mean[c];
      variance = running_var[c];
    }
    state.mean[c] = mean;
    state.invstd[c] = 1.0 / std::sqrt (variance + eps);
    double gamma = weight.empty () ? 1.0 : weight[c], beta = bias.empty () ? 0.0 : bias[c];
    for (int b = 0; b < batch; b++)
      for (int i = 0; i < spatial; i++)
        output[at (b, c, i)] = gamma * (input[at (b, c, i)] - mean) * state.invstd[c] + beta;
  }
  return output;
}

RefNormGradients
ref_batchnorm2d_backward (const RefArray &doutput, const RefArray &input, const RefArray &weight,
                          const RefNormState &state, int batch, int channels, int spatial,
                          bool training)
{
  double N = (double) batch * spatial;
  RefNormGradients g;
  g.dinput.assign (input.size (), 0.0);
  g.dweight.assign (channels, 0.0);
  g.dbias.assign (channels, 0.0);
  auto at = [&] (int b, int c, int i) { return ((size_t) b * channels + c) * spatial + i; };
  for (int c = 0; c < channels; c++) {
    double mean = state.mean[c], invstd = state.invstd[c];
    double gamma = weight.empty () ? 1.0 : weight[c];
    /* y = γ·x̂ + β, x̂ = (x − μ)·(σ² + ε)^(−1/2) */
    double dvariance = 0.0, dmean = 0.0, sum_centred = 0.0;
    for (int b = 0; b < batch; b++)
      for (int i = 0; i < spatial; i++) {
        size_t k = at (b, c, i);
        double dxhat = doutput[k] * gamma;
        g.dbias[c] += doutput[k];
        g.dweight[c] += doutput[k] * (input[k] - mean) * invstd;
        dvariance += dxhat * (input[k] - mean) * -0.5 * invstd * invstd * invstd;
        dmean += -dxhat * invstd;
        sum_centred += input[k] - mean;
      }
    dmean += dvariance * -2.0 * sum_centred / N;
    for (int b = 0; b < batch; b++)
      for (int i = 0; i < spatial; i++) {
        size_t k = at (b, c, i);
        double dxhat = doutput[k] * gamma;
        g.dinput[k] = dxhat * invstd;
        if (training)
          g.dinput[k] += dvariance * 2.0 * (input[k] - mean) / N + dmean / N;
      }
  }
  return g;
}

/* ---- Group normalisation ---- */

RefArray
ref_groupnorm_forward (const RefArray &input, const RefArray &weight, const RefArray &bias,
                       int batch, int channels, int spatial, int groups, double eps,
                       RefNormState &state)
{
  int per_group = channels / groups;
  double M = (double) per_group * spatial;
  state.mean.assign ((size_t) batch * groups, 0.0);
  state.invstd.assign ((size_t) batch * groups, 0.0);
  RefArray output (input.size ());
  auto at = [&] (int b, int c, int i) { return ((size_t) b * channels + c) * spatial + i; };
  for (int b = 0; b < batch; b++)
    for (int g = 0; g < groups; g++) {
      double total = 0.0, squares = 0.0;
      for (int c = g * per_group; c < (g + 1) * per_group; c++)
        for (int i = 0; i < spatial; i++)
          total += input[at (b, c, i)];
      double mean = total / M;
      for (int c = g * per_group; c < (g + 1) * per_group; c++)
        for (int i = 0; i < spatial; i++)
          squares += (input[at (b, c, i)] - mean) * (input[at (b, c, i)] - mean);
      double invstd = 1.0 / std::sqrt (squares / M + eps);
      state.mean[(size_t) b * groups + g] = mean;
      state.invstd[(size_t) b * groups + g] = invstd;
      for (int c = g * per_group; c < (g + 1) * per_group; c++) {
        double gamma = weight.empty () ? 1.0 : weight[c];
        double beta = bias.empty () ? 0.0 : bias[c];
        for (int i = 0; i < spatial; i++)
          output[at (b, c, i)] = gamma * (input[at (b, c, i)] - mean) * invstd + beta;
      }
    }
  return output;
}

RefNormGradients
ref_groupnorm_backward (const RefArray &doutput, const RefArray &input, const RefArray &weight,
                        const RefNormState &state, int batch, int channels, int spatial, int groups)
{
  int per_group = channels / groups;
  double M = (double) per_group * spatial;
  RefNormGradients grads;
  grads.dinput.assign (input.size (), 0.0);
  grads.dweight.assign (channels, 0.0);
  grads.dbias.assign (channels, 0.0);
  auto at = [&] (int b, int c, int i) { return ((size_t) b * channels + c) * spatial + i; };
  for (int b = 0; b < batch; b++)
    for (int g = 0; g < groups; g++) {
      double mean = state.mean[(size_t) b * groups + g];
      double invstd = state.invstd[(size_t) b * groups + g];
      double dvariance = 0.0, dmean = 0.0, sum_centred = 0.0;
      for (int c = g * per_group; c < (g + 1) * per_group; c++) {
        double gamma = weight.empty () ? 1.0 : weight[c];
        for (int i = 0; i < spatial; i++) {
          size_t k = at (b, c, i);
          double dxhat = doutput[k] * gamma;
          grads.dbias[c] += doutput[k];
          grads.dweight[c] += doutput[k] * (input[k] - mean) * invstd;
          dvariance += dxhat * (input[k] - mean) * -0.5 * invstd * invstd * invstd;
          dmean += -dxhat * invstd;
          sum_centred += input[k] - mean;
        }
      }
      dmean += dvariance * -2.0 * sum_centred / M;
      for (int c = g * per_group; c < (g + 1) * per_group; c++) {
        double gamma = weight.empty () ? 1.0 : weight[c];
        for (int i = 0; i < spatial; i++) {
          size_t k = at (b, c, i);
          grads.dinput[k] =
              doutput[k] * gamma * invstd + dvariance * 2.0 * (input[k] - mean) / M + dmean / M;
        }
      }
    }
  return grads;
}

/* ---- Pooling ---- */

RefArray
ref_maxpool2d_forward (const AclipPool2dShape &s, const RefArray &input, RefArray &argmax)
{
  int OH = aclip_pool2d_out_height (&s), OW = aclip_pool2d_out_width (&s);
  int H = s.in_height, W = s.in_width;
  size_t planes = (size_t) s.batch * s.channels;
  RefArray output (planes * OH * OW);
  argmax.assign (output.size (), -1.0);
  for (size_t p = 0; p < planes; p++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        double best = -std::numeric_limits<double>::infinity ();
        int best_index = -1;
        for (int kh = 0; kh < s.kernel_height; kh++)
          for (int kw = 0; kw < s.kernel_width; kw++) {
            int ih = oh * s.stride_height - s.pad_height + kh;
            int iw = ow * s.stride_width - s.pad_width + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
              continue; /* padding never wins */
            double value = input[p * H * W + (size_t) ih * W + iw];
            if (best_index < 0 || value > best) {
              best = value;
              best_index = ih * W + iw;
            }
          }
        output[(p * OH + oh) * OW + ow] = best;
        argmax[(p * OH + oh) * OW + ow] = best_index;
      }
  return output;
}

RefArray
ref_maxpool2d_backward (const AclipPool2dShape &s, const RefArray &doutput, const RefArray &argmax)
{
  int OH = aclip_pool2d_out_height (&s), OW = aclip_pool2d_out_width (&s);
  size_t planes = (size_t) s.batch * s.channels, in_plane = (size_t) s.in_height * s.in_width;
  RefArray dinput (planes * in_plane, 0.0);
  for (size_t p = 0; p < planes; p++)
    for (int o = 0; o < OH * OW; o++)
      dinput[p * in_plane + (size_t) argmax[p * OH * OW + o]] += doutput[p * OH * OW + o];
  return dinput;
}

/* Calls visit (output index, input index or −1 for padding) for every window position, and
 * returns through `divisors` each window's divisor. */
template <typename Visit>
static void
for_each_avgpool_tap (const AclipPool2dShape &s, bool count_include_pad, Visit visit,
                      RefArray &divisors)
{
  int OH = aclip_pool2d_out_height (&s), OW = aclip_pool2d_out_width (&s);
  int H = s.in_height, W = s.in_width;
  size_t planes = (size_t) s.batch * s.channels;
  divisors.assign (planes * OH * OW, 0.0);
  for (size_t p = 0; p < planes; p++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        size_t o = (p * OH + oh) * OW + ow;
        int real = 0;
        for (int kh = 0; kh < s.kernel_height; kh++)
          for (int kw = 0; kw < s.kernel_width; kw++) {
            int ih = oh * s.stride_height - s.pad_height + kh;
            int iw = ow * s.stride_width - s.pad_width + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
              continue;
            real++;
            visit (o, (long) (p * H * W + (size_t) ih * W + iw));
          }
        divisors[o] = count_include_pad ? s.kernel_height * s.kernel_width : real;
      }
}

RefArray
ref_avgpool2d_forward (const AclipPool2dShape &s, bool count_include_pad, const RefArray &input)
{
  RefArray sums ((size_t) s.batch * s.channels * aclip_pool2d_out_height (&s) *
                     aclip_pool2d_out_width (&s),
                 0.0);
  RefArray divisors;
  for_each_avgpool_tap (
      s, count_include_pad, [&] (size_t o, long i) { sums[o] += input[i]; }, divisors);
  for (size_t o = 0; o < sums.size (); o++)
    sums[o] /= divisors[o];
  return sums;
}

RefArray
ref_avgpool2d_backward (const AclipPool2dShape &s, bool count_include_pad, const RefArray &doutput)
{
  RefArray dinput ((size_t) s.batch * s.channels * s.in_height * s.in_width, 0.0);
  RefArray divisors;
  std::vector<std::pair<size_t, long>> taps;
  for_each_avgpool_tap (
      s, count_include_pad, [&] (size_t o, long i) { taps.emplace_back (o, i); }, divisors);
  for (auto &tap : taps)
    dinput[tap.second] += doutput[tap.first] / divisors[tap.first];
  return dinput;
}

RefArray
ref_global_avgpool_forward (const RefArray &input, int batch, int channels, int spatial)
{
  RefArray output ((size_t) batch * channels, 0.0);
  for (size_t p = 0; p < output.size (); p++) {
    for (int i = 0; i < spatial; i++)
      output[p] += input[p * spatial + i];
    output[p] /= spatial;
  }
  return output;
}

RefArray
ref_global_avgpool_backward (const RefArray &doutput, int batch, int channels, int spatial)
{
  RefArray dinput ((size_t) batch * channels * spatial);
  for (size_t p = 0; p < doutput.size (); p++)
    for (int i = 0; i < spatial; i++)
      dinput[p * spatial + i] = doutput[p] / spatial;
  return dinput;
}

/* ---- The ResNet basic block ---- */

/* Convolution `which` of the block: 1 and 2 the main path's 3×3, 3 the 1×1 projection. */
static AclipConv2dShape
ref_conv_shape (const AclipResBlockShape &s, int which)
{
  AclipConv2dShape c = {};
  c.batch = s.batch;
  c.in_channels = which == 2 ? s.out_channels : s.in_channels;
  c.in_height = which == 2 ? aclip_resblock_out_height (&s) : s.in_height;
  c.in_width = which == 2 ? aclip_resblock_out_width (&s) : s.in_width;
  c.out_channels = s.out_channels;
  c.kernel_height = c.kernel_width = which == 3 ? 1 : 3;
  c.stride_height = c.stride_width = which == 2 ? 1 : s.stride;
  c.pad_height = c.pad_width = which == 3 ? 0 : 1;
  return c;
}

static RefArray
ref_relu (const RefArray &x)
{
  RefArray y (x.size ());
  for (size_t i = 0; i < x.size (); i++)
    y[i] = x[i] > 0 ? x[i] : 0.0;
  return y;
}

/* dy · [x > 0] */
static RefArray
ref_relu_backward (const RefArray &dy, const RefArray &x)
{
  RefArray dx (x.size ());
  for (size_t i = 0; i < x.size (); i++)
    dx[i] = x[i] > 0 ? dy[i] : 0.0;
  return dx;
}

RefArray
ref_resblock_forward (const AclipResBlockShape &s, const RefArray &input,
                      const RefResBlockParams &p, RefResBlockRunning &running, double eps,
                      double momentum, bool training, RefResBlockTape &tape)
{
  int OC = s.out_channels, B = s.batch;
  int spatial = aclip_resblock_out_height (&s) * aclip_resblock_out_width (&s);
  const RefArray none;
  tape.conv1_out = ref_conv2d_forward (ref_conv_shape (s, 1), input, p.conv1_weight, none);
  tape.bn1_out =
      ref_batchnorm2d_forward (tape.conv1_out, p.bn1_weight, p.bn1_bias, B, OC, spatial, eps,
                               momentum, training, running.bn1_mean, running.bn1_var, tape.bn1);
  tape.relu1_out = ref_relu (tape.bn1_out);
  tape.conv2_out = ref_conv2d_forward (ref_conv_shape (s, 2), tape.relu1_out, p.conv2_weight, none);
  tape.bn2_out =
      ref_batchnorm2d_forward (tape.conv2_out, p.bn2_weight, p.bn2_bias, B, OC, spatial, eps,
                               momentum, training, running.bn2_mean, running.bn2_var, tape.bn2);
  if (!p.shortcut_weight.empty ()) {
    tape.shortcut_conv_out =
        ref_conv2d_forward (ref_conv_shape (s, 3), input, p.shortcut_weight, none);
    tape.shortcut_out = ref_batchnorm2d_forward (
        tape.shortcut_conv_out, p.shortcut_bn_weight, p.shortcut_bn_bias, B, OC, spatial, eps,
        momentum, training, running.shortcut_mean, running.shortcut_var, tape.shortcut_bn);
  } else {
    tape.shortcut_out = input;
  }
  tape.sum.resize (tape.bn2_out.size ());
  for (size_t i = 0; i < tape.sum.size (); i++)
    tape.sum[i] = tape.bn2_out[i] + tape.shortcut_out[i];
  return ref_relu (tape.sum);
}

RefResBlockGradients
ref_resblock_backward (const AclipResBlockShape &s, const RefArray &doutput, const RefArray &input,
                       const RefResBlockParams &p, const RefResBlockTape &tape, bool training)
{
  int OC = s.out_channels, B = s.batch;
  int spatial = aclip_resblock_out_height (&s) * aclip_resblock_out_width (&s);
  RefResBlockGradients g;
  RefArray dsum = ref_relu_backward (doutput, tape.sum);

  RefNormGradients bn2 = ref_batchnorm2d_backward (dsum, tape.conv2_out, p.bn2_weight, tape.bn2, B,
                                                   OC, spatial, training);
  RefConv2dGradients conv2 =
      ref_conv2d_backward (ref_conv_shape (s, 2), bn2.dinput, tape.relu1_out, p.conv2_weight);
  RefArray drelu1 = ref_relu_backward (conv2.dinput, tape.bn1_out);
  RefNormGradients bn1 = ref_batchnorm2d_backward (drelu1, tape.conv1_out, p.bn1_weight, tape.bn1,
                                                   B, OC, spatial, training);
  RefConv2dGradients conv1 =
      ref_conv2d_backward (ref_conv_shape (s, 1), bn1.dinput, input, p.conv1_weight);
  g.dinput = conv1.dinput;
  g.dparams.conv1_weight = conv1.dweight;
  g.dparams.bn1_weight = bn1.dweight;
  g.dparams.bn1_bias = bn1.dbias;
  g.dparams.conv2_weight = conv2.dweight;
  g.dparams.bn2_weight = bn2.dweight;
  g.dparams.bn2_bias = bn2.dbias;

  if (!p.shortcut_weight.empty ()) {
    RefNormGradients bns =
        ref_batchnorm2d_backward (dsum, tape.shortcut_conv_out, p.shortcut_bn_weight,
                                  tape.shortcut_bn, B, OC, spatial, training);
    RefConv2dGradients convs =
        ref_conv2d_backward (ref_conv_shape (s, 3), bns.dinput, input, p.shortcut_weight);
    for (size_t i = 0; i < g.dinput.size (); i++)
      g.dinput[i] += convs.dinput[i];
    g.dparams.shortcut_weight = convs.dweight;
    g.dparams.shortcut_bn_weight = bns.dweight;
    g.dparams.shortcut_bn_bias = bns.dbias;
  } else {
    for (size_t i = 0; i < g.dinput.size (); i++)
      g.dinput[i] += dsum[i];
  }
  return g;
}
