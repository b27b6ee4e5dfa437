using TerDiT.Runtime.Cpu;
using TerDiT.Serve;
using Xunit;

namespace TerDiT.Runtime.Cuda.Tests;

/// <summary>The service's model on the GPU, as <c>terdit serve --device cuda</c> builds it.</summary>
public class ServedModelTests
{
    static readonly string ShippedModel = Path.Combine(AppContext.BaseDirectory, "models", "terdit-s-fmnist.tdit");

    [Fact]
    public async Task EachModeOfAGpuServedModelComputesTheCpuServedModelsForward()
    {
        _ = Gpu.Ops;
        using var gpu = ServedModel.Load(ShippedModel, "cuda", GemmMode.A8, (w, mode) => new CudaModel(w, new CudaOptions { Mode = mode, MaxBatch = 4 }));
        using var cpu = ServedModel.LoadCpu(ShippedModel, GemmMode.A8, threads: 2);
        Assert.Equal(cpu.Denoisers.Keys.Order(), gpu.Denoisers.Keys.Order());
        Assert.Equal("a8", gpu.DefaultMode);
        var c = gpu.Config;
        int n = 3, outPer = c.OutChannels * c.InputSize * c.InputSize;
        var x = TestData.Normal(n * c.InChannels * c.InputSize * c.InputSize, 31);
        int[] t = [999, 500, 3], y = [0, c.NullClass, 7];
        foreach (var mode in gpu.Denoisers.Keys)
        {
            var (expected, actual) = (new float[n * outPer], new float[n * outPer]);
            cpu.Denoisers[mode](x, t, y, expected);
            // The engine calls its denoisers from its own worker thread: the GPU forward must not depend on the loading thread.
            await Task.Factory.StartNew(() => gpu.Denoisers[mode](x, t, y, actual), TaskCreationOptions.LongRunning);
            // As ModelTests: exact differs from the CPU by summation order and libm only (a few 1e-7 a stage, ~100
            // stages in TerDiT-S's 12 blocks); a8 by bf16 against int16 attention on the same int8 GEMM arithmetic.
            double err = TestData.RelativeL2(actual, expected), bound = mode == "exact" ? 5e-5 : 0.05;
            Assert.True(err < bound, $"{mode}: relative error {err} against the CPU (bound {bound})");
        }
    }
}
