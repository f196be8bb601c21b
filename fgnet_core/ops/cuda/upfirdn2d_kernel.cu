// upfirdn2d CUDA kernel: one thread per output pixel, looping over image planes.
//
// Along one axis, output sample o reads the padded, zero-upsampled signal at
// positions o * down + t for kernel taps t in [0, k), with kernel index k - 1 - t
// (true convolution). Only positions that are multiples of `up` hold input
// samples, so each output touches ceil(k / up) taps per axis; the tap ranges
// depend on (ox, oy) only and are computed once per thread, then reused for
// every plane the thread visits.
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ops.h"

namespace fgnet {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxGridZ = 65535;

struct Params {
  int in_h, in_w, out_h, out_w;
  int kh, kw;
  int up_x, up_y, down_x, down_y;
  int pad_x0, pad_y0;
  int64_t planes;  // N * C
};

__device__ __forceinline__ int floor_div(int a, int b) {  // b > 0, rounds towards -inf
  const int q = a / b;
  return (q * b > a) ? q - 1 : q;
}

// Input samples [i0, i1) feed output o; sample i0 meets kernel index k0, and
// each following sample meets the kernel index `up` lower.
struct Taps {
  int i0, i1, k0;
};

__device__ __forceinline__ Taps axis_taps(int o, int up, int down, int pad0, int k, int in) {
  const int m0 = o * down - pad0;         // unpadded upsampled position under tap t = 0
  int i0 = -floor_div(-m0, up);           // ceil(m0 / up): first real sample at or after m0
  int t0 = i0 * up - m0;                  // its tap
  if (i0 < 0) {                           // samples before the image are zero padding
    t0 -= i0 * up;
    i0 = 0;
  }
  const int i1 = min(in, floor_div(m0 + k - 1, up) + 1);
  return {i0, i1, k - 1 - t0};
}

// T > 0: at most T taps per axis (T = max over axes of ceil(k / up)); the loops
// are unrolled and predicated so a thread issues all its loads at once, and its
// weights sit in registers. T == 0: any kernel size, runtime loops.
template <typename scalar_t, typename acc_t, int T>
__global__ void __launch_bounds__(kThreads)
upfirdn2d_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ kernel,
                 scalar_t* __restrict__ y, const Params p) {
  extern __shared__ __align__(sizeof(double)) unsigned char smem[];
  acc_t* k_s = reinterpret_cast<acc_t*>(smem);  // [kh, kw]
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  for (int i = tid; i < p.kh * p.kw; i += blockDim.x * blockDim.y) k_s[i] = kernel[i];
  __syncthreads();

  const int ox = blockIdx.x * blockDim.x + threadIdx.x;
  const int oy = blockIdx.y * blockDim.y + threadIdx.y;
  if (ox >= p.out_w || oy >= p.out_h) return;
  const Taps ty = axis_taps(oy, p.up_y, p.down_y, p.pad_y0, p.kh, p.in_h);
  const Taps tx = axis_taps(ox, p.up_x, p.down_x, p.pad_x0, p.kw, p.in_w);
  const int ny = ty.i1 - ty.i0;  // taps that hit real samples (may be <= 0)
  const int nx = tx.i1 - tx.i0;

  const int64_t in_plane = static_cast<int64_t>(p.in_h) * p.in_w;
  const int64_t out_plane = static_cast<int64_t>(p.out_h) * p.out_w;
  const int64_t out_offset = static_cast<int64_t>(oy) * p.out_w + ox;
  const int64_t tap_offset = static_cast<int64_t>(ty.i0) * p.in_w + tx.i0;

  if constexpr (T > 0) {
    acc_t w[T][T];
#pragma unroll
    for (int j = 0; j < T; ++j) {
#pragma unroll
      for (int i = 0; i < T; ++i) {
        w[j][i] = (j < ny && i < nx) ? k_s[(ty.k0 - j * p.up_y) * p.kw + tx.k0 - i * p.up_x] : acc_t(0);
      }
    }
    for (int64_t plane = blockIdx.z; plane < p.planes; plane += gridDim.z) {
      const scalar_t* base = x + plane * in_plane + tap_offset;
      acc_t acc = 0;
#pragma unroll
      for (int j = 0; j < T; ++j) {
#pragma unroll
        for (int i = 0; i < T; ++i) {
          if (j < ny && i < nx) acc += w[j][i] * static_cast<acc_t>(base[j * p.in_w + i]);
        }
      }
      y[plane * out_plane + out_offset] = static_cast<scalar_t>(acc);
    }
  } else {
    for (int64_t plane = blockIdx.z; plane < p.planes; plane += gridDim.z) {
      const scalar_t* base = x + plane * in_plane + tap_offset;
      acc_t acc = 0;
      for (int j = 0; j < ny; ++j) {
        const acc_t* k_row = k_s + (ty.k0 - j * p.up_y) * p.kw + tx.k0;
        for (int i = 0; i < nx; ++i) acc += k_row[-i * p.up_x] * static_cast<acc_t>(base[j * p.in_w + i]);
      }
      y[plane * out_plane + out_offset] = static_cast<scalar_t>(acc);
    }
  }
}

int pow2_at_least(int v) {
  int r = 1;
  while (r < v) r <<= 1;
  return r;
}

}  // namespace

at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& kernel, int64_t up_x,
                          int64_t up_y, int64_t down_x, int64_t down_y, int64_t pad_x0,
                          int64_t pad_x1, int64_t pad_y0, int64_t pad_y1) {
  const at::cuda::OptionalCUDAGuard guard(x.device());
  const int64_t n = x.size(0), c = x.size(1), in_h = x.size(2), in_w = x.size(3);
  const int64_t kh = kernel.size(0), kw = kernel.size(1);
  const int64_t num_h = in_h * up_y + pad_y0 + pad_y1 - kh;
  const int64_t num_w = in_w * up_x + pad_x0 + pad_x1 - kw;
  TORCH_CHECK(num_h >= 0 && num_w >= 0, "upfirdn2d: padded input is smaller than the kernel");
  const int64_t out_h = num_h / down_y + 1;
  const int64_t out_w = num_w / down_x + 1;
  const int64_t int_max = std::numeric_limits<int>::max() / 4;
  TORCH_CHECK(in_h * up_y + std::abs(pad_y0) + std::abs(pad_y1) < int_max &&
                  in_w * up_x + std::abs(pad_x0) + std::abs(pad_x1) < int_max &&
                  out_h * down_y < int_max && out_w * down_x < int_max,
              "upfirdn2d: spatial size too large for 32-bit indexing");

  at::Tensor y = at::empty({n, c, out_h, out_w}, x.options());
  if (y.numel() == 0) return y;

  Params p;
  p.in_h = static_cast<int>(in_h);
  p.in_w = static_cast<int>(in_w);
  p.out_h = static_cast<int>(out_h);
  p.out_w = static_cast<int>(out_w);
  p.kh = static_cast<int>(kh);
  p.kw = static_cast<int>(kw);
  p.up_x = static_cast<int>(up_x);
  p.up_y = static_cast<int>(up_y);
  p.down_x = static_cast<int>(down_x);
  p.down_y = static_cast<int>(down_y);
  p.pad_x0 = static_cast<int>(pad_x0);
  p.pad_y0 = static_cast<int>(pad_y0);
  p.planes = n * c;

  // Narrow blocks for narrow images so few threads idle; planes go on grid z.
  const int bx = std::min(32, pow2_at_least(p.out_w));
  const int by = std::min(kThreads / bx, pow2_at_least(p.out_h));
  const int64_t gx = (out_w + bx - 1) / bx;
  const int64_t gy = (out_h + by - 1) / by;
  TORCH_CHECK(gy <= kMaxGridZ, "upfirdn2d: output height too large");
  // Enough blocks to fill the device a few times over; each thread then loops
  // over several planes, reusing its tap ranges.
  const int sms = sm_count();
  const int64_t want_z = std::max<int64_t>(1, (int64_t{sms} * 32 + gx * gy - 1) / (gx * gy));
  const int64_t gz = std::min<int64_t>({p.planes, want_z, kMaxGridZ});
  const dim3 block(bx, by);
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(gz));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  // Most taps one output meets along an axis; small counts get an unrolled kernel.
  const int64_t taps = std::max((kh + up_y - 1) / up_y, (kw + up_x - 1) / up_x);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    const size_t smem = static_cast<size_t>(kh * kw) * sizeof(acc_t);
    TORCH_CHECK(smem <= 48 * 1024, "upfirdn2d: kernel too large (", kh, "x", kw, ")");
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const acc_t* kp = kernel.data_ptr<acc_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    switch (taps) {
      case 1: upfirdn2d_kernel<scalar_t, acc_t, 1><<<grid, block, smem, stream>>>(xp, kp, yp, p); break;
      case 2: upfirdn2d_kernel<scalar_t, acc_t, 2><<<grid, block, smem, stream>>>(xp, kp, yp, p); break;
      case 3: upfirdn2d_kernel<scalar_t, acc_t, 3><<<grid, block, smem, stream>>>(xp, kp, yp, p); break;
      case 4: upfirdn2d_kernel<scalar_t, acc_t, 4><<<grid, block, smem, stream>>>(xp, kp, yp, p); break;
      default: upfirdn2d_kernel<scalar_t, acc_t, 0><<<grid, block, smem, stream>>>(xp, kp, yp, p); break;
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

}  // namespace fgnet
