using TerDiT.Data;
using TerDiT.Imaging;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Diffusion;
using TerDiT.Testing;
using TerDiT.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using static TerDiT.Tests.Fixtures;

namespace TerDiT.Tests;

public class TrainingTests
{
    [Fact]
    public void AdamWMatchesTorchAdamW()
    {
        using var g = new Generator(7);
        var init = new[] { randn([5, 3], generator: g), randn([4], generator: g) };
        var mine = init.Select(t => new TorchSharp.Modules.Parameter(t.clone())).ToArray();
        var theirs = init.Select(t => new TorchSharp.Modules.Parameter(t.clone())).ToArray();
        using var flat = new FlatParameters(mine.Select((p, i) => ($"p{i}", p)));
        using var adam = new AdamW(flat, lr: 0.01, weightDecay: 0.1);
        var reference = optim.AdamW(theirs, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1);
        for (int step = 0; step < 6; step++)
        {
            for (int i = 0; i < mine.Length; i++)
            {
                using var grad = randn(mine[i].shape, generator: g).mul(step + 1);
                mine[i].grad!.copy_(grad);
                theirs[i].grad = grad.clone();
            }
            adam.Step();
            reference.step();
        }
        for (int i = 0; i < mine.Length; i++)
            Assert.True(mine[i].allclose(theirs[i], rtol: 1e-6, atol: 1e-7), $"parameter {i} differs: {(mine[i] - theirs[i]).abs().max().item<float>()}");
        Assert.Equal(6, adam.StepCount);
    }

    [Fact]
    public void DataOrderVisitsEveryImageOncePerEpochAndIsReproducible()
    {
        var order = new DataOrder(seed: 3, count: 10, batchSize: 4);
        var firstEpochs = Enumerable.Range(0, 5).SelectMany(s => order.Batch(s)).ToArray(); // 20 samples = 2 epochs
        Assert.Equal(Enumerable.Range(0, 10), firstEpochs[..10].Order());
        Assert.Equal(Enumerable.Range(0, 10), firstEpochs[10..].Order());
        Assert.NotEqual(firstEpochs[..10], firstEpochs[10..]);                       // reshuffled per epoch
        Assert.Equal(firstEpochs[8..12], new DataOrder(3, 10, 4).Batch(2));           // straddles epochs, pure function of step
        Assert.Equal((1L, 2), order.Position(3));
    }

    [Fact]
    public void ResumedRunEndsWithTheSameWeightsAsAnUninterruptedOne()
    {
        var data = MicroData(40);
        var options = new TrainOptions { Steps = 10, BatchSize = 6, LearningRate = 1e-3, EmaDecay = 0.9, Seed = 11, CheckpointEvery = 4, LogEvery = 1 };
        using var root = new TempDirectory("resume");
        string straight = Path.Combine(root, "straight"), killed = Path.Combine(root, "killed");
        using (var t = Trainer.Start(Micro, options, data, "fashion-mnist", straight)) t.Run();

        // "Kill" the second run during step 7: steps 5–7 after the checkpoint at 4 are lost.
        using (var t = Trainer.Start(Micro, options, data, "fashion-mnist", killed))
            Assert.Throws<OperationCanceledException>(() => t.Run(m => { if (m.Step == 7) throw new OperationCanceledException(); }));
        Assert.Equal(Checkpoint.PathFor(killed, 4), Checkpoint.Resolve(killed));
        using (var t = Trainer.Resume(killed, options, data, "fashion-mnist"))
        {
            Assert.Equal(4, t.Step);
            t.Run();
        }

        using var a = Checkpoint.Load(Checkpoint.Resolve(straight));
        using var b = Checkpoint.Load(Checkpoint.Resolve(killed));
        Assert.Equal((10L, 10L), (a.Step, b.Step));
        Assert.Equal(a.OptimizerStep, b.OptimizerStep);
        foreach (var (group, x, y) in new[] { ("model", a.Model, b.Model), ("ema", a.Ema, b.Ema), ("optim", a.OptimizerState, b.OptimizerState) })
        {
            Assert.Equal(x.Keys.Order(), y.Keys.Order());
            foreach (var (name, value) in x)
                Assert.True(value.shape.SequenceEqual(y[name].shape) && value.eq(y[name]).all().item<bool>(), $"{group}.{name} differs by {(value - y[name]).abs().max().item<float>()}");  // bit for bit
        }
        // The training moved the weights, so equality above is not trivial.
        using var init = new TerDiT.Model.TerDiTModel(Micro, 11);
        Assert.Contains(init.named_parameters(), p => !p.parameter.allclose(a.Model[p.name], rtol: 0, atol: 1e-4));

        // Metrics: one line per step, the lost steps' lines replaced by the resumed ones.
        var ma = MetricsLog.Read(Path.Combine(straight, "metrics.jsonl"));
        var mb = MetricsLog.Read(Path.Combine(killed, "metrics.jsonl"));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), mb.Select(m => m.Step));
        Assert.Equal(ma.Select(m => m.Loss), mb.Select(m => m.Loss));
    }

    [Fact]
    public void ResumeRefusesChangedOptionsOrData()
    {
        var data = MicroData(12);
        var options = new TrainOptions { Steps = 1, BatchSize = 4, CheckpointEvery = 0 };
        using var root = new TempDirectory("resume-check");
        using (var t = Trainer.Start(Micro, options, data, "fashion-mnist", root)) t.Run();
        Assert.Contains("--lr", Assert.Throws<ArgumentException>(() => Trainer.Resume(root, options with { LearningRate = 1e-3 }, data, "fashion-mnist")).Message);
        Assert.Contains("images", Assert.Throws<ArgumentException>(() => Trainer.Resume(root, options, data.Take(8), "fashion-mnist")).Message);
        Assert.Contains("--resume", Assert.Throws<InvalidOperationException>(() => Trainer.Start(Micro, options, data, "fashion-mnist", root)).Message);
    }

    [Fact]
    public void ModelWithoutLearnedSigmaTrainsAndSamplesWithFixedVariance()
    {
        var config = Micro with { LearnSigma = false };                   // outputs ε only: C channels
        var data = MicroData(8);
        var options = new TrainOptions { Steps = 2, BatchSize = 4, CheckpointEvery = 0 };
        using var root = new TempDirectory("fixed-variance");
        var losses = new List<double>();
        using var t = Trainer.Start(config, options, data, "fashion-mnist", root);
        t.Run(m => losses.Add(m.Loss));
        Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0));
        foreach (var kind in new[] { SamplerKind.Ddpm, SamplerKind.Ddim, SamplerKind.DpmPlusPlus2M })
        {
            using var images = ClassGridSampler.Sample(t.Model, [0, 3], 2, kind, steps: 3, cfgScale: 1.5, seed: 1); // (4, 1, 8, 8)
            Assert.Equal([4L, 1, 8, 8], images.shape);
            Assert.True(images.abs().max().item<float>() <= 1f);
        }
    }

    [Fact]
    public void TinyModelLossFallsOnFixtures()
    {
        var config = Presets.Get("TerDiT-Tiny") with { InputSize = 16 };  // Tiny's widths, 16 tokens to stay fast
        var data = DatasetSource.Load("fashion-mnist", config, Fixtures.FashionMnistDirectory, limit: 256);
        var options = new TrainOptions { Steps = 40, BatchSize = 16, LearningRate = 1e-3, Seed = 1, CheckpointEvery = 0 };
        using var root = new TempDirectory("tiny-loss");
        var losses = new List<double>();
        using (var t = Trainer.Start(config, options, data, "fashion-mnist", root)) t.Run(m => losses.Add(m.Loss));
        double first = losses.Take(5).Average(), last = losses.TakeLast(10).Average();
        Assert.True(last < 0.8 * first, $"loss did not fall: first 5 steps {first:F4}, last 10 steps {last:F4}");
    }
}
