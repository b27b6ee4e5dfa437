using TerDiT.Runtime.Ops;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class Int16GemmTests
{
    /// <summary>B (K, N) packed by the documented lane formula: lane (p, r, j) = (B[2r+1, 16p+j] &lt;&lt; 16) | (ushort)B[2r, 16p+j].</summary>
    static int[] PackByDefinition(short[] b, int k, int n)
    {
        int pairs = Int16Gemm.Pairs(k);
        var packed = new int[Int16Gemm.PackedLength(k, n)];
        for (int col = 0; col < n; col++)
            for (int r = 0; r < pairs; r++)
            {
                int lo = b[2 * r * n + col], hi = 2 * r + 1 < k ? b[(2 * r + 1) * n + col] : 0;
                packed[(col / 16 * pairs + r) * 16 + col % 16] = (hi << 16) | (ushort)lo;
            }
        return packed;
    }

    static short[] Codes(int count, int limit, int seed)
    {
        var rng = new Random(seed);
        var a = new short[count];
        for (int i = 0; i < a.Length; i++) a[i] = (short)rng.Next(-limit, limit + 1);
        return a;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(5, 2, 7)]
    [InlineData(6, 7, 16)]
    [InlineData(7, 33, 17)]
    [InlineData(13, 64, 40)]
    [InlineData(50, 255, 64)]
    public void MultiplyMatchesTheDefinitionOnEveryTail(int m, int k, int n)
    {
        int limit = Int16Gemm.CodeLimit(2 * Int16Gemm.Pairs(k)), lda = 2 * Int16Gemm.Pairs(k) + 2, ldc = n + 3;
        short[] a = Codes(m * lda, limit, 1), b = Codes(k * n, limit, 2);
        for (int i = 0; i < m; i++) for (int j = k; j < lda; j++) a[i * lda + j] = (short)(j == k ? 12345 : -7); // past K: must not matter
        int[] packed = PackByDefinition(b, k, n);
        var expected = new int[m * ldc];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                long sum = 0;
                for (int r = 0; r < k; r++) sum += (long)a[i * lda + r] * b[r * n + j];
                expected[i * ldc + j] = checked((int)sum);
            }
        int[] fast = new int[m * ldc], reference = new int[m * ldc];
        Int16Gemm.Multiply(a, lda, m, k, packed, n, fast, ldc);
        Int16Gemm.MultiplyReference(a, lda, m, k, packed, n, reference, ldc);
        Assert.Equal(expected, reference);
        Assert.Equal(expected, fast);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(512)]
    [InlineData(65536)]
    public void CodeLimitIsTheLargestThatKeepsSumsInInt32(int terms)
    {
        long limit = Int16Gemm.CodeLimit(terms);
        Assert.True(terms * limit * limit <= int.MaxValue);
        Assert.True(limit == 32767 || terms * (limit + 1) * (limit + 1) > int.MaxValue);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(64, 17)]
    [InlineData(33, 48)]
    public void PackPanelsQuantizesEachColumnToItsLimit(int k, int n)
    {
        const int limit = 2047;
        float[] b = TestData.Normal(k * n, 5, 3f);
        for (int r = 0; r < k; r++) b[r * n + n / 2] = 0; // an all-zero column
        var panels = new float[FloatGemm.PackedLength(k, n)];
        FloatGemm.PackRowMajor(b, k, n, n, panels);
        var packed = new int[Int16Gemm.PackedLength(k, n)];
        var scales = new float[FloatGemm.PackedLength(1, n)];
        Int16Gemm.PackPanels(panels, k, n, limit, packed, scales);
        int pairs = Int16Gemm.Pairs(k);
        for (int j = 0; j < n; j++)
        {
            float absmax = 0;
            for (int r = 0; r < k; r++) absmax = MathF.Max(absmax, MathF.Abs(b[r * n + j]));
            Assert.Equal(absmax / limit, scales[j]);
            int maxCode = 0;
            for (int r = 0; r < 2 * pairs; r++)
            {
                int lane = packed[(j / 16 * pairs + r / 2) * 16 + j % 16];
                int code = r % 2 == 0 ? (short)lane : lane >> 16;
                if (r >= k) { Assert.Equal(0, code); continue; }
                maxCode = Math.Max(maxCode, Math.Abs(code));
                Assert.True(Math.Abs(code * scales[j] - b[r * n + j]) <= 0.5001 * scales[j], $"column {j} row {r}");
            }
            Assert.Equal(absmax > 0 ? limit : 0, maxCode);
        }
        for (int j = n; j < scales.Length; j++) Assert.Equal(0f, scales[j]); // padding lanes
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 15)]
    [InlineData(5, 16)]
    [InlineData(4, 37)]
    public void QuantizeRowsQuantizesEachRowToItsLimit(int m, int k)
    {
        const int limit = 5792;
        int ldx = k + 1, ldc = 2 * Int16Gemm.Pairs(k) + 2;
        float[] x = TestData.Normal(m * ldx, 6, 2f);
        Array.Clear(x, 0, k); // row 0 is all zero
        var codes = new short[m * ldc];
        codes.AsSpan().Fill(99);
        var scales = new float[m];
        Int16Gemm.QuantizeRows(x, m, k, ldx, limit, codes, ldc, scales);
        for (int i = 0; i < m; i++)
        {
            float absmax = 0;
            for (int j = 0; j < k; j++) absmax = MathF.Max(absmax, MathF.Abs(x[i * ldx + j]));
            Assert.Equal(absmax / limit, scales[i]);
            int maxCode = 0;
            for (int j = 0; j < k; j++)
            {
                short code = codes[i * ldc + j];
                Assert.Equal((short)MathF.Round(x[i * ldx + j] * (absmax > 0 ? limit / absmax : 0)), code);
                maxCode = Math.Max(maxCode, Math.Abs((int)code));
            }
            Assert.Equal(absmax > 0 ? limit : 0, maxCode);
            if (k % 2 != 0) Assert.Equal(0, codes[i * ldc + k]);
        }
    }
}
