using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Diffusion;

/// <summary>Elementwise Gaussian divergences and likelihoods used by the variational bound (IDDPM), in nats.</summary>
public static class GaussianLikelihood
{
    /// <summary>KL(N(mean1, e^logVar1) ‖ N(mean2, e^logVar2)) elementwise (broadcasting).</summary>
    public static Tensor NormalKl(Tensor mean1, Tensor logVar1, Tensor mean2, Tensor logVar2)
    {
        using var s = new ScalarHolder();
        var sum = logVar2.Plus(s.Of(-1.0)).sub(logVar1).Plus((logVar1 - logVar2).exp()).Plus((mean1 - mean2).Squared() * (-logVar2).exp());
        return s.Of(0.5) * sum;
    }

    /// <summary>Φ(x) via the tanh approximation 0.5·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static Tensor ApproxStandardNormalCdf(Tensor x)
    {
        using var s = new ScalarHolder();
        var inner = s.Of(Math.Sqrt(2.0 / Math.PI)) * x.Plus(s.Of(0.044715) * x.pow(s.Of(3)));
        return s.Of(0.5) * inner.tanh().Plus(s.Of(1.0));
    }

    /// <summary>
    /// Log-likelihood of data <paramref name="x"/> in [−1, 1] discretised to 256 bins of width 2/255 under
    /// N(means, e^(2·logScales)); the edge bins extend to ±∞. Elementwise, in nats; probabilities floored at 1e−12.
    /// </summary>
    public static Tensor DiscretizedGaussianLogLikelihood(Tensor x, Tensor means, Tensor logScales)
    {
        if (!x.shape.SequenceEqual(means.shape) || !x.shape.SequenceEqual(logScales.shape))
            throw new ArgumentException($"x {TensorShape.Format(x)}, means {TensorShape.Format(means)} and log-scales {TensorShape.Format(logScales)} must have one shape");
        using var s = new ScalarHolder();
        Scalar halfBin = s.Of(1.0 / 255.0), floor = s.Of(1e-12);
        var centered = x - means;
        var invStd = (-logScales).exp();
        var cdfPlus = ApproxStandardNormalCdf(invStd * centered.Plus(halfBin));
        var cdfMin = ApproxStandardNormalCdf(invStd * (centered - halfBin));
        var logCdfPlus = cdfPlus.clamp(min: floor).log();
        var logOneMinusCdfMin = Scalars.Minus(s.Of(1.0), cdfMin).clamp(min: floor).log();
        var logCdfDelta = (cdfPlus - cdfMin).clamp(min: floor).log();
        return where(x < s.Of(-0.999), logCdfPlus, where(x > s.Of(0.999), logOneMinusCdfMin, logCdfDelta));
    }
}
