using TerDiT.Model;
using TerDiT.Runtime.Config;
using TerDiT.Testing;
using TerDiT.Training;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class PtqTests
{
    static readonly TerDiTConfig FullPrecisionTiny = Presets.Get("TerDiT-Tiny") with { Ternary = false };

    /// <summary>A checkpoint of <paramref name="config"/> at step 5 whose raw weights are dense N(0, 0.05²) (no zero-initialised
    /// layers, so every layer matters) and whose EMA is 0.5 × raw.</summary>
    static string SaveCheckpoint(string runDir, TerDiTConfig config)
    {
        using var model = new TerDiTModel(config);
        using (no_grad())
        {
            var g = new Generator(11, CPU);
            foreach (var (_, p) in model.named_parameters()) p.normal_(0, 0.05, g);
        }
        var raw = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var ema = raw.ToDictionary(kv => kv.Key, kv => kv.Value.mul(0.5));
        var ckpt = new Checkpoint
        {
            Config = config, Options = new TrainOptions(), Step = 5, Data = new DataInfo("fashion-mnist", 32), DataPosition = (0, 20),
            OptimizerStep = 5, Model = raw, Ema = ema, OptimizerState = new Dictionary<string, Tensor>(),
        };
        var path = Checkpoint.PathFor(runDir, 5);
        ckpt.Save(path);
        foreach (var t in ema.Values) t.Dispose();
        return path;
    }

    static Tensor Forward(TerDiTModel model)
    {
        var g = new Generator(3, CPU);
        using var x = randn([4, 1, 32, 32], generator: g);
        using var t = tensor(new long[] { 0, 250, 500, 999 });
        using var y = tensor(new long[] { 0, 3, 9, 10 });
        using var _ = no_grad();
        return model.call(x, t, y); // (4, 2, 32, 32)
    }

    [Theory]
    [InlineData("ema")]
    [InlineData("raw")]
    public void PtqTernarizesTheChosenWeightsWithAbsmeanScales(string weights)
    {
        using var dir = new TempDirectory("cli-ptq");
        var source = SaveCheckpoint(Path.Combine(dir, "fp"), FullPrecisionTiny);
        var r = Terdit.Run("ptq", "--checkpoint", Path.Combine(dir, "fp"), "--out", Path.Combine(dir, "ptq"), "--weights", weights);
        Assert.True(r.Code == 0, r.Err);
        var written = Checkpoint.PathFor(Path.Combine(dir, "ptq"), 5);
        Assert.True(File.Exists(written));

        using var fp = Checkpoint.Load(source);
        using var ptq = Checkpoint.Load(written);
        Assert.True(ptq.Config.Ternary);
        Assert.Equal(fp.Config with { Ternary = true }, ptq.Config);
        Assert.Equal(5, ptq.Step);
        Assert.Equal(0, ptq.OptimizerStep);
        var chosen = fp.Weights(weights == "raw" ? WeightsKind.Raw : WeightsKind.Ema);

        using var ternary = ptq.CreateModel(WeightsKind.Ema);
        using var ternaryRaw = ptq.CreateModel(WeightsKind.Raw);
        Assert.NotEmpty(ternary.TernaryLayers);
        foreach (var (name, p) in ternary.named_parameters())
        {
            if (name.EndsWith(".alpha"))
            {
                // alpha = gamma = mean |W| of the layer's (full-precision) weight.
                var gamma = chosen[name[..^".alpha".Length] + ".weight"].abs().mean().item<float>();
                Assert.Equal(gamma, p.item<float>(), 1e-6f * Math.Max(1, gamma));
            }
            else Assert.True(chosen[name].allclose(p, 0, 0), $"{name} is not the source's {weights} weight");
            Assert.True(ptq.Model[name].allclose(p, 0, 0), $"raw and EMA differ at {name}");
            Assert.Equal(0, ptq.OptimizerState["exp_avg." + name].abs().max().item<float>());
        }

        // The ternarized model computes something close to, but not the same as, the full-precision one: measured
        // against what the ternarized layers contribute (the output change when their weights are zeroed), the
        // ternarization error is a real but partial change.
        var kind = weights == "raw" ? WeightsKind.Raw : WeightsKind.Ema;
        using var fpModel = fp.CreateModel(kind);
        using var withoutTernaryLayers = fp.CreateModel(kind);
        var ternaryWeights = ternary.named_modules().Where(m => m.module is Model.TernaryLinear).Select(m => m.name + ".weight").ToHashSet();
        Assert.NotEmpty(ternaryWeights);
        using (no_grad())
            foreach (var (name, p) in withoutTernaryLayers.named_parameters())
                if (ternaryWeights.Contains(name)) p.zero_();
        using var reference = Forward(fpModel);
        using var quantized = Forward(ternary);
        using var ablated = Forward(withoutTernaryLayers);
        double error = (quantized - reference).norm().item<float>(), contribution = (ablated - reference).norm().item<float>();
        Assert.InRange(error / contribution, 0.05, 0.9);
    }

    [Fact]
    public void PtqRefusesATernaryCheckpoint()
    {
        using var dir = new TempDirectory("cli-ptq-ternary");
        SaveCheckpoint(Path.Combine(dir, "q"), FullPrecisionTiny with { Ternary = true });
        var r = Terdit.Run("ptq", "--checkpoint", Path.Combine(dir, "q"), "--out", Path.Combine(dir, "out"));
        Terdit.AssertUsageError(r, "already ternary");
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));
    }

    [Fact]
    public void PtqCheckpointSamplesAndResumesAsQuantizationAwareTraining()
    {
        using var dir = new TempDirectory("cli-ptq-resume");
        var fpRun = Path.Combine(dir, "fp");
        var ptqRun = Path.Combine(dir, "ptq");
        Terdit.TrainTiny(fpRun, "--full-precision");
        Assert.Equal(0, Terdit.Run("ptq", "--checkpoint", fpRun, "--out", ptqRun).Code);
        var sample = Terdit.Run("sample", "--checkpoint", ptqRun, "--out", Path.Combine(dir, "g.png"), "--per-class", "1", "--steps", "2", "--threads", "1");
        Assert.True(sample.Code == 0, sample.Err);

        var resume = Terdit.Run("train", "--resume", "--out", ptqRun, "--data-dir", Fixtures.FashionMnistDirectory, "--limit", "32", "--steps", "3",
            "--batch", "4", "--log-every", "1", "--ema-decay", "0.5", "--threads", "1");
        Assert.True(resume.Code == 0, resume.Err);
        using var resumed = Checkpoint.Load(Checkpoint.PathFor(ptqRun, 3));
        Assert.True(resumed.Config.Ternary);
        Assert.Equal(1, resumed.OptimizerStep);
    }
}
