using TerDiT.Runtime.Model;
using TerDiT.Runtime.Sampling;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class SamplingPipelineTests
{
    [Fact]
    public void PipelineSamplesAreIndependentOfBatchingAndReportProgress()
    {
        var (weights, _) = ModelTestWeights.Random(ModelTests.Small, 8);
        using var big = new TerDiTPipeline(weights, new RuntimeOptions { Threads = 2, MaxBatch = 16 });
        using var small = new TerDiTPipeline(weights, new RuntimeOptions { Threads = 1, MaxBatch = 2 });
        var calls = new List<(int Done, int Total)>();
        var a = big.Sample([4, 1], perClass: 3, steps: 5, SamplerKind.Ddim, guidance: 1.5, seed: 9);
        var b = small.Sample([4, 1], perClass: 3, steps: 5, SamplerKind.Ddim, guidance: 1.5, seed: 9, (d, t) => calls.Add((d, t)));
        Assert.Equal(6 * big.Model.InputLength, a.Length);
        Assert.Equal(a, b);
        Assert.Equal(Enumerable.Range(1, 15).Select(i => (i, 15)), calls); // 3 batches × 5 steps

        // Class-major order: image 3 (class 1, first copy) equals a single class-1 sample with the same index.
        var direct = new DiffusionSampler(big.Model.Forward, 2, 8, true, ModelTests.Small.NullClass)
            .Sample([1], SamplerKind.Ddim, 5, 1.5, 9, firstImage: 3);
        Assert.Equal(direct, a.AsSpan(3 * big.Model.InputLength, big.Model.InputLength).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => big.Sample([5], 1, 5, SamplerKind.Ddim, 1, 0)); // 5 = null class
    }

    [Fact]
    public void PixelsRoundToNearestAndClamp()
    {
        Assert.Equal(new byte[] { 0, 0, 128, 255, 255, 64, 191 }, TerDiTPipeline.ToPixels([-1.5f, -1f, 0f, 1f, 2f, -0.5f, 0.5f]));
    }
}
