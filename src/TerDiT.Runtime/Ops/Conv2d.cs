using System.Buffers;
using System.Numerics.Tensors;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// 2-D convolution of one channels-last image, stride 1, kernel 1×1 (no padding) or 3×3 (zero padding 1),
/// optionally reading its input nearest-neighbour upsampled by 2 (diffusers' <c>Upsample2D</c>:
/// interpolate, then convolve) without materialising the upsampled image. x is (H, W, Cin), y is
/// (H', W', Cout) with H' = 2H when upsampling. The weight arrives as PyTorch stores it, (Cout, Cin, k, k);
/// it is reordered once to (Cout, ky, kx, Cin) and packed for <see cref="FloatGemm"/>, so each band of
/// output rows is one GEMM: im2col rows (pixels × 9·Cin, each pixel's 3×3 neighbourhood, channels
/// contiguous) times the packed weight. Bands run in parallel, each with its own im2col buffer; every
/// output is a sum over (ky, kx, cin) in that order, so the result does not depend on the thread count.
/// </summary>
public sealed class Conv2d
{
    readonly float[] _packed;
    readonly float[]? _bias;
    readonly ParallelOptions _parallel;

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Kernel { get; }

    /// <param name="weight">(Cout, Cin, k, k) row-major.</param>
    /// <param name="bias">Cout values, or null.</param>
    /// <param name="kernel">1 or 3.</param>
    public Conv2d(ReadOnlySpan<float> weight, float[]? bias, int outChannels, int inChannels, int kernel, ParallelOptions parallel)
    {
        if (kernel is not (1 or 3)) throw new ArgumentException($"kernel must be 1 or 3, got {kernel}");
        if (outChannels <= 0 || inChannels <= 0) throw new ArgumentException($"channels must be positive, got {outChannels}, {inChannels}");
        int k = inChannels * kernel * kernel;
        if (weight.Length != (long)outChannels * k) throw new ArgumentException($"conv weight has {weight.Length} values, expected {outChannels}×{inChannels}×{kernel}×{kernel}");
        if (bias != null && bias.Length != outChannels) throw new ArgumentException($"conv bias has {bias.Length} values, expected {outChannels}");
        (OutChannels, InChannels, Kernel, _bias, _parallel) = (outChannels, inChannels, kernel, bias, parallel);
        // (Cout, Cin, ky, kx) → (Cout, ky, kx, Cin): the im2col order, channels innermost.
        var reordered = new float[weight.Length];
        int taps = kernel * kernel;
        for (int o = 0; o < outChannels; o++)
            for (int c = 0; c < inChannels; c++)
                for (int t = 0; t < taps; t++)
                    reordered[(o * taps + t) * inChannels + c] = weight[(o * inChannels + c) * taps + t];
        _packed = new float[FloatGemm.PackedLength(k, outChannels)];
        FloatGemm.PackTransposed(reordered, outChannels, k, k, _packed);
    }

    /// <summary>y (H', W', Cout) = conv(x (H, W, Cin)) + bias, H' = W'/W·H = 2H with <paramref name="upsample"/>. y is overwritten.</summary>
    public void Forward(ReadOnlySpan<float> x, int height, int width, Span<float> y, bool upsample = false)
    {
        int scale = upsample ? 2 : 1, outH = height * scale, outW = width * scale;
        if (height <= 0 || width <= 0) throw new ArgumentException($"image must be non-empty, got {height}×{width}");
        if (x.Length < (long)height * width * InChannels) throw new ArgumentException($"input holds {x.Length} floats, {height}×{width}×{InChannels} needed");
        if (y.Length < (long)outH * outW * OutChannels) throw new ArgumentException($"output holds {y.Length} floats, {outH}×{outW}×{OutChannels} needed");
        if (Kernel == 1 && !upsample)
            FloatGemm.MultiplyParallel(x, InChannels, height * width, InChannels, _packed, OutChannels, y, OutChannels, _parallel);
        else
            Bands(x, height, width, y, scale);
        if (_bias != null)
            for (long p = 0, n = (long)outH * outW; p < n; p++)
            {
                var row = y.Slice((int)(p * OutChannels), OutChannels);
                TensorPrimitives.Add(row, _bias, row);
            }
    }

    /// <summary>Output pixels per GEMM at least: enough rows that streaming the packed weight is amortised (narrow low-resolution images get several rows).</summary>
    const int BandPixels = 192;

    /// <summary>One GEMM per band of output rows: im2col of the band's pixels, then (pixels, K) · (K, Cout).</summary>
    unsafe void Bands(ReadOnlySpan<float> x, int height, int width, Span<float> y, int scale)
    {
        int outH = height * scale, outW = width * scale, k = InChannels * Kernel * Kernel;
        int rowsPerBand = Math.Min(outH, (BandPixels + outW - 1) / outW), bands = (outH + rowsPerBand - 1) / rowsPerBand;
        fixed (float* px = x, py = y)
        {
            nint ix = (nint)px, iy = (nint)py;
            int xLength = x.Length, yLength = y.Length;
            void Band(int band)
            {
                int r0 = band * rowsPerBand, rows = Math.Min(rowsPerBand, outH - r0), pixels = rows * outW;
                var columns = ArrayPool<float>.Shared.Rent(pixels * k);
                try
                {
                    var input = new ReadOnlySpan<float>((float*)ix, xLength);
                    var output = new Span<float>((float*)iy, yLength);
                    for (int r = 0; r < rows; r++) Im2Col(input, height, width, scale, r0 + r, columns.AsSpan(r * outW * k, outW * k));
                    FloatGemm.Multiply(columns, k, pixels, k, _packed, OutChannels, output.Slice(r0 * outW * OutChannels), OutChannels);
                }
                finally { ArrayPool<float>.Shared.Return(columns); }
            }
            if (bands == 1 || _parallel.MaxDegreeOfParallelism == 1) for (int b = 0; b < bands; b++) Band(b);
            else Parallel.For(0, bands, _parallel, Band);
        }
    }

    /// <summary>
    /// Row <paramref name="r"/> of the (possibly upsampled) image as im2col rows: for output pixel c, the
    /// values x[(r + dy) / s, (c + dx) / s, :] for dy, dx in the kernel window (offsets −1..1 for 3×3),
    /// zero outside the image.
    /// </summary>
    void Im2Col(ReadOnlySpan<float> x, int height, int width, int scale, int r, Span<float> columns)
    {
        int cin = InChannels, outW = width * scale, taps = Kernel * Kernel, k = cin * taps, half = Kernel / 2;
        for (int c = 0; c < outW; c++)
        {
            var dst = columns.Slice(c * k, k);
            for (int t = 0; t < taps; t++)
            {
                int yy = r + t / Kernel - half, xx = c + t % Kernel - half;
                var tap = dst.Slice(t * cin, cin);
                if (yy < 0 || yy >= height * scale || xx < 0 || xx >= outW) tap.Clear();
                else x.Slice(((yy / scale) * width + xx / scale) * cin, cin).CopyTo(tap);
            }
        }
    }
}
