using TerDiT.Data;
using TerDiT.Model;
using TerDiT.Runtime.Config;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class ModelTrainingTests(ITestOutputHelper output)
{
    /// <summary>
    /// A one-block TerDiT-Tiny learns to predict the noise of one fixed batch of noised Fashion-MNIST images
    /// (x_t = sqrt(ᾱ)·x0 + sqrt(1−ᾱ)·ε, loss MSE(ε̂, ε)): the loss must fall at least tenfold, also with
    /// bf16 compute on float32 master weights.
    /// </summary>
    [Theory]
    [InlineData(true, AlphaInit.Normal, false)]
    [InlineData(true, AlphaInit.Absmean, false)]
    [InlineData(false, AlphaInit.Normal, false)]
    [InlineData(true, AlphaInit.Normal, true)]
    public void OverfitsOneBatch(bool ternary, AlphaInit alphaInit, bool bf16)
    {
        const int batch = 8, steps = 120;
        var config = Presets.Get("TerDiT-Tiny") with { Depth = 1, Ternary = ternary, AlphaInit = alphaInit };
        var model = new TerDiTModel(config, seed: 1) { ComputeDType = bf16 ? ScalarType.BFloat16 : null };
        var g = new Generator(2, CPU);

        var images = FashionMnist.Load(Split.Train, Fixtures.FashionMnistDirectory).Take(batch);
        using var x0 = nn.functional.pad(
            tensor(images.Pixels.Select(p => p / 127.5f - 1).ToArray()).view(batch, 1, 28, 28), [2, 2, 2, 2], value: -1); // (N, 1, 32, 32)
        using var y = tensor(images.Labels.Select(l => (long)l).ToArray());
        using var t = randint(0, 1000, [batch], dtype: ScalarType.Int64, generator: g);
        using var betas = linspace(1e-4, 0.02, 1000, dtype: ScalarType.Float64);
        using var alphaBar = (1 - betas).cumprod(0).index_select(0, t).to(ScalarType.Float32).view(batch, 1, 1, 1);
        using var eps = randn(batch, 1, 32, 32, generator: g);
        using var xt = alphaBar.sqrt() * x0 + (1 - alphaBar).sqrt() * eps;

        var optimizer = optim.AdamW(model.parameters(), lr: 2e-3, weight_decay: 0);
        float first = 0, last = 0;
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var prediction = model.call(xt, t, y)[.., ..1];   // (N, 1, 32, 32) epsilon channel
            var loss = nn.functional.mse_loss(prediction, eps);
            loss.backward();
            optimizer.step();
            last = loss.item<float>();
            if (step == 0) first = last;
            if (step % 20 == 0) output.WriteLine($"step {step}: loss {last:F4}");
        }
        output.WriteLine($"first {first:F4}, last {last:F4}, ratio {first / last:F1}");
        Assert.InRange(first, 0.8, 1.2);   // zero-initialised output: MSE = E[ε²] ≈ 1
        Assert.True(first / last >= 10, $"loss fell only from {first:F4} to {last:F4}");
    }
}
