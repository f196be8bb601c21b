// Declarations shared by the bindings and the CUDA launchers.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>

namespace fgnet {

// Multiprocessors of the current device, for sizing grid-stride launches.
inline int sm_count() {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, c10::cuda::current_device()));
  return value;
}

// Upsample (zero insertion), pad/crop, true 2D convolution with `kernel`, downsample.
// x: [N, C, H, W] contiguous CUDA tensor (float, double, half, bfloat16).
// kernel: [kh, kw] on the same device, float32 (float64 when x is float64).
at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& kernel,
                          int64_t up_x, int64_t up_y, int64_t down_x, int64_t down_y,
                          int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1);

// y = leaky_relu(x + bias[c], slope) * scale, bias broadcast over dim 1 of x ([B, C, ...]).
at::Tensor fused_bias_lrelu_cuda(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                 double slope, double scale);

// grad_x = grad_y * scale * (branch positive ? 1 : slope); the branch is read off y's sign.
at::Tensor fused_bias_lrelu_grad_cuda(const at::Tensor& grad_y, const at::Tensor& y,
                                      double slope, double scale);

}  // namespace fgnet
