using TerDiT.Runtime.Cpu;
using Xunit;

namespace TerDiT.Runtime.Cuda.Tests;

/// <summary>
/// Weight repacking, activation quantization and the ternary GEMMs on the GPU against the CPU runtime's kernels,
/// and the tensor-core kernels against the GPU reference kernel, on shapes with tails.
/// </summary>
[Collection("gpu")]
public class GemmTests
{
    /// <summary>M = 1…8, 255, 257 against K not a multiple of 64 or 128 and odd N.</summary>
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 100, 7 }, { 2, 64, 33 }, { 3, 200, 129 }, { 4, 129, 1 }, { 5, 257, 65 }, { 6, 384, 96 }, { 7, 96, 255 }, { 8, 1000, 130 },
        { 255, 160, 77 }, { 257, 300, 200 }, { 300, 1536, 384 },
    };

    static DeviceBuffer<float> Up(CudaOps ops, float[] v) => DeviceBuffer<float>.From(ops.Device, v);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 100)]
    [InlineData(33, 257)]
    [InlineData(129, 64)]
    [InlineData(260, 700)]
    public void RepackKernelEqualsTheLayoutSpecification(int rows, int cols)
    {
        var ops = Gpu.Ops;
        var trits = TestData.Trits(rows * cols, 3 * rows + cols);
        using var w = new DeviceTernaryMatrix(ops, [PackedTernaryMatrix.FromTrits(trits, rows, cols, 0.5f)]);
        var words = w.Codes.ToArray();
        var bytes = new byte[words.Length * 4];
        Buffer.BlockCopy(words, 0, bytes, 0, bytes.Length);
        Assert.Equal(GpuTernaryLayout.Pack(trits, rows, cols), bytes);
    }

    [Theory]
    [InlineData(1, 100)]
    [InlineData(5, 64)]
    [InlineData(257, 333)]
    public void A8QuantizationIsTheCpuQuantizer(int m, int k)
    {
        var ops = Gpu.Ops;
        var x = TestData.Normal(m * k, m + k);
        for (int i = 0; i < k; i++) x[i] = 0;                       // row 0: all zero → scale 0
        if (m > 2) x[2 * k + 5] = float.NaN;                        // row 2: NaN → scale NaN, codes 0
        using var dx = Up(ops, x);
        using var planes = new ActivationPlanes(ops.Device, 1, m, k);
        ops.QuantizeRows(dx.Pointer, m, k, k, planes);
        var codes = planes.Codes.ToArray();
        var scales = planes.Scales.ToArray();
        var sums = planes.RowSums.ToArray();
        var q = new sbyte[k];
        for (int r = 0; r < m; r++)
        {
            float s = ActivationQuantizer.QuantizeRowReference(x.AsSpan(r * k, k), q);
            Assert.Equal(BitConverter.SingleToInt32Bits(s), BitConverter.SingleToInt32Bits(scales[r]));
            Assert.Equal(q, codes.AsSpan(r * planes.PaddedCols, k).ToArray());
            Assert.All(codes.AsSpan(r * planes.PaddedCols + k, planes.PaddedCols - k).ToArray(), c => Assert.Equal(0, c));
            Assert.Equal(q.Sum(v => (int)v), sums[r]);
        }
    }

    [Fact]
    public void ExactPlanesRepresentEachValueToTwoToTheMinus24OfItsRowMaximum()
    {
        var ops = Gpu.Ops;
        int m = 9, k = 333;
        var x = TestData.Normal(m * k, 77, 3);
        using var dx = Up(ops, x);
        using var planes = new ActivationPlanes(ops.Device, 3, m, k);
        ops.QuantizeRows(dx.Pointer, m, k, k, planes);
        var codes = planes.Codes.ToArray();
        var scales = planes.Scales.ToArray();
        long plane = (long)planes.RowCapacity * planes.PaddedCols;
        for (int r = 0; r < m; r++)
        {
            double absmax = x.AsSpan(r * k, k).ToArray().Max(Math.Abs);
            for (int i = 0; i < k; i++)
            {
                long at = (long)r * planes.PaddedCols + i;
                double value = scales[r] * (codes[at] + (codes[plane + at] + codes[2 * plane + at] / 254.0) / 254.0);
                // 127 / absmax, x · that and absmax / 127 are each rounded once in fp32 (2^-24 relative, 3 · 2^-24 · |x|
                // together) and the split leaves a residual below 0.5 / 254² of a code (1.02 · 2^-24 · absmax).
                Assert.True(Math.Abs(value - x[r * k + i]) <= 4.1 * Math.Pow(2, -24) * absmax, $"row {r}, col {i}: {value} vs {x[r * k + i]}");
            }
        }
    }

    [Theory, MemberData(nameof(Shapes))]
    public void A8SumsAreTheCpuKernelsBitForBit(int m, int k, int n)
    {
        var ops = Gpu.Ops;
        var x = TestData.Normal(m * k, m * 31 + k);
        var w = TestData.Matrix(n, k, n + 7, alpha: 0.037f);
        var bias = TestData.Normal(n, 5, 0.3f);
        var expected = new float[m * n];
        TernaryGemm.Multiply(x, m, w, expected, bias, GemmMode.A8);

        using var dx = Up(ops, x);
        using var planes = new ActivationPlanes(ops.Device, 1, m, k);
        using var dw = new DeviceTernaryMatrix(ops, [w], bias: bias);
        using var y = new DeviceBuffer<float>(ops.Device, m * n);
        ops.QuantizeRows(dx.Pointer, m, k, k, planes);
        foreach (var kernel in new[] { GemmKernel.Reference, GemmKernel.LargeTile, GemmKernel.SmallTile, GemmKernel.Auto })
        {
            y.Fill(0xff); // NaN everywhere: every output must be written
            ops.Gemm(planes, m, dw, GemmEpilogue.Store, y.Pointer, n, kernel: kernel);
            // Exact integer sums, then (float)sum · (alpha · scale) + bias as the CPU: the same bits.
            Assert.Equal(expected, y.ToArray());
        }
    }

    [Theory, MemberData(nameof(Shapes))]
    public void ExactModeEqualsTheDenseProductUpToFloatRounding(int m, int k, int n)
    {
        var ops = Gpu.Ops;
        var x = TestData.Normal(m * k, m * 17 + k, 2);
        var w = TestData.Matrix(n, k, n + 11, alpha: -0.021f);
        var expected = new float[m * n];
        TernaryGemmReference.Exact(x, m, w, expected);

        using var dx = Up(ops, x);
        using var planes = new ActivationPlanes(ops.Device, 3, m, k);
        using var dw = new DeviceTernaryMatrix(ops, [w]);
        using var y = new DeviceBuffer<float>(ops.Device, m * n);
        ops.QuantizeRows(dx.Pointer, m, k, k, planes);
        float[]? reference = null;
        foreach (var kernel in new[] { GemmKernel.Reference, GemmKernel.LargeTile, GemmKernel.SmallTile })
        {
            y.Fill(0xff);
            ops.Gemm(planes, m, dw, GemmEpilogue.Store, y.Pointer, n, kernel: kernel);
            var actual = y.ToArray();
            if (reference == null) reference = actual;
            else Assert.Equal(reference, actual); // the same integer sums and the same epilogue arithmetic
        }
        for (int r = 0; r < m; r++)
        {
            // Both sides err by float rounding only: the CPU's fp32 sum by at most K·2^-24·Σ|x|; ours represents each
            // x within 4.1·2^-24·absmax (ExactPlanes… above), sums exactly, and rounds a few times after (8·2^-24·Σ|x|).
            var row = x.AsSpan(r * k, k).ToArray();
            double l1 = row.Sum(v => Math.Abs((double)v)), absmax = row.Max(Math.Abs);
            double bound = Math.Abs(w.Alpha) * Math.Pow(2, -24) * (k * l1 + 4.1 * k * absmax + 8 * l1);
            for (int c = 0; c < n; c++)
                Assert.True(Math.Abs(reference![r * n + c] - expected[r * n + c]) <= bound, $"({r}, {c}): {reference[r * n + c]} vs {expected[r * n + c]}, bound {bound}");
        }
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(3, 1)]
    public void FusedEpiloguesMatchTheReferenceKernelAndTheCpu(int images, int terms)
    {
        var ops = Gpu.Ops;
        int tokens = 70, m = images * tokens, k = 136, f = 72;
        var x = TestData.Normal(m * k, images + 40 * terms);
        var w1 = TestData.Matrix(f, k, 1, 0.09f);
        var w3 = TestData.Matrix(f, k, 2, -0.07f);
        var wr = TestData.Matrix(k, k, 3, 0.05f);
        var gate = TestData.Normal(images * 3 * k, 9);                 // gate of image b at b · 3k
        var residual = TestData.Normal(m * k, 10);
        using var dx = Up(ops, x);
        using var dgate = Up(ops, gate);
        using var planes = new ActivationPlanes(ops.Device, terms, m, k);
        using var w13 = new DeviceTernaryMatrix(ops, [w1, w3], interleave: true);
        using var dwr = new DeviceTernaryMatrix(ops, [wr]);
        using var g = new DeviceBuffer<float>(ops.Device, m * f);
        using var y = new DeviceBuffer<float>(ops.Device, m * k);
        ops.QuantizeRows(dx.Pointer, m, k, k, planes);

        float[] Run(GemmEpilogue epi, GemmKernel kernel)
        {
            if (epi == GemmEpilogue.SwiGlu)
            {
                g.Fill(0xff);
                ops.Gemm(planes, m, w13, epi, g.Pointer, f, kernel: kernel);
                return g.ToArray();
            }
            y.Upload(residual);
            ops.Gemm(planes, m, dwr, epi, y.Pointer, k, dgate.Pointer, 3 * k, tokens, kernel);
            return y.ToArray();
        }
        foreach (var epi in new[] { GemmEpilogue.SwiGlu, GemmEpilogue.Residual })
        {
            var reference = Run(epi, GemmKernel.Reference);
            Assert.Equal(reference, Run(epi, GemmKernel.LargeTile));
            Assert.Equal(reference, Run(epi, GemmKernel.SmallTile));
            // Against the CPU: the plain GEMMs (bit-identical in a8, float rounding apart in exact) then the
            // epilogue's arithmetic; expf against MathF.Exp and one fused multiply-add differ by a few ulp.
            var expected = epi == GemmEpilogue.SwiGlu ? CpuSwiGlu(x, m, w1, w3, terms) : CpuResidual(x, m, wr, residual, gate, tokens, terms);
            Assert.True(TestData.RelativeL2(reference, expected) < 1e-6, $"{epi}: relative error {TestData.RelativeL2(reference, expected)}");
        }
    }

    static float[] Cpu(float[] x, int m, PackedTernaryMatrix w, int terms)
    {
        var y = new float[m * w.Rows];
        if (terms == 1) TernaryGemm.Multiply(x, m, w, y, default, GemmMode.A8);
        else TernaryGemmReference.Exact(x, m, w, y);
        return y;
    }

    static float[] CpuSwiGlu(float[] x, int m, PackedTernaryMatrix w1, PackedTernaryMatrix w3, int terms)
    {
        var a = Cpu(x, m, w1, terms);
        var b = Cpu(x, m, w3, terms);
        return a.Select((v, i) => v / (1 + MathF.Exp(-v)) * b[i]).ToArray();
    }

    static float[] CpuResidual(float[] x, int m, PackedTernaryMatrix w, float[] residual, float[] gate, int tokens, int terms)
    {
        var v = Cpu(x, m, w, terms);
        int k = w.Rows;
        var y = (float[])residual.Clone();
        for (int r = 0; r < m; r++)
            for (int c = 0; c < k; c++) y[r * k + c] = MathF.FusedMultiplyAdd(v[r * k + c], gate[r / tokens * 3 * k + c], y[r * k + c]);
        return y;
    }
}
