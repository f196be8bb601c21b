// Fused bias + leaky ReLU + gain, and its gradient, as grid-stride element-wise kernels.
// Arithmetic is done in the accumulate type (float for half/bfloat16).
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ops.h"

namespace fgnet {
namespace {

constexpr int kThreads = 256;

// x viewed as [outer, channels, inner]; bias may be null.
template <typename scalar_t, typename acc_t, typename index_t>
__global__ void __launch_bounds__(kThreads)
bias_lrelu_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ bias,
                  scalar_t* __restrict__ y, index_t n, index_t inner, index_t channels,
                  acc_t slope, acc_t scale) {
  const index_t stride = static_cast<index_t>(blockDim.x) * gridDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    acc_t v = static_cast<acc_t>(x[i]);
    if (bias != nullptr) v += static_cast<acc_t>(bias[(i / inner) % channels]);
    v = v > acc_t(0) ? v : v * slope;
    y[i] = static_cast<scalar_t>(v * scale);
  }
}

// The positive branch is where y has the sign of `scale` (slope >= 0 is required).
template <typename scalar_t, typename acc_t, typename index_t>
__global__ void __launch_bounds__(kThreads)
bias_lrelu_grad_kernel(const scalar_t* __restrict__ grad_y, const scalar_t* __restrict__ y,
                       scalar_t* __restrict__ grad_x, index_t n, acc_t slope, acc_t scale) {
  const acc_t sign = scale < acc_t(0) ? acc_t(-1) : acc_t(1);
  const index_t stride = static_cast<index_t>(blockDim.x) * gridDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const bool positive = static_cast<acc_t>(y[i]) * sign > acc_t(0);
    grad_x[i] = static_cast<scalar_t>(static_cast<acc_t>(grad_y[i]) * scale * (positive ? acc_t(1) : slope));
  }
}

dim3 grid_for(int64_t n) {
  const int sms = sm_count();
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{sms} * 32);
  return dim3(static_cast<unsigned>(std::max<int64_t>(blocks, 1)));
}

bool fits_int32(int64_t n) { return n < std::numeric_limits<int32_t>::max() / 2; }

}  // namespace

at::Tensor fused_bias_lrelu_cuda(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                 double slope, double scale) {
  TORCH_CHECK(slope >= 0, "fused_bias_lrelu: the CUDA kernel needs negative_slope >= 0");
  const at::cuda::OptionalCUDAGuard guard(x.device());
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.numel();
  if (n == 0) return y;
  const int64_t channels = x.size(1);
  const int64_t inner = channels == 0 ? 1 : n / (x.size(0) * channels);
  const dim3 grid = grid_for(n);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fused_bias_lrelu_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    const scalar_t* b = bias.has_value() ? bias->data_ptr<scalar_t>() : nullptr;
    if (fits_int32(n)) {
      bias_lrelu_kernel<scalar_t, acc_t, int32_t><<<grid, kThreads, 0, stream>>>(
          x.data_ptr<scalar_t>(), b, y.data_ptr<scalar_t>(), static_cast<int32_t>(n),
          static_cast<int32_t>(inner), static_cast<int32_t>(channels), static_cast<acc_t>(slope),
          static_cast<acc_t>(scale));
    } else {
      bias_lrelu_kernel<scalar_t, acc_t, int64_t><<<grid, kThreads, 0, stream>>>(
          x.data_ptr<scalar_t>(), b, y.data_ptr<scalar_t>(), n, inner, channels,
          static_cast<acc_t>(slope), static_cast<acc_t>(scale));
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

at::Tensor fused_bias_lrelu_grad_cuda(const at::Tensor& grad_y, const at::Tensor& y, double slope,
                                      double scale) {
  TORCH_CHECK(slope >= 0, "fused_bias_lrelu: the CUDA kernel needs negative_slope >= 0");
  const at::cuda::OptionalCUDAGuard guard(y.device());
  at::Tensor grad_x = at::empty_like(y, at::MemoryFormat::Contiguous);
  const int64_t n = y.numel();
  if (n == 0) return grad_x;
  const dim3 grid = grid_for(n);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "fused_bias_lrelu_grad_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    if (fits_int32(n)) {
      bias_lrelu_grad_kernel<scalar_t, acc_t, int32_t><<<grid, kThreads, 0, stream>>>(
          grad_y.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(),
          static_cast<int32_t>(n), static_cast<acc_t>(slope), static_cast<acc_t>(scale));
    } else {
      bias_lrelu_grad_kernel<scalar_t, acc_t, int64_t><<<grid, kThreads, 0, stream>>>(
          grad_y.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(), n,
          static_cast<acc_t>(slope), static_cast<acc_t>(scale));
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_x;
}

}  // namespace fgnet
