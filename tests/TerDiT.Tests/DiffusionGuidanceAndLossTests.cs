using TerDiT.Diffusion;
using TerDiT.Runtime.Diffusion;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class DiffusionGuidanceAndLossTests
{
    const int NullClass = 10;

    static double Value(Tensor t) => t.to(ScalarType.Float64).item<double>();

    /// <summary>A model whose output depends on x, t and the label, with 2C channels (ε, v); records its batches.</summary>
    static DenoiserFn Dummy(List<long[]> labelsSeen) => (x, t, y) =>
    {
        labelsSeen.Add(y.data<long>().ToArray());
        var label = y.to(x.dtype).view(-1, 1, 1, 1);                      // (N, 1, 1, 1)
        var eps = 0.5 * x + 0.1 * label + 0.001 * t.to(x.dtype).view(-1, 1, 1, 1);
        var v = (0.05 * label - 0.3).expand_as(x);
        return cat([eps, v], 1);                                          // (N, 2C, H, W)
    };

    [Fact]
    public void ScaleOneIsTheConditionalModelWithoutDoubling()
    {
        var seen = new List<long[]>();
        var model = Dummy(seen);
        var guided = ClassifierFreeGuidance.Wrap(model, 1.0, NullClass);
        var x = randn([2, 3, 2, 2], generator: new Generator(1));
        var t = tensor(new long[] { 5, 900 });
        var y = tensor(new long[] { 2, 7 });
        Assert.True(guided(x, t, y).equal(model(x, t, y)).all().item<bool>());
        Assert.All(seen, labels => Assert.Equal(2, labels.Length));
    }

    [Theory]
    [InlineData(4.0)]
    [InlineData(1.5)]
    [InlineData(0.0)]
    public void GuidanceFollowsTheFormulaOnAllEpsilonChannels(double scale)
    {
        var seen = new List<long[]>();
        var model = Dummy(seen);
        var x = randn([2, 3, 2, 2], generator: new Generator(2));
        var t = tensor(new long[] { 5, 900 });
        var y = tensor(new long[] { 2, 7 });
        var guided = ClassifierFreeGuidance.Wrap(model, scale, NullClass)(x, t, y);
        Assert.Equal([2L, 7, NullClass, NullClass], seen[^1]);
        var cond = model(x, t, y);
        var uncond = model(x, t, full([2], NullClass, dtype: ScalarType.Int64));
        var eps = uncond[.., ..3] + scale * (cond[.., ..3] - uncond[.., ..3]);
        Assert.Equal([2L, 6, 2, 2], guided.shape);
        Assert.True(guided[.., ..3].allclose(eps, rtol: 1e-6, atol: 1e-6));
        Assert.True(guided[.., 3..].equal(cond[.., 3..]).all().item<bool>()); // variance from the conditional half
        Assert.True(scale == 1.0 || Value((guided[.., ..3] - cond[.., ..3]).abs().max()) > 0.1); // the halves really differ
    }

    [Fact]
    public void GuidanceWorksForEpsilonOnlyModels()
    {
        DenoiserFn model = (x, t, y) => x + y.to(x.dtype).view(-1, 1, 1, 1);
        var x = zeros(1, 2, 2, 2);
        var guided = ClassifierFreeGuidance.Wrap(model, 3.0, NullClass)(x, tensor(new long[] { 1 }), tensor(new long[] { 4 }));
        // ε_u = 10, ε_c = 4: 10 + 3·(4 − 10) = −8.
        Assert.True(guided.allclose(full([1, 2, 2, 2], -8f)));
    }

    /// <summary>A model that is one parameter tensor of shape (1, 2C, H, W), plus 0.5·x on the ε channels.</summary>
    sealed class ParameterModel
    {
        public readonly Tensor P;
        public ParameterModel(long c, long h, long w, Generator g) =>
            P = (0.3 * randn([1, 2 * c, h, w], dtype: ScalarType.Float64, generator: g)).requires_grad_(true);

        public Tensor Forward(Tensor x, Tensor t, Tensor y) =>
            P.expand(x.shape[0], -1, -1, -1) + cat([0.5 * x, zeros_like(x)], 1);
    }

    [Fact]
    public void TrainingLossIsMsePlusAVariationalBoundThatOnlyTrainsTheVariance()
    {
        var d = new GaussianDiffusion(DiffusionSchedule.Linear());
        var g = new Generator(3);
        var model = new ParameterModel(2, 3, 3, g);
        var x0 = rand([4, 2, 3, 3], dtype: ScalarType.Float64, generator: g) * 2 - 1;
        var noise = randn([4, 2, 3, 3], dtype: ScalarType.Float64, generator: g);
        var t = tensor(new long[] { 0, 1, 400, 999 });
        var (loss, mse, vb) = d.TrainingLosses(model.Forward, x0, t, zeros(4, dtype: ScalarType.Int64), noise);
        Assert.NotNull(vb);
        Assert.Equal([4L], loss.shape);
        Assert.True(loss.isfinite().all().item<bool>());
        Assert.True((vb! >= 0).all().item<bool>());
        Assert.True((loss >= mse).all().item<bool>());
        Assert.True(loss.allclose(mse + vb));
        var xt = d.QSample(x0, t, noise);
        var expectedMse = (noise - model.Forward(xt, t, t)[.., ..2]).square().mean([1, 2, 3]);
        Assert.True(mse.allclose(expectedMse));

        vb.sum().backward();
        var grad = model.P.grad!;
        Assert.Equal(0.0, Value(grad[.., ..2].abs().max()));        // no VLB gradient into ε
        Assert.True(Value(grad[.., 2..].abs().max()) > 1e-6);       // but into the variance channels
        model.P.grad!.zero_();
        mse.sum().backward();
        Assert.Equal(0.0, Value(model.P.grad![.., 2..].abs().max())); // MSE does not reach the variance
        Assert.True(Value(model.P.grad![.., ..2].abs().max()) > 1e-6);
    }

    [Fact]
    public void VariationalBoundMatchesClosedFormsForTheOracle()
    {
        var d = new GaussianDiffusion(DiffusionSchedule.Linear());
        var s = d.Schedule;
        var g = new Generator(4);
        // x0 on bin centres k/127.5 − 1 away from the edges, so the decoder term is the interior-bin probability.
        var x0 = (randint(10, 245, [3, 1, 2, 2], dtype: ScalarType.Float64, generator: g) / 127.5) - 1;
        var noise = randn([3, 1, 2, 2], dtype: ScalarType.Float64, generator: g);
        var t = tensor(new long[] { 0, 300, 300 });
        var y = zeros(3, dtype: ScalarType.Int64);

        // v = −1: the model's Gaussian is the true posterior, so KL = 0 and MSE = 0.
        var (_, mse, vb) = d.TrainingLosses(DiffusionTestModels.Oracle(x0, learnedSigma: true, v: -1), x0, t, y, noise);
        Assert.True(Value(mse.abs().max()) < 1e-18);
        Assert.Equal(0.0, Value(vb![1]), 1e-9);
        // t = 0: −log2 P(bin) under N(x0, β̃_1), P = Φ(δ/σ) − Φ(−δ/σ) with δ = 1/255 and the tanh approximation of Φ.
        double sigma = Math.Sqrt(s.PosteriorVariance[1]), z = (1.0 / 255) / sigma;
        static double Phi(double u) => 0.5 * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (u + 0.044715 * u * u * u)));
        Assert.Equal(-Math.Log(Phi(z) - Phi(-z)) / Math.Log(2), Value(vb[0]), 1e-9);

        // v = +1: log Σ = log β_t, same mean: KL = ½(−1 + log β − log β̃ + β̃/β) per element, in bits.
        (_, _, vb) = d.TrainingLosses(DiffusionTestModels.Oracle(x0, learnedSigma: true, v: 1), x0, t, y, noise);
        double beta = s.Betas[300], post = s.PosteriorVariance[300];
        Assert.Equal(0.5 * (-1 + Math.Log(beta) - Math.Log(post) + post / beta) / Math.Log(2), Value(vb![2]), 1e-9);
    }

    [Fact]
    public void FixedVarianceTrainsOnMseAlone()
    {
        var d = new GaussianDiffusion(DiffusionSchedule.Linear(), VarianceKind.FixedSmall);
        var g = new Generator(5);
        var x0 = randn([2, 1, 2, 2], generator: g);
        var noise = randn([2, 1, 2, 2], generator: g);
        DenoiserFn zero = (x, t, y) => zeros_like(x);
        var (loss, mse, vb) = d.TrainingLosses(zero, x0, tensor(new long[] { 3, 4 }), zeros(2, dtype: ScalarType.Int64), noise);
        Assert.Null(vb);
        Assert.True(loss.allclose(noise.square().mean([1, 2, 3])));
        Assert.True(loss.equal(mse).all().item<bool>());
    }
}
