// The full-precision parts of the TerDiT forward (docs/DESIGN.md "Model call"), fp32 throughout:
// patchify / unpatchify, a tiled fp32 linear for the full-precision layers, timestep features, the
// conditioning, the adaLN RMSNorm, q/k LayerNorm with RoPE, and the final layer's norm and modulate.

typedef unsigned short bf16; // bfloat16 bits

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float block_sum(float v, float* scratch)
{
    v = warp_sum(v);
    int w = threadIdx.x >> 5, lanes = blockDim.x >> 5;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[w] = v;
    __syncthreads();
    float r = threadIdx.x < lanes ? scratch[threadIdx.x] : 0.0f;
    if (w == 0) r = warp_sum(r);
    if (threadIdx.x == 0) scratch[0] = r;
    __syncthreads();
    return scratch[0];
}

__device__ __forceinline__ float silu(float a) { return a / (1.0f + expf(-a)); }

// (N, C, H, W) -> (N * T, C * p * p): token (b, gi, gj) in row-major patch order, features (c, row, col).
extern "C" __global__ void patchify(const float* __restrict__ x, float* __restrict__ patches, int n, int channels, int size, int p)
{
    int g = size / p, features = channels * p * p;
    long long total = (long long)n * g * g * features;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int f = (int)(idx % features);
    long long token = idx / features;
    int gj = (int)(token % g), gi = (int)((token / g) % g), b = (int)(token / ((long long)g * g));
    int c = f / (p * p), r = (f / p) % p, q = f % p;
    patches[idx] = x[(((size_t)b * channels + c) * size + gi * p + r) * size + gj * p + q];
}

// (N * T, p * p * Cout) with features (row, col, channel) -> (N, Cout, H, W).
extern "C" __global__ void unpatchify(const float* __restrict__ tokens, float* __restrict__ out, int n, int channels, int size, int p)
{
    long long total = (long long)n * channels * size * size;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int col = (int)(idx % size), row = (int)((idx / size) % size);
    int c = (int)((idx / ((long long)size * size)) % channels), b = (int)(idx / ((long long)channels * size * size));
    int g = size / p, gi = row / p, r = row % p, gj = col / p, q = col % p;
    size_t token = ((size_t)b * g + gi) * g + gj;
    out[idx] = tokens[token * (p * p * channels) + (r * p + q) * channels + c];
}

// y (M, N) = act(x (M, K) W^T (N, K) + bias); 16 x 16 output tiles, K in steps of 16 through shared memory.
// act: 0 none, 1 SiLU.
extern "C" __global__ void linear_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
    float* __restrict__ y, int m, int n, int k, int act)
{
    __shared__ float xs[16][17], ws[16][17];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < k; k0 += 16)
    {
        int xr = blockIdx.y * 16 + ty, wr = blockIdx.x * 16 + ty;
        xs[ty][tx] = xr < m && k0 + tx < k ? x[(size_t)xr * k + k0 + tx] : 0.0f;
        ws[ty][tx] = wr < n && k0 + tx < k ? w[(size_t)wr * k + k0 + tx] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int i = 0; i < 16; i++) acc = fmaf(xs[ty][i], ws[tx][i], acc);
        __syncthreads();
    }
    if (row < m && col < n)
    {
        float v = bias ? acc + bias[col] : acc;
        y[(size_t)row * n + col] = act == 1 ? silu(v) : v;
    }
}

// Sinusoidal timestep features [cos, sin] (N, 256) with freqs[i] = exp(-ln(10000) i / 128) (given, float32).
extern "C" __global__ void timestep_features(const int* __restrict__ t, const float* __restrict__ freqs, float* __restrict__ out, int n)
{
    int b = blockIdx.x, i = threadIdx.x;
    if (b >= n || i >= 128) return;
    float angle = (float)t[b] * freqs[i];
    out[b * 256 + i] = cosf(angle);
    out[b * 256 + 128 + i] = sinf(angle);
}

// c (N, cdim) += label table row; out = SiLU(c), the adaLN input.
extern "C" __global__ void conditioning(const float* __restrict__ temb, const float* __restrict__ table, const int* __restrict__ labels,
    float* __restrict__ silu_c, int n, int cdim)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * cdim) return;
    int b = idx / cdim, i = idx % cdim;
    silu_c[idx] = silu(temb[idx] + table[(size_t)labels[b] * cdim + i]);
}

// In place: each row (width) of mod becomes RMSNorm(row) * weight. One block per row.
extern "C" __global__ void rmsnorm_rows(float* __restrict__ mod, const float* __restrict__ weight, int width, float eps)
{
    __shared__ float scratch[32];
    float* r = mod + (size_t)blockIdx.x * width;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < width; i += blockDim.x) ss = fmaf(r[i], r[i], ss);
    float inv = 1.0f / sqrtf(block_sum(ss, scratch) / width + eps);
    for (int i = threadIdx.x; i < width; i += blockDim.x) r[i] = r[i] * inv * weight[i];
}

// LayerNorm of one row of width d (in registers of the block via shared memory), optional affine.
__device__ void layer_norm_row(const float* __restrict__ in, float* __restrict__ out, const float* __restrict__ w,
    const float* __restrict__ b, int d, float eps, float* scratch)
{
    float s = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) s += in[i];
    float mean = block_sum(s, scratch) / d;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) { float v = in[i] - mean; ss = fmaf(v, v, ss); }
    float inv = 1.0f / sqrtf(block_sum(ss, scratch) / d + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x)
    {
        float v = (in[i] - mean) * inv;
        out[i] = w ? fmaf(v, w[i], b[i]) : v;
    }
}

template <typename T> __device__ __forceinline__ T to_out(float v);
template <> __device__ __forceinline__ float to_out<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 to_out<bf16>(float v)
{
    bf16 r;
    asm("cvt.rn.bf16.f32 %0, %1;\n" : "=h"(r) : "f"(v));
    return r;
}

// One token row of qkv (M, 3D): q and k LayerNorm over D (when qk_norm), RoPE on adjacent pairs of each head
// (cos/sin tables (T, hd / 2) of position t), written to q, k, v (M, D) each as T (fp32 or bf16).
// Dynamic shared memory: 2 D floats.
template <typename T>
__device__ void qk_norm_rope(const float* __restrict__ qkv, const float* __restrict__ qw, const float* __restrict__ qb,
    const float* __restrict__ kw, const float* __restrict__ kb, const float* __restrict__ cosv, const float* __restrict__ sinv,
    T* __restrict__ q, T* __restrict__ k, T* __restrict__ v, int tokens, int d, int hd, int qk_norm, float eps)
{
    extern __shared__ float rows[];
    __shared__ float scratch[32];
    int row = blockIdx.x, pos = row % tokens;
    const float* src = qkv + (size_t)row * 3 * d;
    float* qs = rows;
    float* ks = rows + d;
    if (qk_norm)
    {
        layer_norm_row(src, qs, qw, qb, d, eps, scratch);
        layer_norm_row(src + d, ks, kw, kb, d, eps, scratch);
    }
    else
        for (int i = threadIdx.x; i < d; i += blockDim.x) { qs[i] = src[i]; ks[i] = src[d + i]; }
    __syncthreads();
    int half = hd / 2;
    for (int pr = threadIdx.x; pr < d / 2; pr += blockDim.x)
    {
        int head = pr / half, i = pr % half, o = head * hd + 2 * i;
        float c = cosv[pos * half + i], s = sinv[pos * half + i];
        size_t dst = (size_t)row * d + o;
        q[dst] = to_out<T>(qs[o] * c - qs[o + 1] * s);
        q[dst + 1] = to_out<T>(qs[o + 1] * c + qs[o] * s);
        k[dst] = to_out<T>(ks[o] * c - ks[o + 1] * s);
        k[dst + 1] = to_out<T>(ks[o + 1] * c + ks[o] * s);
    }
    for (int i = threadIdx.x; i < d; i += blockDim.x) v[(size_t)row * d + i] = to_out<T>(src[2 * d + i]);
}

extern "C" __global__ void qk_norm_rope_f32(const float* qkv, const float* qw, const float* qb, const float* kw, const float* kb,
    const float* cosv, const float* sinv, float* q, float* k, float* v, int tokens, int d, int hd, int qk_norm, float eps)
{ qk_norm_rope<float>(qkv, qw, qb, kw, kb, cosv, sinv, q, k, v, tokens, d, hd, qk_norm, eps); }

extern "C" __global__ void qk_norm_rope_bf16(const float* qkv, const float* qw, const float* qb, const float* kw, const float* kb,
    const float* cosv, const float* sinv, bf16* q, bf16* k, bf16* v, int tokens, int d, int hd, int qk_norm, float eps)
{ qk_norm_rope<bf16>(qkv, qw, qb, kw, kb, cosv, sinv, q, k, v, tokens, d, hd, qk_norm, eps); }

// Final layer's norm: h = LayerNorm(x) (no affine, eps) * (1 + scale) + shift, mod (N, 2D) = [shift, scale].
// One block per token row.
extern "C" __global__ void final_norm_modulate(const float* __restrict__ x, const float* __restrict__ mod, float* __restrict__ h,
    int tokens, int d, float eps)
{
    __shared__ float scratch[32];
    int row = blockIdx.x, image = row / tokens;
    const float* xr = x + (size_t)row * d;
    float* hr = h + (size_t)row * d;
    layer_norm_row(xr, hr, nullptr, nullptr, d, eps, scratch);
    __syncthreads();
    const float* shift = mod + (size_t)image * 2 * d;
    const float* scale = shift + d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) hr[i] = fmaf(hr[i], scale[i] + 1.0f, shift[i]);
}
