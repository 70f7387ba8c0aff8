// cuda_backend.cu - placeholder until the CUDA backend lands: no usable device.
struct lg_backend;
extern "C" const lg_backend *lg_backend_cuda(void) { return 0; }
