// Python bindings and argument checks for the fgnet_core.ops CUDA kernels.
#include <torch/extension.h>

#include "ops.h"

namespace {

void check_cuda_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a floating point tensor, got ",
              t.scalar_type());
}

at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& kernel, int64_t up_x, int64_t up_y,
                     int64_t down_x, int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0,
                     int64_t pad_y1) {
  check_cuda_float(x, "x");
  check_cuda_float(kernel, "kernel");
  TORCH_CHECK(x.dim() == 4, "x must have shape [N, C, H, W]");
  TORCH_CHECK(kernel.dim() == 2, "kernel must have shape [kh, kw]");
  TORCH_CHECK(kernel.device() == x.device(), "kernel and x must be on the same device");
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(kernel.scalar_type() == acc, "kernel must be ", acc, " for x of type ", x.scalar_type());
  TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "up/down factors must be >= 1");
  return fgnet::upfirdn2d_cuda(x.contiguous(), kernel.contiguous(), up_x, up_y, down_x, down_y,
                               pad_x0, pad_x1, pad_y0, pad_y1);
}

at::Tensor fused_bias_lrelu(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                            double slope, double scale) {
  check_cuda_float(x, "x");
  TORCH_CHECK(x.dim() >= 2, "x must have shape [B, C, ...]");
  std::optional<at::Tensor> b;
  if (bias.has_value() && bias->defined()) {
    check_cuda_float(*bias, "bias");
    TORCH_CHECK(bias->device() == x.device(), "bias and x must be on the same device");
    TORCH_CHECK(bias->scalar_type() == x.scalar_type(), "bias must have the dtype of x");
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == x.size(1), "bias must have shape [C]");
    b = bias->contiguous();
  }
  return fgnet::fused_bias_lrelu_cuda(x.contiguous(), b, slope, scale);
}

at::Tensor fused_bias_lrelu_grad(const at::Tensor& grad_y, const at::Tensor& y, double slope,
                                 double scale) {
  check_cuda_float(grad_y, "grad_y");
  check_cuda_float(y, "y");
  TORCH_CHECK(grad_y.sizes() == y.sizes(), "grad_y and y must have the same shape");
  TORCH_CHECK(grad_y.scalar_type() == y.scalar_type(), "grad_y and y must have the same dtype");
  TORCH_CHECK(grad_y.device() == y.device(), "grad_y and y must be on the same device");
  return fgnet::fused_bias_lrelu_grad_cuda(grad_y.contiguous(), y.contiguous(), slope, scale);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fgnet_core.ops CUDA kernels (upfirdn2d, fused bias + leaky ReLU)";
  m.def("upfirdn2d", &upfirdn2d, "upfirdn2d (CUDA)", py::arg("x"), py::arg("kernel"),
        py::arg("up_x"), py::arg("up_y"), py::arg("down_x"), py::arg("down_y"), py::arg("pad_x0"),
        py::arg("pad_x1"), py::arg("pad_y0"), py::arg("pad_y1"));
  m.def("fused_bias_lrelu", &fused_bias_lrelu, "fused bias + leaky ReLU (CUDA)", py::arg("x"),
        py::arg("bias"), py::arg("slope"), py::arg("scale"));
  m.def("fused_bias_lrelu_grad", &fused_bias_lrelu_grad, "gradient of fused bias + leaky ReLU (CUDA)",
        py::arg("grad_y"), py::arg("y"), py::arg("slope"), py::arg("scale"));
}
