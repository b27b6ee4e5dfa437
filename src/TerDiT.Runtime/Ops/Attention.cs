using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// Multi-head softmax attention without masks: for each image b and head h,
/// <c>O_bh = softmax(Q_bh K_bhᵀ / √hd) V_bh</c> (computed as <c>(E V) / rowsum(E)</c> with E the
/// unnormalised exponentials), where Q_bh is the (T, hd) slice of q at columns
/// <c>[h·hd, (h+1)·hd)</c> of the rows of image b. Scores and values go through
/// <see cref="FloatGemm"/>, or with <see cref="AttentionArithmetic.Int16"/> through
/// <see cref="Int16Gemm"/> on int16 codes; (image, head) pairs are spread over threads, each worker
/// with its own scratch (packed K, packed V, a T×T score block), allocated once and reused.
/// The result does not depend on the number of threads.
/// </summary>
public sealed class Attention
{
    readonly int _tokens, _heads, _headDim, _workers, _qkLimit, _pvLimit;
    readonly AttentionArithmetic _arithmetic;
    readonly Scratch[] _scratch;

    /// <param name="tokens">T, tokens per image.</param>
    /// <param name="heads">Number of heads.</param>
    /// <param name="headDim">hd; the row width is heads·hd.</param>
    /// <param name="workers">Threads that may run at once (one scratch set each).</param>
    /// <param name="arithmetic">fp32 products, or int16 codes (<see cref="AttentionArithmetic.Int16"/>).</param>
    public Attention(int tokens, int heads, int headDim, int workers, AttentionArithmetic arithmetic = AttentionArithmetic.Float32)
    {
        if (tokens <= 0 || heads <= 0 || headDim <= 0 || workers <= 0)
            throw new ArgumentException($"attention sizes must be positive: T={tokens}, heads={heads}, hd={headDim}, workers={workers}");
        if (!Enum.IsDefined(arithmetic)) throw new ArgumentOutOfRangeException(nameof(arithmetic), arithmetic, "unknown attention arithmetic");
        (_tokens, _heads, _headDim, _workers, _arithmetic) = (tokens, heads, headDim, workers, arithmetic);
        // Code ranges that keep every int32 dot product exact: hd (padded to pairs) products of
        // two codes for the scores, T of them for the values.
        _qkLimit = Int16Gemm.CodeLimit(2 * Int16Gemm.Pairs(headDim));
        _pvLimit = Int16Gemm.CodeLimit(2 * Int16Gemm.Pairs(tokens));
        _scratch = new Scratch[workers];
        for (int w = 0; w < workers; w++) _scratch[w] = new Scratch(tokens, headDim, arithmetic);
    }

    /// <summary>One worker's buffers, allocated once and reused.</summary>
    sealed class Scratch(int t, int hd, AttentionArithmetic arithmetic)
    {
        public readonly AlignedBuffer<float> Keys = new(FloatGemm.PackedLength(hd, t)), Values = new(FloatGemm.PackedLength(t, hd));
        public readonly AlignedBuffer<float> Scores = new(t * t), Sums = new(t);
        // Int16 only (empty otherwise): codes of Q (T, 2·pairs(hd)) and P (T, 2·pairs(T)), packed K and V
        // pairs, and the scales of Q rows, K tokens, V channels.
        static int Size(AttentionArithmetic a, int n) => a == AttentionArithmetic.Int16 ? n : 0;
        public readonly AlignedBuffer<short> QCodes = new(Size(arithmetic, t * 2 * Int16Gemm.Pairs(hd)));
        public readonly AlignedBuffer<short> PCodes = new(Size(arithmetic, t * 2 * Int16Gemm.Pairs(t)));
        public readonly AlignedBuffer<int> KeyPairs = new(Size(arithmetic, Int16Gemm.PackedLength(hd, t)));
        public readonly AlignedBuffer<int> ValuePairs = new(Size(arithmetic, Int16Gemm.PackedLength(t, hd)));
        public readonly AlignedBuffer<float> QScales = new(Size(arithmetic, t)), Row = new(Size(arithmetic, t));
        public readonly AlignedBuffer<float> KeyScales = new(Size(arithmetic, FloatGemm.PackedLength(1, t)));
        public readonly AlignedBuffer<float> ValueScales = new(Size(arithmetic, FloatGemm.PackedLength(1, hd)));
    }

    /// <summary>
    /// Attention over q, k, v (N·T, D) with D = heads·hd into <paramref name="output"/> (N·T, D),
    /// N = <paramref name="images"/>, using at most the workers given at construction.
    /// </summary>
    public void Forward(ReadOnlyMemory<float> q, ReadOnlyMemory<float> k, ReadOnlyMemory<float> v, Memory<float> output, int images)
    {
        int d = _heads * _headDim;
        long needed = (long)images * _tokens * d;
        if (images <= 0) throw new ArgumentException($"image count must be positive, got {images}");
        if (q.Length < needed || k.Length < needed || v.Length < needed || output.Length < needed)
            throw new ArgumentException($"attention buffers must hold {needed} floats ({images} images × {_tokens} tokens × {d})");
        int items = images * _heads, workers = Math.Min(_workers, items);
        if (workers == 1)
        {
            for (int item = 0; item < items; item++) Head(q, k, v, output, item, 0);
            return;
        }
        // Static partition: worker w takes items [w·items/workers, (w+1)·items/workers).
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            for (int item = w * items / workers; item < (w + 1) * items / workers; item++) Head(q, k, v, output, item, w);
        });
    }

    void Head(ReadOnlyMemory<float> q, ReadOnlyMemory<float> k, ReadOnlyMemory<float> v, Memory<float> output, int item, int worker)
    {
        int d = _heads * _headDim, b = item / _heads, h = item % _heads;
        int offset = b * _tokens * d + h * _headDim;
        Scratch s = _scratch[worker];
        // Kᵀ (hd, T) and V (T, hd), each packed into panels.
        FloatGemm.PackTransposed(k.Span[offset..], _tokens, _headDim, d, s.Keys);
        FloatGemm.PackRowMajor(v.Span[offset..], _tokens, _headDim, d, s.Values);
        Span<float> o = output.Span[offset..];
        if (_arithmetic == AttentionArithmetic.Int16)
        {
            Int16Head(q.Span[offset..], o, s);
            return;
        }
        // S = Q Kᵀ (T, T); E = exp(S/√hd − rowmax) with row sums; O = (E V) / sums (T, hd) written at stride D.
        FloatGemm.Multiply(q.Span[offset..], d, _tokens, _headDim, s.Keys, _tokens, s.Scores, _tokens);
        Elementwise.ScaledExpRows(s.Scores, _tokens, 1f / MathF.Sqrt(_headDim), s.Sums);
        FloatGemm.Multiply(s.Scores, _tokens, _tokens, _tokens, s.Values, _headDim, o, d);
        for (int t = 0; t < _tokens; t++) Elementwise.Scale(o.Slice(t * d, _headDim), 1f / s.Sums[t]);
    }

    /// <summary>
    /// The same head in int16 codes: Q per token, K per token and V per channel quantized to
    /// [−qk, qk] / [−pv, pv]; scores = Σ codes (exact int32) · scale_q · scale_k; the exponentials
    /// e ∈ (0, 1] become codes round(e · pv) with their exact integer row sums; O = (P V codes) ·
    /// scale_v / Σ P codes.
    /// </summary>
    void Int16Head(ReadOnlySpan<float> q, Span<float> o, Scratch s)
    {
        int t = _tokens, hd = _headDim, d = _heads * hd, ldq = 2 * Int16Gemm.Pairs(hd), ldp = 2 * Int16Gemm.Pairs(t);
        Int16Gemm.QuantizeRows(q, t, hd, d, _qkLimit, s.QCodes, ldq, s.QScales);
        Int16Gemm.PackPanels(s.Keys, hd, t, _qkLimit, s.KeyPairs, s.KeyScales);
        Int16Gemm.PackPanels(s.Values, t, hd, _pvLimit, s.ValuePairs, s.ValueScales);
        Span<int> scores = MemoryMarshal.Cast<float, int>(s.Scores.AsSpan());
        Int16Gemm.Multiply(s.QCodes, ldq, t, hd, s.KeyPairs, t, scores, t);                // (T, T)
        ExpCodes(scores, s, 1f / MathF.Sqrt(hd), ldp);
        Span<int> oCodes = MemoryMarshal.Cast<float, int>(o);
        Int16Gemm.Multiply(s.PCodes, ldp, t, t, s.ValuePairs, hd, oCodes, d);              // (T, hd) at stride D
        for (int i = 0; i < t; i++) Dequantize(oCodes.Slice(i * d, hd), s.ValueScales, 1f / s.Sums[i], o.Slice(i * d, hd));
    }

    /// <summary>
    /// Row i of the scores: <c>x_j = S[i, j] · (scale · scale_q[i]) · scale_k[j]</c>, then
    /// <c>P[i, j] = round(exp(x_j − max x) · pv)</c> into <see cref="Scratch.PCodes"/> (stride
    /// <paramref name="ldp"/>, the code past an odd T is 0) and <c>Sums[i] = Σ_j P[i, j]</c>, exact.
    /// </summary>
    unsafe void ExpCodes(ReadOnlySpan<int> scores, Scratch s, float scale, int ldp)
    {
        int t = _tokens;
        fixed (int* ps = scores)
        fixed (float* keyScales = s.KeyScales, x = s.Row)
        fixed (short* pc = s.PCodes)
            for (int i = 0; i < t; i++)
            {
                int* row = ps + (nint)i * t;
                short* codes = pc + (nint)i * ldp;
                float rowScale = scale * s.QScales[i];
                // Same steps on 16 or 8 lanes (the exponential's bits do not depend on the width).
                var (j, max) = Vector512.IsHardwareAccelerated ? ScaledRow512(row, keyScales, rowScale, x, t) : ScaledRow256(row, keyScales, rowScale, x, t);
                for (; j < t; j++) max = MathF.Max(max, x[j] = row[j] * (rowScale * keyScales[j]));
                (j, int total) = Vector512.IsHardwareAccelerated ? Codes512(x, max, codes, t) : Codes256(x, max, codes, t);
                for (; j < t; j++) total += codes[j] = (short)MathF.Round(MathF.Exp(x[j] - max) * _pvLimit);
                if (t % 2 != 0) codes[t] = 0;
                s.Sums[i] = total;
            }
    }

    /// <summary><c>x_j = row[j] · (rowScale · keyScales[j])</c> for whole vectors of j; returns the first j left and the vectors' max.</summary>
    static unsafe (int J, float Max) ScaledRow512(int* row, float* keyScales, float rowScale, float* x, int t)
    {
        var vrow = Vector512.Create(rowScale);
        var vmax = Vector512.Create(float.NegativeInfinity);
        int j = 0;
        for (; j + 16 <= t; j += 16)
        {
            var v = Vector512.ConvertToSingle(Vector512.Load(row + j)) * (vrow * Vector512.Load(keyScales + j));
            v.Store(x + j);
            vmax = Vector512.Max(vmax, v);
        }
        return (j, Elementwise.MaxAcross(vmax));
    }

    static unsafe (int J, float Max) ScaledRow256(int* row, float* keyScales, float rowScale, float* x, int t)
    {
        var vrow = Vector256.Create(rowScale);
        var vmax = Vector256.Create(float.NegativeInfinity);
        int j = 0;
        for (; j + 8 <= t; j += 8)
        {
            var v = Vector256.ConvertToSingle(Vector256.Load(row + j)) * (vrow * Vector256.Load(keyScales + j));
            v.Store(x + j);
            vmax = Vector256.Max(vmax, v);
        }
        var m = Vector128.Max(vmax.GetLower(), vmax.GetUpper());
        return (j, MathF.Max(MathF.Max(m.GetElement(0), m.GetElement(1)), MathF.Max(m.GetElement(2), m.GetElement(3))));
    }

    /// <summary><c>codes[j] = round(exp(x_j − max) · pv)</c> for whole vectors of j; returns the first j left and the codes' sum.</summary>
    unsafe (int J, int Sum) Codes512(float* x, float max, short* codes, int t)
    {
        var vm = Vector512.Create(max);
        var limit = Vector512.Create((float)_pvLimit);
        var sum = Vector512<int>.Zero;
        int j = 0;
        for (; j + 16 <= t; j += 16)
        {
            var c = Int16Gemm.Code(Elementwise.Exp(Vector512.Load(x + j) - vm), limit);
            sum += c;
            Vector512.Narrow(c, c).GetLower().Store(codes + j);
        }
        return (j, Vector512.Sum(sum));
    }

    unsafe (int J, int Sum) Codes256(float* x, float max, short* codes, int t)
    {
        var vm = Vector256.Create(max);
        var limit = Vector256.Create((float)_pvLimit);
        var sum = Vector256<int>.Zero;
        int j = 0;
        for (; j + 8 <= t; j += 8)
        {
            var c = Vector256.ConvertToInt32(Vector256.Round(Elementwise.Exp(Vector256.Load(x + j) - vm) * limit));
            sum += c;
            Vector256.Narrow(c, c).GetLower().Store(codes + j);
        }
        return (j, Vector256.Sum(sum));
    }

    /// <summary><c>o[c] = codes[c] · scales[c] · inverseSum</c>; <paramref name="o"/> may share memory with <paramref name="codes"/>.</summary>
    static unsafe void Dequantize(ReadOnlySpan<int> codes, ReadOnlySpan<float> scales, float inverseSum, Span<float> o)
    {
        fixed (int* pc = codes)
        fixed (float* ps = scales, po = o)
        {
            int c = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vs = Vector512.Create(inverseSum);
                for (; c + 16 <= codes.Length; c += 16)
                    (Vector512.ConvertToSingle(Vector512.Load(pc + c)) * (Vector512.Load(ps + c) * vs)).Store(po + c);
            }
            else
            {
                var vs = Vector256.Create(inverseSum);
                for (; c + 8 <= codes.Length; c += 8)
                    (Vector256.ConvertToSingle(Vector256.Load(pc + c)) * (Vector256.Load(ps + c) * vs)).Store(po + c);
            }
            for (; c < codes.Length; c++) po[c] = pc[c] * (ps[c] * inverseSum);
        }
    }
}

/// <summary>How <see cref="Attention"/> multiplies.</summary>
public enum AttentionArithmetic
{
    /// <summary>fp32 products (<see cref="FloatGemm"/>): the reference's arithmetic up to summation order.</summary>
    Float32,
    /// <summary>
    /// int16 codes with int32 sums (<see cref="Int16Gemm"/>, about 1.6× the fp32 rate on AVX2/AVX-512):
    /// Q and K per token, V per channel, the softmax numerators per row, each with at least 11 bits
    /// for T ≤ 1024 (the A8 runtime mode).
    /// </summary>
    Int16,
}
