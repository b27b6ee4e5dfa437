using TerDiT.Model;
using TerDiT.Runtime.Config;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class MixedPrecisionTests(ITestOutputHelper output)
{
    /// <summary>
    /// The previous TernaryLinear formulation, kept here as the reference for the fused one:
    /// <c>W_t = clamp(round(W / (mean|W| + 1e-6)), -1, 1)</c> in float32 without grad,
    /// <c>ste = W_t + (W − W.detach())</c>, <c>y = linear(x, alpha · ste, b)</c> with x, the effective
    /// weight and b cast to <paramref name="dtype"/> (null: W's dtype).
    /// </summary>
    static Tensor ReferenceTernaryLinear(Tensor x, Tensor w, Tensor alpha, Tensor? b, ScalarType? dtype)
    {
        Tensor wt;
        using (no_grad())
        {
            var w32 = w.to(ScalarType.Float32);
            wt = (w32 / (w32.abs().mean() + TernaryLinear.Epsilon)).round().clamp(-1, 1).to(w.dtype);
        }
        var wq = alpha * (wt + (w - w.detach()));
        var dt = dtype ?? w.dtype;
        return nn.functional.linear(x.to(dt), wq.to(dt), b?.to(dt));
    }

    /// <summary>
    /// The fused forward (in-place ternarization of a float32 copy) computes the same output and the same
    /// gradients for x, W, alpha and b as the reference formulation, in float32 and with bf16 compute.
    /// Tolerance 1e-6 relative to each tensor's largest element: both run the same matmuls and the same
    /// backward ops on the same values, so only reduction order (gamma) could differ, far below that.
    /// </summary>
    [Theory]
    [InlineData(16, 8, true, 1.3, null)]
    [InlineData(64, 96, false, -0.7, null)]
    [InlineData(33, 5, true, 0.02, null)]
    [InlineData(64, 96, true, 0.9, ScalarType.BFloat16)]
    public void FusedTernaryLinearEqualsTheReferenceFormulation(int inFeatures, int outFeatures, bool hasBias, double alpha, ScalarType? dtype)
    {
        var g = new Generator((ulong)(inFeatures * 131 + outFeatures), CPU);
        var layer = new TernaryLinear(inFeatures, outFeatures, hasBias) { ComputeDType = dtype };
        using (no_grad())
        {
            layer.Weight.normal_(0, 0.3, g);
            layer.Alpha.fill_(alpha);
            layer.Bias?.normal_(0, 0.5, g);
        }
        using var x0 = randn(3, 7, inFeatures, generator: g);
        using var r = randn(3, 7, outFeatures, generator: g);    // dL/dy

        var x = x0.clone().requires_grad_(true);
        using var y = layer.call(x);
        using var loss = (y.to(ScalarType.Float32) * r).sum();
        loss.backward();

        var w = layer.Weight.detach().clone().requires_grad_(true);
        var a = layer.Alpha.detach().clone().requires_grad_(true);
        var b = layer.Bias?.detach().clone().requires_grad_(true);
        var xr = x0.clone().requires_grad_(true);
        using var yr = ReferenceTernaryLinear(xr, w, a, b, dtype);
        using var lossRef = (yr.to(ScalarType.Float32) * r).sum();
        lossRef.backward();

        Assert.Equal(dtype ?? ScalarType.Float32, y.dtype);
        Assert.Equal(ScalarType.Float32, layer.Weight.grad!.dtype);
        Close(yr, y, "output");
        Close(xr.grad!, x.grad!, "dL/dx");
        Close(w.grad!, layer.Weight.grad!, "dL/dW");
        Close(a.grad!, layer.Alpha.grad!, "dL/dalpha");
        if (hasBias) Close(b!.grad!, layer.Bias!.grad!, "dL/db");
        Assert.True(layer.Weight.grad!.abs().max().item<float>() > 1e-3, "weight gradient is unexpectedly zero");

        static void Close(Tensor expected, Tensor actual, string what) =>
            TensorAssert.Close(expected, actual, rtol: 1e-6, atol: 1e-6 * expected.abs().max().to(ScalarType.Float64).item<double>(), what: what);
    }

    [Fact]
    public void QuantizeAndTernarizeAgreeWithTheAbsmeanFormulationOnALargeTensor()
    {
        using var w = randn(512, 768, generator: new Generator(12, CPU)) * 0.05f;
        using var reference = (w / (w.abs().mean() + TernaryLinear.Epsilon)).round().clamp(-1, 1);
        using var q = TernaryLinear.Quantize(w);
        TensorAssert.Equal(reference, q, "trits");
        var (trits, gamma) = TernaryLinear.Ternarize(w);
        using (trits) TensorAssert.Equal(reference, trits.to(ScalarType.Float32), "int8 trits");
        Assert.Equal(w.abs().mean().item<float>(), gamma);
        // Quantize works on a copy: the input is unchanged (in-place ternarization must not leak out).
        Assert.True(w.abs().max().item<float>() < 0.5f, "input was modified");
    }

    /// <summary>
    /// bf16 compute on float32 master weights: the output stays float32 and within 3% (relative L2) of
    /// the float32 model, and every parameter's gradient is finite, float32 and points the same way
    /// (cosine &gt; 0.99). Why 3%: bf16 keeps 8 significant bits (relative rounding 2⁻⁹ ≈ 0.2% per cast);
    /// a depth-2 model chains ~12 rounded products on the path to the output, and the errors add like a
    /// random walk (≈ 0.2%·√12 ≈ 0.7%) — 3% leaves room for amplification by the norms, but catches a
    /// matmul left in the wrong dtype, a trit flipped by bf16 ternarization, or a missing cast.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BFloat16ComputeMatchesFloat32WithFloat32MasterWeights(bool ternary)
    {
        var config = Presets.Get("TerDiT-Tiny") with { Depth = 2, Ternary = ternary };
        var model = new TerDiTModel(config, seed: 4);
        ModelTests.RandomiseZeroInitLayers(model, 6);
        var g = new Generator(13, CPU);
        using var x = randn(3, 1, 32, 32, generator: g);
        using var t = tensor(new long[] { 3, 400, 999 });
        using var y = tensor(new long[] { 5, 10, 0 });
        using var r = randn(3, config.OutChannels, 32, 32, generator: g);   // dL/doutput

        var (a, gradsA) = OutputAndGradients(model, x, t, y, r);
        model.ComputeDType = ScalarType.BFloat16;
        var (b, gradsB) = OutputAndGradients(model, x, t, y, r);

        Assert.Equal(ScalarType.Float32, b.dtype);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        double relative = ((a - b).norm() / a.norm()).item<float>();
        output.WriteLine($"output relative L2 difference {relative:P2}");
        Assert.True(relative < 0.03, $"bf16 output differs from fp32 by {relative:P1}");
        Assert.True(relative > 1e-5, "bf16 compute changed nothing: the matmuls did not run in bf16");

        // Each tensor's gradient separately; the scalar alphas together as one vector (one alpha's gradient
        // Σ dL/dW_q ⊙ W_t is a cancelling sum over the whole weight, and those of wq/wk are ~0 because
        // the q/k LayerNorm undoes their scale, so single alphas only agree roughly; see the log).
        double worst = 1;
        foreach (var (name, ga) in gradsA)
        {
            var gb = gradsB[name];
            Assert.Equal(ScalarType.Float32, gb.dtype);
            Assert.True(gb.isfinite().all().item<bool>(), $"{name}: non-finite bf16 gradient");
            if (name.EndsWith(".alpha"))
            {
                output.WriteLine($"{name}: dL/dalpha {ga.item<float>():G4} (fp32) vs {gb.item<float>():G4} (bf16)");
                continue;
            }
            double cosine = Cosine(ga, gb);
            worst = Math.Min(worst, cosine);
            Assert.True(cosine > 0.99, $"{name}: gradient cosine {cosine:F4} between bf16 and fp32");
        }
        output.WriteLine($"smallest gradient cosine {worst:F5} over the non-alpha parameters");
        if (ternary)
        {
            var alphas = gradsA.Keys.Where(n => n.EndsWith(".alpha")).ToArray();
            double cosine = Cosine(cat(alphas.Select(n => gradsA[n]).ToArray()), cat(alphas.Select(n => gradsB[n]).ToArray()));
            output.WriteLine($"alpha gradients: cosine {cosine:F5} over {alphas.Length} layers");
            Assert.True(cosine > 0.99, $"alpha gradient cosine {cosine:F4} between bf16 and fp32");
        }
    }

    static double Cosine(Tensor a, Tensor b)
    {
        double na = a.norm().item<float>(), nb = b.norm().item<float>();
        Assert.True(na > 0 && nb > 0, "zero gradient");
        return (a * b).sum().item<float>() / (na * nb);
    }

    static (Tensor Output, Dictionary<string, Tensor> Gradients) OutputAndGradients(TerDiTModel model, Tensor x, Tensor t, Tensor y, Tensor r)
    {
        model.zero_grad();
        var o = model.call(x, t, y);
        using var loss = (o * r).sum();
        loss.backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        return (o.detach(), grads);
    }

    [Fact]
    public void ComputeDTypeReachesEveryLinearAndRejectsOtherDtypes()
    {
        var config = Presets.Get("TerDiT-Tiny") with { Depth = 2 };
        var model = new TerDiTModel(config);
        var modules = model.modules().OfType<IComputePrecision>().ToArray();
        // x_embedder, t_embedder fc1 + fc2, per block 7 linears + adaLN + attention + feed-forward, final 2 linears.
        Assert.Equal(3 + config.Depth * 10 + 2, modules.Length);
        Assert.All(modules, m => Assert.Null(m.ComputeDType));
        model.ComputeDType = ScalarType.BFloat16;
        Assert.All(modules, m => Assert.Equal(ScalarType.BFloat16, m.ComputeDType));
        Assert.Contains("Float32 or BFloat16", Assert.Throws<ArgumentException>(() => model.ComputeDType = ScalarType.Float16).Message);
        model.ComputeDType = null;
        Assert.All(modules, m => Assert.Null(m.ComputeDType));
    }
}
