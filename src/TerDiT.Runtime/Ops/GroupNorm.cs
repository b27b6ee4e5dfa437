using System.Buffers;
using System.Numerics.Tensors;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// Group normalisation of one channels-last image x (P pixels, C channels), as PyTorch's
/// <c>GroupNorm(groups, C, eps)</c>: channels split into G consecutive groups; each group's mean and
/// biased variance over all its P·C/G values; <c>y = (x − mean) / sqrt(var + eps) · γ_c + β_c</c>,
/// optionally followed by SiLU (the VAE always activates after its norms). Statistics are two-pass
/// (mean, then squared deviations) with per-pixel-row float sums added in double, so large means
/// cost no precision; per-worker sums are added in worker order, so a result depends only on the
/// thread count. <paramref name="y"/> may be x.
/// </summary>
public sealed unsafe class GroupNorm
{
    readonly float[] _gamma, _beta;
    readonly int _groups;
    readonly float _eps;
    readonly ParallelOptions _parallel;

    public int Channels { get; }

    public GroupNorm(float[] gamma, float[] beta, int groups, float eps, ParallelOptions parallel)
    {
        if (gamma.Length != beta.Length || gamma.Length == 0) throw new ArgumentException($"group norm weight/bias have {gamma.Length}/{beta.Length} values");
        if (groups <= 0 || gamma.Length % groups != 0) throw new ArgumentException($"{gamma.Length} channels do not split into {groups} groups");
        (_gamma, _beta, _groups, _eps, _parallel, Channels) = (gamma, beta, groups, eps, parallel, gamma.Length);
    }

    /// <summary>y = GroupNorm(x) (then SiLU when <paramref name="silu"/>), x and y (pixels, C).</summary>
    public void Forward(ReadOnlySpan<float> x, int pixels, Span<float> y, bool silu)
    {
        int c = Channels, perGroup = c / _groups;
        if (pixels <= 0 || x.Length < (long)pixels * c || y.Length < (long)pixels * c)
            throw new ArgumentException($"group norm over {pixels} pixels × {c} channels: x holds {x.Length}, y holds {y.Length}");
        var channelSums = new double[c];
        var mean = new double[_groups];
        ChannelSums(x, pixels, null, channelSums);
        for (int g = 0; g < _groups; g++) mean[g] = Sum(channelSums, g, perGroup) / ((double)pixels * perGroup);
        var channelMean = new float[c];
        for (int j = 0; j < c; j++) channelMean[j] = (float)mean[j / perGroup];
        ChannelSums(x, pixels, channelMean, channelSums);

        // y = x · a + b with a = γ / sqrt(var + eps), b = β − mean · a.
        var a = new float[c];
        var b = new float[c];
        for (int j = 0; j < c; j++)
        {
            int g = j / perGroup;
            double inv = 1 / Math.Sqrt(Sum(channelSums, g, perGroup) / ((double)pixels * perGroup) + _eps);
            a[j] = (float)(_gamma[j] * inv);
            b[j] = (float)(_beta[j] - mean[g] * _gamma[j] * inv);
        }
        fixed (float* px = x, py = y)
        {
            nint ix = (nint)px, iy = (nint)py;
            Rows(pixels, (_, p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    var row = new Span<float>((float*)iy + (nint)p * c, c);
                    TensorPrimitives.FusedMultiplyAdd(new ReadOnlySpan<float>((float*)ix + (nint)p * c, c), a, b, row);
                    if (silu) Elementwise.Silu(row, row);
                }
            });
        }
    }

    static double Sum(double[] v, int group, int perGroup)
    {
        double s = 0;
        for (int j = group * perGroup; j < (group + 1) * perGroup; j++) s += v[j];
        return s;
    }

    /// <summary>Per channel, Σ_p x[p, c] (no <paramref name="center"/>) or Σ_p (x[p, c] − center[c])², in double.</summary>
    void ChannelSums(ReadOnlySpan<float> x, int pixels, float[]? center, double[] sums)
    {
        int c = Channels;
        var totals = new double[Workers(pixels)][];
        fixed (float* px = x)
        {
            nint ix = (nint)px;
            Rows(pixels, (w, p0, p1) =>
            {
                var total = totals[w] = new double[c];
                var scratch = ArrayPool<float>.Shared.Rent(2 * c);
                try
                {
                    Span<float> acc = scratch.AsSpan(0, c), t = scratch.AsSpan(c, c);
                    acc.Clear();
                    for (int p = p0; p < p1; p++)
                    {
                        var row = new ReadOnlySpan<float>((float*)ix + (nint)p * c, c);
                        if (center is null) TensorPrimitives.Add(acc, row, acc);
                        else
                        {
                            TensorPrimitives.Subtract(row, center, t);
                            TensorPrimitives.FusedMultiplyAdd(t, t, acc, acc);
                        }
                        if ((p - p0) % 256 == 255 || p == p1 - 1) // float partial sums of at most 256 pixels, then double
                        {
                            for (int j = 0; j < c; j++) total[j] += acc[j];
                            acc.Clear();
                        }
                    }
                }
                finally { ArrayPool<float>.Shared.Return(scratch); }
            });
        }
        Array.Clear(sums);
        foreach (var total in totals)
            for (int j = 0; j < c; j++) sums[j] += total[j];
    }

    /// <summary>Workers for <paramref name="pixels"/>: the thread limit, at most one per 1024 pixels.</summary>
    int Workers(int pixels) =>
        Math.Clamp(_parallel.MaxDegreeOfParallelism > 0 ? _parallel.MaxDegreeOfParallelism : Environment.ProcessorCount, 1, Math.Max(1, pixels / 1024));

    /// <summary>Pixels split into one contiguous range per worker: body(worker, first, end).</summary>
    void Rows(int pixels, Action<int, int, int> body)
    {
        int workers = Workers(pixels);
        if (workers == 1) { body(0, 0, pixels); return; }
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w => body(w, w * pixels / workers, (w + 1) * pixels / workers));
    }
}
