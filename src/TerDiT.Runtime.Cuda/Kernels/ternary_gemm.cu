// Ternary GEMMs on int8 tensor cores (mma.sync m16n8k32, sm_80+), their activation quantizers and the
// plain reference kernel they are tested against. docs/CUDA.md describes the layouts bit by bit.
//
// Activations: "planes" of int8, (TERMS, Mpad, Kpad) row-major, plus per row a float scale and per plane and
// row the int32 sum of its codes. TERMS = 1 is the A8 mode: q = clamp(rint(x * (127 / absmax)), -127, 127),
// scale = absmax / 127, exactly as the CPU runtime's ActivationQuantizer. TERMS = 3 is the exact mode: u = x *
// (127 / absmax) is written as q0 + q1 / 254 + q2 / 254^2, each q int8, so every activation keeps an absolute
// error of at most absmax * 2^-24 and every product with a trit is an exact integer.
//
// Weights: 2-bit codes c = t + 1 (0, 1, 2; 0 in padding, so padded weights contribute nothing) in 512-byte
// units of 32 output rows x 64 inputs, one 16-byte slice per lane of a warp: word nt of lane l holds, in byte
// i, bits 2r..2r+1, the code of row n = 32 nu + 8 nt + l / 4 and input k = 64 ku + 32 (r >> 1) + 16 (r & 1) +
// 4 (l & 3) + i. Units are stored [nu][ku]. Decoding a register of B is one shift and one AND: the codes are
// unsigned bytes (mma .u8), so sum_k q c = sum_k q t + sum_k q and the epilogue subtracts the row sum of q.

typedef signed char int8;
typedef unsigned int u32;

#define UNIT_N 32
#define UNIT_K 64
#define UNIT_BYTES 512
#define EXACT_BASE 254.0f

// ---------------------------------------------------------------------------------------------------------
// Block reductions (blockDim.x a multiple of 32, at most 1024).

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ int warp_sum_int(int v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float block_max(float v, float* scratch)
{
    v = warp_max(v);
    int w = threadIdx.x >> 5, lanes = blockDim.x >> 5;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[w] = v;
    __syncthreads();
    float r = threadIdx.x < lanes ? scratch[threadIdx.x] : 0.0f;
    if (w == 0) r = warp_max(r);
    if (threadIdx.x == 0) scratch[0] = r;
    __syncthreads();
    return scratch[0];
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

__device__ int block_sum_int(int v, int* scratch)
{
    v = warp_sum_int(v);
    int w = threadIdx.x >> 5, lanes = blockDim.x >> 5;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[w] = v;
    __syncthreads();
    int r = threadIdx.x < lanes ? scratch[threadIdx.x] : 0;
    if (w == 0) r = warp_sum_int(r);
    if (threadIdx.x == 0) scratch[0] = r;
    __syncthreads();
    return scratch[0];
}

// ---------------------------------------------------------------------------------------------------------
// Quantization of one row (the block's), shared by the standalone quantizer and the fused norm kernels.
// values(k) gives element k of the row; absmax and the non-finite flag come from the caller's first pass.

struct PlaneArgs
{
    int8* planes;      // (terms, mpad, kpad)
    float* scales;     // (mpad)
    int* rowsums;      // (terms, mpad)
    int mpad, kpad, terms;
};

__device__ __forceinline__ float clamp127(float v) { return fminf(fmaxf(v, -127.0f), 127.0f); }

template <typename Values>
__device__ void quantize_row(const Values& values, int k, int row, float absmax, bool bad, const PlaneArgs& p, int* iscratch)
{
    // The CPU's ActivationQuantizer: a zero row has scale 0, a row with NaN or infinity scale NaN (the bits of .NET's
    // float.NaN, 0xffc00000); both give q = 0.
    bool degenerate = bad || absmax == 0.0f;
    float inv = degenerate ? 0.0f : __fdiv_rn(127.0f, absmax);
    size_t plane = (size_t)p.mpad * p.kpad;
    int8* q0 = p.planes + (size_t)row * p.kpad;
    int s0 = 0, s1 = 0, s2 = 0;
    for (int i = threadIdx.x; i < p.kpad; i += blockDim.x)
    {
        float u = (i < k && !degenerate) ? __fmul_rn(values(i), inv) : 0.0f;
        float a = clamp127(rintf(u));
        q0[i] = (int8)a;
        s0 += (int)a;
        if (p.terms == 3)
        {
            float r1 = __fmul_rn(u - a, EXACT_BASE);
            float b = clamp127(rintf(r1));
            float c = clamp127(rintf(__fmul_rn(r1 - b, EXACT_BASE)));
            q0[plane + i] = (int8)b;
            q0[2 * plane + i] = (int8)c;
            s1 += (int)b;
            s2 += (int)c;
        }
    }
    s0 = block_sum_int(s0, iscratch);
    if (p.terms == 3)
    {
        s1 = block_sum_int(s1, iscratch);
        s2 = block_sum_int(s2, iscratch);
    }
    if (threadIdx.x == 0)
    {
        p.scales[row] = degenerate ? (bad ? __int_as_float(0xffc00000) : 0.0f) : __fdiv_rn(absmax, 127.0f);
        p.rowsums[row] = s0;
        if (p.terms == 3)
        {
            p.rowsums[p.mpad + row] = s1;
            p.rowsums[2 * p.mpad + row] = s2;
        }
    }
}

struct GlobalRow
{
    const float* x;
    __device__ float operator()(int i) const { return x[i]; }
};

// Rows of x (m, k) with leading dimension ldx into planes; one block per row.
extern "C" __global__ void quantize_rows(const float* __restrict__ x, int k, int ldx, PlaneArgs p)
{
    __shared__ float scratch[32];
    __shared__ int iscratch[32];
    int row = blockIdx.x;
    GlobalRow values{ x + (size_t)row * ldx };
    float m = 0.0f;
    bool bad = false;
    for (int i = threadIdx.x; i < k; i += blockDim.x)
    {
        float v = values(i);
        bad |= !isfinite(v);
        m = fmaxf(m, fabsf(v));
    }
    float absmax = block_max(m, scratch);
    bad = block_max(bad ? 1.0f : 0.0f, scratch) != 0.0f;
    quantize_row(values, k, row, absmax, bad, p, iscratch);
}

struct SharedRow
{
    const float* h;
    __device__ float operator()(int i) const { return h[i]; }
};

// Fused pre-norm of a block: h = RMSNorm(x) * weight * (1 + scale) + shift (modulate with the image's adaLN
// chunks), then quantized into planes. One block per token row; dynamic shared memory: d floats.
extern "C" __global__ void rmsnorm_modulate_quantize(const float* __restrict__ x, const float* __restrict__ weight,
    const float* __restrict__ shift, const float* __restrict__ scale, int mod_stride, int tokens, int d, float eps, PlaneArgs p)
{
    extern __shared__ float h[];
    __shared__ float scratch[32];
    __shared__ int iscratch[32];
    int row = blockIdx.x, image = row / tokens;
    const float* xr = x + (size_t)row * d;
    const float* sh = shift + (size_t)image * mod_stride;
    const float* sc = scale + (size_t)image * mod_stride;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
    float inv = 1.0f / sqrtf(block_sum(ss, scratch) / d + eps);
    float m = 0.0f;
    bool bad = false;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
    {
        float v = fmaf(xr[i] * inv * weight[i], sc[i] + 1.0f, sh[i]);
        h[i] = v;
        bad |= !isfinite(v);
        m = fmaxf(m, fabsf(v));
    }
    float absmax = block_max(m, scratch);
    bad = block_max(bad ? 1.0f : 0.0f, scratch) != 0.0f;
    quantize_row(SharedRow{ h }, d, row, absmax, bad, p, iscratch);
}

// ---------------------------------------------------------------------------------------------------------
// Weight repacking: the file's layout (rows of ceil(k / 128) blocks of 32 bytes; column c in byte
// 32 (c >> 7) + (c & 31) at bits 2 ((c >> 5) & 3)) into units. One thread per destination word of one source
// row; `vrow` maps the source row to its row of the stacked GPU matrix. dst must be zeroed first.

__device__ __forceinline__ int stacked_row(int r, int part, int rows, int interleave8)
{
    // interleave8: rows of part 0 and 1 alternate in groups of 8 (w1, w3 for the fused SwiGLU epilogue).
    return interleave8 ? (r >> 3) * 16 + part * 8 + (r & 7) : part * rows + r;
}

extern "C" __global__ void repack_ternary(const unsigned char* __restrict__ src, int rows, int k, int row_bytes,
    u32* __restrict__ dst, int kpad, int part, int interleave8)
{
    int words_per_row = kpad / 16;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)rows * words_per_row) return;
    int r = (int)(idx / words_per_row), w = (int)(idx % words_per_row);
    int ku = w >> 2, t = w & 3;
    int n = stacked_row(r, part, rows, interleave8);
    int nu = n / UNIT_N, nin = n % UNIT_N, nt = nin >> 3, lane = (nin & 7) * 4 + t;
    const unsigned char* s = src + (size_t)r * row_bytes;
    u32 word = 0;
    for (int reg = 0; reg < 4; reg++)
        for (int i = 0; i < 4; i++)
        {
            int c = ku * UNIT_K + (reg >> 1) * 32 + (reg & 1) * 16 + t * 4 + i;
            u32 code = c < k ? (s[(c >> 7) * 32 + (c & 31)] >> (((c >> 5) & 3) * 2)) & 3u : 0u;
            word |= code << (8 * i + 2 * reg);
        }
    size_t ku_count = kpad / UNIT_K;
    dst[(((size_t)nu * ku_count + ku) * 32 + lane) * 4 + nt] = word;
}

// ---------------------------------------------------------------------------------------------------------
// Epilogues. acc is the integer sum of q * t (the code offset already removed). For TERMS = 3 the three
// planes' sums combine as s0 + (s1 + s2 / 254) / 254. The value is (float)sum * (alpha[n] * scale[m]),
// then + bias[n], exactly the CPU runtime's A8 arithmetic.

#define EPI_STORE 0     // y[m, n] = v (+ bias)
#define EPI_RESIDUAL 1  // y[m, n] += gate[image, n] * v   (y is the residual stream x, ldy = n)
#define EPI_SWIGLU 2    // even/odd 8-row groups are w1/w3: y[m, f] = silu(a) * b, f = 8 (n / 16) + n % 8

struct EpilogueArgs
{
    float* y;
    int ldy;
    const float* alpha;   // (npad)
    const float* bias;    // (n) or null
    const float* gate;    // EPI_RESIDUAL: gate of image b at gate + b * gate_stride
    int gate_stride;
    int tokens;           // rows per image (EPI_RESIDUAL)
};

template <int TERMS>
__device__ __forceinline__ float combine(const int* s)
{
    if (TERMS == 1) return (float)s[0];
    return (float)s[0] + ((float)s[1] + (float)s[2] / EXACT_BASE) / EXACT_BASE;
}

__device__ __forceinline__ float silu(float a) { return a / (1.0f + expf(-a)); }

// ---------------------------------------------------------------------------------------------------------
// Reference kernel: one thread per output, codes located one by one. Same epilogue arithmetic.

__device__ __forceinline__ int weight_code(const u32* w, int kpad, int n, int k)
{
    int nu = n / UNIT_N, nin = n % UNIT_N, ku = k / UNIT_K, kin = k % UNIT_K;
    int nt = nin >> 3, reg = (kin >> 5) * 2 + ((kin >> 4) & 1), t = (kin >> 2) & 3, i = kin & 3;
    int lane = (nin & 7) * 4 + t;
    u32 word = w[(((size_t)nu * (kpad / UNIT_K) + ku) * 32 + lane) * 4 + nt];
    return (word >> (8 * i + 2 * reg)) & 3;
}

template <int TERMS>
__device__ void gemm_reference(const int8* planes, const float* scales, const int* rowsums, int m, int mpad, int kpad,
    const u32* w, int n, int epi, EpilogueArgs e)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y;
    if (row >= m) return;
    int ncols = epi == EPI_SWIGLU ? n / 2 : n;
    if (col >= ncols) return;
    float v[2];
    for (int part = 0; part < (epi == EPI_SWIGLU ? 2 : 1); part++)
    {
        int nn = epi == EPI_SWIGLU ? (col >> 3) * 16 + part * 8 + (col & 7) : col;
        int s[TERMS];
        for (int j = 0; j < TERMS; j++)
        {
            const int8* a = planes + ((size_t)j * mpad + row) * kpad;
            int acc = 0;
            for (int k = 0; k < kpad; k++) acc += (int)a[k] * weight_code(w, kpad, nn, k);
            s[j] = acc - rowsums[j * mpad + row];
        }
        v[part] = __fmul_rn(combine<TERMS>(s), __fmul_rn(e.alpha[nn], scales[row]));
    }
    if (epi == EPI_SWIGLU)
        e.y[(size_t)row * e.ldy + col] = silu(v[0]) * v[1];
    else if (epi == EPI_RESIDUAL)
    {
        float* y = e.y + (size_t)row * e.ldy + col;
        *y = fmaf(v[0], e.gate[(size_t)(row / e.tokens) * e.gate_stride + col], *y);
    }
    else
        e.y[(size_t)row * e.ldy + col] = e.bias ? __fadd_rn(v[0], e.bias[col]) : v[0];
}

extern "C" __global__ void gemm_reference_t1(const int8* planes, const float* scales, const int* rowsums, int m, int mpad, int kpad,
    const u32* w, int n, int epi, EpilogueArgs e) { gemm_reference<1>(planes, scales, rowsums, m, mpad, kpad, w, n, epi, e); }
extern "C" __global__ void gemm_reference_t3(const int8* planes, const float* scales, const int* rowsums, int m, int mpad, int kpad,
    const u32* w, int n, int epi, EpilogueArgs e) { gemm_reference<3>(planes, scales, rowsums, m, mpad, kpad, w, n, epi, e); }

// ---------------------------------------------------------------------------------------------------------
// Fast kernel. Block tile: BM tokens x BN = 32 WARPS_N outputs, k in steps of 64 through a STAGES-deep
// cp.async pipeline. A tile in shared memory: TERMS x BM rows of 64 bytes, the four 16-byte chunks of row r
// at chunk c ^ ((r >> 1) & 3) (ldmatrix reads 8 rows of one chunk without bank conflicts); B tile: the
// BN / 32 units as stored (each lane reads its 16 bytes). Warp tile: BM / WARPS_M tokens x 32 outputs.

__device__ __forceinline__ u32 smem_addr(const void* p) { return (u32)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(u32 dst, const void* src)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dst), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void mma_s8u8(int* c, const u32* a, u32 b0, u32 b1)
{
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.u8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <int TERMS, int BM, int WARPS_M, int WARPS_N, int STAGES, int EPI>
__device__ __forceinline__ void gemm_fast(const int8* __restrict__ planes, const float* __restrict__ scales,
    const int* __restrict__ rowsums, int m, int mpad, int kpad, const u32* __restrict__ w, int n, EpilogueArgs e)
{
    constexpr int BN = WARPS_N * UNIT_N, TM = BM / WARPS_M, MT = TM / 16, THREADS = 32 * WARPS_M * WARPS_N;
    constexpr int A_STAGE = TERMS * BM * UNIT_K, B_STAGE = WARPS_N * UNIT_BYTES;
    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* sa = smem;
    unsigned char* sb = smem + STAGES * A_STAGE;

    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp % WARPS_M, wn = warp / WARPS_M;
    int m0 = blockIdx.y * BM, nb = blockIdx.x;
    int ktiles = kpad / UNIT_K;
    size_t plane = (size_t)mpad * kpad;
    const u32* wblock = w + (size_t)nb * WARPS_N * ktiles * (UNIT_BYTES / 4);

    auto load = [&](int stage, int kt) {
        // A: TERMS * BM rows of four 16-byte chunks.
        for (int c = tid; c < TERMS * BM * 4; c += THREADS)
        {
            int r = c >> 2, chunk = c & 3, term = r / BM, rr = r % BM;
            const int8* src = planes + term * plane + (size_t)(m0 + rr) * kpad + kt * UNIT_K + chunk * 16;
            cp_async16(smem_addr(sa + stage * A_STAGE + r * UNIT_K + ((chunk ^ ((r >> 1) & 3)) << 4)), src);
        }
        // B: WARPS_N units of 32 chunks.
        for (int c = tid; c < WARPS_N * 32; c += THREADS)
        {
            int u = c >> 5, chunk = c & 31;
            const u32* src = wblock + ((size_t)u * ktiles + kt) * (UNIT_BYTES / 4) + chunk * 4;
            cp_async16(smem_addr(sb + stage * B_STAGE + u * UNIT_BYTES + chunk * 16), src);
        }
    };

    int acc[TERMS][MT][4][4];
#pragma unroll
    for (int j = 0; j < TERMS; j++)
#pragma unroll
        for (int i = 0; i < MT; i++)
#pragma unroll
            for (int t = 0; t < 4; t++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[j][i][t][q] = 0;

#pragma unroll
    for (int s = 0; s < STAGES - 1; s++)
    {
        if (s < ktiles) load(s, s);
        cp_async_commit();
    }

    for (int kt = 0; kt < ktiles; kt++)
    {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        int next = kt + STAGES - 1;
        if (next < ktiles) load(next % STAGES, next);
        cp_async_commit();

        const unsigned char* a_stage = sa + (kt % STAGES) * A_STAGE;
        uint4 bw = *reinterpret_cast<const uint4*>(sb + (kt % STAGES) * B_STAGE + wn * UNIT_BYTES + lane * 16);
        u32 words[4] = { bw.x, bw.y, bw.z, bw.w };
#pragma unroll
        for (int ks = 0; ks < 2; ks++)
        {
            u32 b[4][2];
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
            {
                b[nt][0] = (words[nt] >> (4 * ks)) & 0x03030303u;
                b[nt][1] = (words[nt] >> (4 * ks + 2)) & 0x03030303u;
            }
#pragma unroll
            for (int j = 0; j < TERMS; j++)
#pragma unroll
                for (int i = 0; i < MT; i++)
                {
                    int r = j * BM + wm * TM + i * 16 + (lane & 15);
                    int chunk = ks * 2 + (lane >> 4);
                    u32 a[4];
                    ldmatrix_x4(smem_addr(a_stage + r * UNIT_K + ((chunk ^ ((r >> 1) & 3)) << 4)), a[0], a[1], a[2], a[3]);
#pragma unroll
                    for (int nt = 0; nt < 4; nt++) mma_s8u8(acc[j][i][nt], a, b[nt][0], b[nt][1]);
                }
        }
    }
    cp_async_wait<0>();

    // Epilogue: thread holds rows g, g + 8 and columns 2 (lane & 3) + {0, 1} of each 16 x 8 tile.
    int g = lane >> 2, tq = lane & 3;
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int h = 0; h < 2; h++)
        {
            int row = m0 + wm * TM + i * 16 + g + 8 * h;
            if (row >= m) continue;
            float sc = scales[row];
            int rs[TERMS];
#pragma unroll
            for (int j = 0; j < TERMS; j++) rs[j] = rowsums[j * mpad + row];
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int c = 0; c < 2; c++)
                {
                    int col = nb * BN + wn * UNIT_N + nt * 8 + 2 * tq + c;
                    int s[TERMS];
#pragma unroll
                    for (int j = 0; j < TERMS; j++) s[j] = acc[j][i][nt][2 * h + c] - rs[j];
                    float v = __fmul_rn(combine<TERMS>(s), __fmul_rn(e.alpha[col], sc));
                    if (EPI == EPI_SWIGLU)
                    {
                        // Tile nt (even) holds w1 rows, nt + 1 the matching w3 rows, in this thread's registers.
                        if (nt & 1) continue;
                        int s3[TERMS];
#pragma unroll
                        for (int j = 0; j < TERMS; j++) s3[j] = acc[j][i][nt + 1][2 * h + c] - rs[j];
                        float b3 = __fmul_rn(combine<TERMS>(s3), __fmul_rn(e.alpha[col + 8], sc));
                        int f = (col >> 4) * 8 + (col & 7);
                        if (f < n / 2) e.y[(size_t)row * e.ldy + f] = silu(v) * b3;
                    }
                    else if (col < n)
                    {
                        if (EPI == EPI_RESIDUAL)
                        {
                            float* y = e.y + (size_t)row * e.ldy + col;
                            *y = fmaf(v, e.gate[(size_t)(row / e.tokens) * e.gate_stride + col], *y);
                        }
                        else
                            e.y[(size_t)row * e.ldy + col] = e.bias ? __fadd_rn(v, e.bias[col]) : v;
                    }
                }
        }
}

// Instances: name gemm_t{TERMS}_m{BM}_e{EPI}. A8: 8 warps (2 x 4 or 1 x 4 for BM 64... see below), exact: TERMS 3.
#define GEMM_INSTANCE(TERMS, BM, WM, WN, STAGES, EPI) \
    extern "C" __global__ void __launch_bounds__(32 * WM * WN) gemm_t##TERMS##_m##BM##_e##EPI( \
        const int8* planes, const float* scales, const int* rowsums, int m, int mpad, int kpad, const u32* w, int n, EpilogueArgs e) \
    { gemm_fast<TERMS, BM, WM, WN, STAGES, EPI>(planes, scales, rowsums, m, mpad, kpad, w, n, e); }

#define GEMM_EPILOGUES(TERMS, BM, WM, WN, STAGES) \
    GEMM_INSTANCE(TERMS, BM, WM, WN, STAGES, 0) GEMM_INSTANCE(TERMS, BM, WM, WN, STAGES, 1) GEMM_INSTANCE(TERMS, BM, WM, WN, STAGES, 2)

GEMM_EPILOGUES(1, 128, 2, 4, 4)
GEMM_EPILOGUES(1, 64, 1, 4, 4)
GEMM_EPILOGUES(3, 64, 2, 4, 3)
GEMM_EPILOGUES(3, 32, 1, 4, 3)
