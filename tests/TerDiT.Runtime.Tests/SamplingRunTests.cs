using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>A synchronous <see cref="IProgress{T}"/> that records every report in order.</summary>
sealed class ProgressLog<T> : IProgress<T>
{
    public List<T> Reports { get; } = [];
    public void Report(T value) => Reports.Add(value);
}

public class SamplingRunTests
{
    static DiffusionSampler Sampler(Denoiser model)
    {
        var c = ModelTests.Small;
        return new DiffusionSampler(model, c.InChannels, c.InputSize, DiffusionProcess.For(c), c.NullClass);
    }

    /// <summary>
    /// Several runs with different settings (a single unguided image, guided DDPM and DDIM, different step counts
    /// so their timesteps differ) share each model call: every run's images equal, bit for bit, the same run
    /// sampled alone. This is what lets a service batch requests without changing any of them.
    /// </summary>
    [Theory]
    [InlineData(GemmMode.Exact)]
    [InlineData(GemmMode.A8)]
    public void RunsBatchedIntoSharedModelCallsGiveTheirImagesAlone(GemmMode mode)
    {
        var (weights, _) = ModelTestWeights.Random(ModelTests.Small, 5);
        var model = new RuntimeModel(weights, new RuntimeOptions { Threads = 2, Mode = mode });
        var sampler = Sampler(model.Forward);
        (int[] Labels, ImageNoise[] Noise, SamplerKind Kind, int Steps, double Cfg)[] settings =
        [
            ([3], [new(7, 0)], SamplerKind.Ddim, 6, 1.0),
            ([0, 4, 4], [new(1, 0), new(1, 1), new(1, 2)], SamplerKind.Ddpm, 4, 2.5),
            ([2, 1], [new(9, 5), new(2, 0)], SamplerKind.Ddim, 5, 1.5),
        ];
        var alone = settings.Select(s => sampler.Sample(s.Labels, s.Noise, s.Kind, s.Steps, s.Cfg)).ToArray();

        var runs = settings.Select(s => sampler.Start(s.Labels, s.Noise, s.Kind, s.Steps, s.Cfg)).ToArray();
        int per = model.InputLength, outPer = model.OutputLength;
        while (runs.Any(r => !r.IsComplete))
        {
            var active = runs.Where(r => !r.IsComplete).ToArray();
            int rows = active.Sum(r => r.ModelRows), row = 0;
            float[] x = new float[rows * per], output = new float[rows * outPer];
            int[] t = new int[rows], y = new int[rows];
            foreach (var r in active)
            {
                r.WriteModelInput(x.AsSpan(row * per, r.ModelRows * per), t.AsSpan(row, r.ModelRows), y.AsSpan(row, r.ModelRows));
                row += r.ModelRows;
            }
            model.Forward(x, t, y, output);
            row = 0;
            foreach (var r in active)
            {
                r.Advance(output.AsSpan(row * outPer, r.ModelRows * outPer));
                row += r.ModelRows;
            }
        }
        for (int i = 0; i < runs.Length; i++) Assert.Equal(alone[i], runs[i].Result.ToArray());
        Assert.True(TestData.RelativeError(alone[1].AsSpan(0, per), alone[1].AsSpan(per, per)) > 0.1); // different noise, different images
    }

    [Fact]
    public void ExplicitNoiseEqualsSeedAndFirstImage()
    {
        var (weights, _) = ModelTestWeights.Random(ModelTests.Small, 6);
        var sampler = Sampler(new RuntimeModel(weights, new RuntimeOptions { Threads = 1 }).Forward);
        var bySeed = sampler.Sample([1, 2], SamplerKind.Ddpm, 3, 2.0, seed: 4, firstImage: 10);
        Assert.Equal(bySeed, sampler.Sample([1, 2], [new ImageNoise(4, 10), new ImageNoise(4, 11)], SamplerKind.Ddpm, 3, 2.0));
    }

    [Fact]
    public void ProgressIsReportedPerStepAndCancellationStopsBeforeTheNextModelCall()
    {
        int calls = 0;
        using var cts = new CancellationTokenSource();
        var progress = new ProgressLog<SamplingProgress>();
        var sampler = Sampler((x, t, y, o) => calls++);
        sampler.Sample([1], SamplerKind.Ddim, 4, 1.0, 0, progress: progress);
        Assert.Equal(Enumerable.Range(1, 4).Select(i => new SamplingProgress(i, 4)), progress.Reports);

        calls = 0;
        var cancelAfterTwo = new CancelAt(cts, 2);
        Assert.Throws<OperationCanceledException>(() => sampler.Sample([1], SamplerKind.Ddim, 4, 1.0, 0, progress: cancelAfterTwo, cancellationToken: cts.Token));
        Assert.Equal(2, calls);
    }

    sealed class CancelAt(CancellationTokenSource cts, int done) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress p) { if (p.Done == done) cts.Cancel(); }
    }

    [Fact]
    public void RunRefusesMisuse()
    {
        var sampler = Sampler((x, t, y, o) => { });
        Assert.Throws<ArgumentException>(() => sampler.Start([1, 2], [new ImageNoise(0, 0)], SamplerKind.Ddim, 2, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Start([1], [new ImageNoise(0, -1)], SamplerKind.Ddim, 2, 1));
        var run = sampler.Start([1], [new ImageNoise(0, 0)], SamplerKind.Ddim, 1, 1.5);
        Assert.Equal(2, run.ModelRows);
        Assert.Throws<InvalidOperationException>(() => run.Result.ToArray());
        Assert.Throws<ArgumentException>(() => run.Advance(new float[3]));
        var c = ModelTests.Small;
        run.Advance(new float[2 * c.OutChannels * c.InputSize * c.InputSize]);
        Assert.True(run.IsComplete);
        Assert.Throws<InvalidOperationException>(() => run.Advance(new float[2 * c.OutChannels * c.InputSize * c.InputSize]));
    }
}
