// Multi-head softmax attention without masks over q, k, v (N * T, D), D = heads * hd, the T rows of each image
// attending to each other: O = softmax(Q K^T / sqrt(hd)) V per image and head, written fp32 to out (N * T, D).
// attention_f32: fp32 throughout, one warp per query row and head (the reference, and exact mode's kernel).
// attention_bf16_hdXX: bf16 q, k, v on tensor cores (mma.sync m16n8k16, fp32 accumulation), flash-style:
// 64 queries a block (16 a warp), keys in tiles of 64 with an online softmax.

typedef unsigned int u32;
typedef unsigned short bf16; // bfloat16 bits

#define NEG_INF __int_as_float(0xff800000)
#define MAX_HD_WORDS 8   // attention_f32 handles hd <= 256

extern "C" __global__ void attention_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int tokens, int d, int hd, float scale)
{
    int lane = threadIdx.x & 31, query = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int head = blockIdx.y, image = blockIdx.z;
    if (query >= tokens) return;
    size_t base = (size_t)image * tokens * d + (size_t)head * hd;
    float qr[MAX_HD_WORDS], acc[MAX_HD_WORDS];
#pragma unroll
    for (int j = 0; j < MAX_HD_WORDS; j++)
    {
        int c = lane + 32 * j;
        qr[j] = c < hd ? q[base + (size_t)query * d + c] : 0.0f;
        acc[j] = 0.0f;
    }
    float mx = NEG_INF, sum = 0.0f;
    for (int key = 0; key < tokens; key++)
    {
        const float* kr = k + base + (size_t)key * d;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < MAX_HD_WORDS; j++)
        {
            int c = lane + 32 * j;
            if (c < hd) s = fmaf(qr[j], kr[c], s);
        }
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        s *= scale;
        float nm = fmaxf(mx, s), corr = expf(mx - nm), p = expf(s - nm);
        sum = sum * corr + p;
        const float* vr = v + base + (size_t)key * d;
#pragma unroll
        for (int j = 0; j < MAX_HD_WORDS; j++)
        {
            int c = lane + 32 * j;
            if (c < hd) acc[j] = fmaf(p, vr[c], acc[j] * corr);
        }
        mx = nm;
    }
    float inv = 1.0f / sum;
#pragma unroll
    for (int j = 0; j < MAX_HD_WORDS; j++)
    {
        int c = lane + 32 * j;
        if (c < hd) out[base + (size_t)query * d + c] = acc[j] * inv;
    }
}

__device__ __forceinline__ u32 smem_addr(const void* p) { return (u32)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(u32 addr, u32* r)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_trans(u32 addr, u32* r)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float* c, const u32* a, u32 b0, u32 b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ u32 pack_bf16(float lo, float hi)
{
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// Rows [row0, row0 + 64) of one head (hd columns at `col`) into shared memory with row stride HD + 8;
// rows past `rows` are zero.
template <int HD>
__device__ __forceinline__ void load_tile(bf16* dst, const bf16* src, int row0, int rows, int d)
{
    constexpr int CHUNKS = HD / 8; // 16-byte chunks per row
    for (int c = threadIdx.x; c < 64 * CHUNKS; c += blockDim.x)
    {
        int r = c / CHUNKS, ch = c % CHUNKS;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (row0 + r < rows) val = *reinterpret_cast<const uint4*>(src + (size_t)(row0 + r) * d + ch * 8);
        *reinterpret_cast<uint4*>(dst + r * (HD + 8) + ch * 8) = val;
    }
}

template <int HD>
__device__ void attention_bf16(const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, float* __restrict__ out, int tokens, int d, float scale_log2)
{
    constexpr int LD = HD + 8, KS = HD / 16, NT = HD / 8;
    __shared__ __align__(16) bf16 ks[64 * LD], vs[64 * LD];
    bf16* qs = ks; // Q passes through the K tile's memory into registers first
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tq = lane & 3;
    int q0 = blockIdx.x * 64, head = blockIdx.y, image = blockIdx.z;
    size_t base = (size_t)image * tokens * d + (size_t)head * HD;

    load_tile<HD>(qs, q + base, q0, tokens, d);
    __syncthreads();
    u32 qa[KS][4];
#pragma unroll
    for (int kk = 0; kk < KS; kk++)
        ldsm_x4(smem_addr(qs + (warp * 16 + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8), qa[kk]);

    float o[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    float mx[2] = { NEG_INF, NEG_INF }, sum[2] = { 0.0f, 0.0f };

    for (int k0 = 0; k0 < tokens; k0 += 64)
    {
        __syncthreads();
        load_tile<HD>(ks, k + base, k0, tokens, d);
        load_tile<HD>(vs, v + base, k0, tokens, d);
        __syncthreads();

        // S (16 x 64) = Q K^T for this warp's 16 queries.
        float s[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KS; kk++)
#pragma unroll
            for (int j = 0; j < 8; j += 2)
            {
                u32 b[4];
                ldsm_x4(smem_addr(ks + (j * 8 + (lane >> 4) * 8 + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8), b);
                mma_bf16(s[j], qa[kk], b[0], b[1]);
                mma_bf16(s[j + 1], qa[kk], b[2], b[3]);
            }

        // Online softmax in base 2: rows g (h = 0) and g + 8 (h = 1); keys past the end are masked.
        float corr[2];
#pragma unroll
        for (int h = 0; h < 2; h++)
        {
            float m = mx[h];
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int c = 0; c < 2; c++)
                {
                    int key = k0 + j * 8 + 2 * tq + c;
                    float val = key < tokens ? s[j][2 * h + c] * scale_log2 : NEG_INF;
                    s[j][2 * h + c] = val;
                    m = fmaxf(m, val);
                }
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            corr[h] = exp2f(mx[h] - m);
            mx[h] = m;
            float rs = 0.0f;
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int c = 0; c < 2; c++)
                {
                    float p = exp2f(s[j][2 * h + c] - m);
                    s[j][2 * h + c] = p;
                    rs += p;
                }
            sum[h] = sum[h] * corr[h] + rs;
        }
#pragma unroll
        for (int j = 0; j < NT; j++)
        {
            o[j][0] *= corr[0]; o[j][1] *= corr[0];
            o[j][2] *= corr[1]; o[j][3] *= corr[1];
        }

        // O += P V: P from the S registers (two 8-key tiles make one 16-key A fragment), V through ldmatrix.trans.
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
        {
            u32 pa[4] = { pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                          pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]) };
#pragma unroll
            for (int j = 0; j < NT; j += 2)
            {
                u32 b[4];
                ldsm_x4_trans(smem_addr(vs + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD + j * 8 + (lane >> 4) * 8), b);
                mma_bf16(o[j], pa, b[0], b[1]);
                mma_bf16(o[j + 1], pa, b[2], b[3]);
            }
        }
    }

#pragma unroll
    for (int h = 0; h < 2; h++)
    {
        float total = sum[h];
        total += __shfl_xor_sync(0xffffffffu, total, 1);
        total += __shfl_xor_sync(0xffffffffu, total, 2);
        float inv = 1.0f / total;
        int row = q0 + warp * 16 + g + 8 * h;
        if (row >= tokens) continue;
        float* dst = out + base + (size_t)row * d;
#pragma unroll
        for (int j = 0; j < NT; j++)
        {
            dst[j * 8 + 2 * tq] = o[j][2 * h] * inv;
            dst[j * 8 + 2 * tq + 1] = o[j][2 * h + 1] * inv;
        }
    }
}

#define ATTENTION_INSTANCE(HD) \
    extern "C" __global__ void __launch_bounds__(128) attention_bf16_hd##HD(const bf16* q, const bf16* k, \
        const bf16* v, float* out, int tokens, int d, float scale_log2) \
    { attention_bf16<HD>(q, k, v, out, tokens, d, scale_log2); }

ATTENTION_INSTANCE(32)
ATTENTION_INSTANCE(48)
ATTENTION_INSTANCE(64)
ATTENTION_INSTANCE(96)
ATTENTION_INSTANCE(128)
