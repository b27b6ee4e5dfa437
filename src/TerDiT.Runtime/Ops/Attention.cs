namespace TerDiT.Runtime.Ops;

/// <summary>
/// Multi-head softmax attention without masks: for each image b and head h,
/// <c>O_bh = softmax(Q_bh K_bhᵀ / √hd) V_bh</c> (computed as <c>(E V) / rowsum(E)</c> with E the
/// unnormalised exponentials), where Q_bh is the (T, hd) slice of q at columns
/// <c>[h·hd, (h+1)·hd)</c> of the rows of image b. Scores and values go through
/// <see cref="FloatGemm"/>; (image, head) pairs are spread over threads, each worker with its own
/// scratch (packed K, packed V, a T×T score block), allocated once and reused.
/// The result does not depend on the number of threads.
/// </summary>
public sealed class Attention
{
    readonly int _tokens, _heads, _headDim, _workers;
    readonly float[][] _keys, _values, _scores, _sums;

    /// <param name="tokens">T, tokens per image.</param>
    /// <param name="heads">Number of heads.</param>
    /// <param name="headDim">hd; the row width is heads·hd.</param>
    /// <param name="workers">Threads that may run at once (one scratch set each).</param>
    public Attention(int tokens, int heads, int headDim, int workers)
    {
        if (tokens <= 0 || heads <= 0 || headDim <= 0 || workers <= 0)
            throw new ArgumentException($"attention sizes must be positive: T={tokens}, heads={heads}, hd={headDim}, workers={workers}");
        (_tokens, _heads, _headDim, _workers) = (tokens, heads, headDim, workers);
        _keys = new float[workers][];
        _values = new float[workers][];
        _scores = new float[workers][];
        _sums = new float[workers][];
        for (int w = 0; w < workers; w++)
        {
            _keys[w] = new float[FloatGemm.PackedLength(headDim, tokens)];
            _values[w] = new float[FloatGemm.PackedLength(tokens, headDim)];
            _scores[w] = new float[tokens * tokens];
            _sums[w] = new float[tokens];
        }
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
        float[] keys = _keys[worker], values = _values[worker], scores = _scores[worker];
        // Kᵀ (hd, T) and V (T, hd), each packed into panels.
        FloatGemm.PackTransposed(k.Span[offset..], _tokens, _headDim, d, keys);
        FloatGemm.PackRowMajor(v.Span[offset..], _tokens, _headDim, d, values);
        // S = Q Kᵀ (T, T); E = exp(S/√hd − rowmax) with row sums; O = (E V) / sums (T, hd) written at stride D.
        FloatGemm.Multiply(q.Span[offset..], d, _tokens, _headDim, keys, _tokens, scores, _tokens);
        float[] sums = _sums[worker];
        Elementwise.ScaledExpRows(scores, _tokens, 1f / MathF.Sqrt(_headDim), sums);
        Span<float> o = output.Span[offset..];
        FloatGemm.Multiply(scores, _tokens, _tokens, _tokens, values, _headDim, o, d);
        for (int t = 0; t < _tokens; t++) Elementwise.Scale(o.Slice(t * d, _headDim), 1f / sums[t]);
    }
}
