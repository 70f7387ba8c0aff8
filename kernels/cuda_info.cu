// cuda_info.cu - device discovery for the CUDA backend: how many devices are
// usable and what the first one is called (recorded in run manifests).
// Exposed through extern "C" launchers (STYLE.md 13); C never includes .cuh.
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int lg_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" error
        return 0;
    }
    return n;
}

extern "C" int lg_cuda_device_name(int dev, char *buf, int len)
{
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, dev) != cudaSuccess)
        return -1;
    snprintf(buf, (size_t)len, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 0;
}
