using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Ops;
using Xunit;

namespace TerDiT.Runtime.Cuda.Tests;

/// <summary>Attention and the whole forward on the GPU against the CPU runtime; determinism; error paths.</summary>
[Collection("gpu")]
public class ModelTests
{
    /// <summary>Small but with every tail: D 96 (K not a multiple of 64), 3 heads of 32, 36 tokens (not a multiple of 64), FFN 272.</summary>
    static readonly TerDiTConfig Small = new()
    {
        Name = "cuda-test", InChannels = 3, InputSize = 12, PatchSize = 2, HiddenSize = 96, Depth = 2,
        NumHeads = 3, NumClasses = 7, FfnMultipleOf = 16,
    };

    [Theory]
    [InlineData(64, 2, 48)]
    [InlineData(256, 1, 96)]
    [InlineData(70, 3, 32)]
    public void Bf16AttentionMatchesTheFp32KernelAndTheCpu(int tokens, int images, int headDim)
    {
        var ops = Gpu.Ops;
        int heads = 2, d = heads * headDim, m = images * tokens;
        var q = TestData.Normal(m * d, 1);
        var k = TestData.Normal(m * d, 2);
        var v = TestData.Normal(m * d, 3);
        var expected = new float[m * d];
        new Attention(tokens, heads, headDim, 1).Forward(q, k, v, expected, images);

        using var dq = DeviceBuffer<float>.From(ops.Device, q);
        using var dk = DeviceBuffer<float>.From(ops.Device, k);
        using var dv = DeviceBuffer<float>.From(ops.Device, v);
        using var o = new DeviceBuffer<float>(ops.Device, m * d);
        o.Fill(0xff);
        ops.Attention(dq.Pointer, dk.Pointer, dv.Pointer, o.Pointer, images, tokens, heads, headDim, bf16: false);
        var f32 = o.ToArray();
        // fp32 against fp32 (CPU: blocked products, its own exp): summation order and a few ulp of exp apart.
        Assert.True(TestData.RelativeL2(f32, expected) < 1e-5, $"fp32 kernel: {TestData.RelativeL2(f32, expected)}");

        using var bq = Bf16(ops, q);
        using var bk = Bf16(ops, k);
        using var bv = Bf16(ops, v);
        o.Fill(0xff);
        ops.Attention(bq.Pointer, bk.Pointer, bv.Pointer, o.Pointer, images, tokens, heads, headDim, bf16: true);
        var bf = o.ToArray();
        // bf16 q, k, v and probabilities (8 significant bits, relative rounding 2^-9) with fp32 sums: a few 1e-3.
        Assert.True(TestData.RelativeL2(bf, expected) < 1e-2, $"bf16 kernel: {TestData.RelativeL2(bf, expected)}");
    }

    /// <summary>x rounded to bf16 bits (nearest even) on the host.</summary>
    static DeviceBuffer<ushort> Bf16(CudaOps ops, float[] x)
    {
        var bits = x.Select(v =>
        {
            uint u = BitConverter.SingleToUInt32Bits(v);
            return (ushort)((u + 0x7fff + (u >> 16 & 1)) >> 16);
        }).ToArray();
        return DeviceBuffer<ushort>.From(ops.Device, bits);
    }

    static (float[] X, int[] T, int[] Y) Inputs(TerDiTConfig c, int n, int seed)
    {
        var x = TestData.Normal(n * c.InChannels * c.InputSize * c.InputSize, seed);
        var t = Enumerable.Range(0, n).Select(i => (i * 389 + seed) % 1000).ToArray();
        var y = Enumerable.Range(0, n).Select(i => i % 2 == 0 ? c.NullClass : i % c.NumClasses).ToArray();
        return (x, t, y);
    }

    static float[] Cpu(IWeightSource w, GemmMode mode, float[] x, int[] t, int[] y)
    {
        var model = new RuntimeModel(w, new RuntimeOptions { Mode = mode, Threads = 2 });
        var output = new float[t.Length * model.OutputLength];
        model.Forward(x, t, y, output);
        return output;
    }

    static float[] RunGpu(CudaModel model, float[] x, int[] t, int[] y)
    {
        var output = new float[t.Length * model.OutputLength];
        model.Forward(x, t, y, output);
        return output;
    }

    [Theory]
    [InlineData("default")]
    [InlineData("no-qknorm")]
    [InlineData("no-adalnnorm")]
    public void ExactForwardMatchesTheCpuRuntime(string variant)
    {
        _ = Gpu.Ops;
        var c = variant switch { "no-qknorm" => Small with { QkNorm = false }, "no-adalnnorm" => Small with { AdaLnNorm = false }, _ => Small };
        var w = TestData.Weights(c, 21);
        var (x, t, y) = Inputs(c, 3, 4);
        var expected = Cpu(w, GemmMode.Exact, x, t, y);
        using var model = new CudaModel(w, new CudaOptions { Mode = GemmMode.Exact });
        var actual = RunGpu(model, x, t, y);
        // Every stage is fp32 on both sides (ternary sums: ours exact on a 2^-24-accurate split, the CPU's fp32),
        // differing only in summation order and libm: a few 1e-7 per stage, ~30 stages → well under 1e-5.
        double err = TestData.RelativeL2(actual, expected);
        Assert.True(err < 1e-5, $"relative error {err}");
    }

    [Fact]
    public void A8ForwardIsAsCloseToExactAsTheCpuA8()
    {
        _ = Gpu.Ops;
        var w = TestData.Weights(Small, 22);
        var (x, t, y) = Inputs(Small, 4, 5);
        var exact = Cpu(w, GemmMode.Exact, x, t, y);
        var cpuA8 = Cpu(w, GemmMode.A8, x, t, y);
        using var model = new CudaModel(w, new CudaOptions { Mode = GemmMode.A8 });
        var gpuA8 = RunGpu(model, x, t, y);
        // Same int8 activation arithmetic in the GEMMs; attention int16 on the CPU, bf16 here: the two quantizations
        // are of the same order, so ours must not be far worse than the CPU's.
        double cpuErr = TestData.RelativeL2(cpuA8, exact), gpuErr = TestData.RelativeL2(gpuA8, exact);
        Assert.True(gpuErr < 2 * cpuErr + 1e-3, $"GPU a8 error {gpuErr}, CPU a8 error {cpuErr}");
        Assert.True(gpuErr < 0.05, $"GPU a8 error {gpuErr}");
    }

    [Theory]
    [InlineData(GemmMode.Exact)]
    [InlineData(GemmMode.A8)]
    public void FastForwardEqualsTheReferenceKernelsForward(GemmMode mode)
    {
        _ = Gpu.Ops;
        var w = TestData.Weights(Small, 23);
        var (x, t, y) = Inputs(Small, 2, 6);
        using var fast = new CudaModel(w, new CudaOptions { Mode = mode });
        using var reference = new CudaModel(w, new CudaOptions { Mode = mode, FastKernels = false });
        var a = RunGpu(fast, x, t, y);
        var b = RunGpu(reference, x, t, y);
        if (mode == GemmMode.Exact) Assert.Equal(b, a); // same integer sums, same fp32 attention kernel: the same bits
        else Assert.True(TestData.RelativeL2(a, b) < 2e-2, $"bf16 against fp32 attention: {TestData.RelativeL2(a, b)}");
    }

    [Fact]
    public void GraphReplaysGiveTheEagerRunsBitsAndBatchSizesAreIndependent()
    {
        _ = Gpu.Ops;
        var w = TestData.Weights(Small, 24);
        var (x, t, y) = Inputs(Small, 3, 7);
        using var model = new CudaModel(w, new CudaOptions { Mode = GemmMode.A8 });
        var eager = RunGpu(model, x, t, y);
        var graph1 = RunGpu(model, x, t, y);
        var graph2 = RunGpu(model, x, t, y);
        Assert.Equal(eager, graph1);
        Assert.Equal(eager, graph2);
        // Image 0 alone (a smaller batch, its own graph) gives the same bits as within the batch of three.
        int per = model.InputLength, outPer = model.OutputLength;
        var single = RunGpu(model, x[..per], t[..1], y[..1]);
        Assert.Equal(eager[..outPer], single);
        Assert.Equal(single, RunGpu(model, x[..per], t[..1], y[..1]));
    }

    [Fact]
    public void PipelineSamplesTheSameImagesTwice()
    {
        _ = Gpu.Ops;
        var w = TestData.Weights(Small, 25);
        var model = new CudaModel(w, new CudaOptions { Mode = GemmMode.A8, MaxBatch = 2 });
        using var pipe = new TerDiTPipeline(model, 2, model);
        var a = pipe.Sample([1, 3], 2, 4, Diffusion.SamplerKind.Ddim, 1.5, 9, cancellationToken: TestContext.Current.CancellationToken);
        var b = pipe.Sample([1, 3], 2, 4, Diffusion.SamplerKind.Ddim, 1.5, 9, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(a, b);
        Assert.All(a, v => Assert.InRange(v, -1f, 1f));
    }

    [Fact]
    public void FullPrecisionModelsAreRefusedWithAClearMessage()
    {
        _ = Gpu.Ops;
        var e = Assert.Throws<ArgumentException>(() => new CudaModel(TestData.Weights(Small with { Ternary = false }, 1)));
        Assert.Contains("ternary models only", e.Message);
    }

    [Fact]
    public void TooLargeAnAllocationIsAOneLineOutOfMemoryError()
    {
        var ops = Gpu.Ops;
        var e = Assert.Throws<CudaUnavailableException>(() => new DeviceBuffer<byte>(ops.Device, 2 * ops.Device.TotalMemory));
        Assert.Contains("out of memory", e.Message);
        Assert.Contains(ops.Device.Name, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void OneDevicePerProcess()
    {
        _ = Gpu.Ops;
        var e = Assert.Throws<ArgumentException>(() => CudaDevice.Open(99));
        Assert.Contains("already open", e.Message);
    }
}

/// <summary>Where no GPU is usable, the backend says what is missing in one line.</summary>
public class NoGpuTests
{
    [Fact]
    public void WithoutAGpuTheErrorSaysWhatIsMissing()
    {
        if (Gpu.Available) Assert.Skip("a GPU is present: the no-GPU error path cannot be seen here");
        string message = Gpu.Missing!;
        Assert.DoesNotContain('\n', message);
        Assert.Matches("libcuda|no CUDA GPU|NVRTC|too old|does not exist|driver", message);
    }
}
