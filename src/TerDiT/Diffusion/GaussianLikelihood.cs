using static TorchSharp.torch;

namespace TerDiT.Diffusion;

/// <summary>Elementwise Gaussian divergences and likelihoods used by the variational bound (IDDPM), in nats.</summary>
public static class GaussianLikelihood
{
    /// <summary>KL(N(mean1, e^logVar1) ‖ N(mean2, e^logVar2)) elementwise (broadcasting).</summary>
    public static Tensor NormalKl(Tensor mean1, Tensor logVar1, Tensor mean2, Tensor logVar2) =>
        0.5 * (-1.0 + logVar2 - logVar1 + (logVar1 - logVar2).exp() + (mean1 - mean2).square() * (-logVar2).exp());

    /// <summary>Φ(x) via the tanh approximation 0.5·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static Tensor ApproxStandardNormalCdf(Tensor x) =>
        0.5 * (1.0 + (Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))).tanh());

    /// <summary>
    /// Log-likelihood of data <paramref name="x"/> in [−1, 1] discretised to 256 bins of width 2/255 under
    /// N(means, e^(2·logScales)); the edge bins extend to ±∞. Elementwise, in nats; probabilities floored at 1e−12.
    /// </summary>
    public static Tensor DiscretizedGaussianLogLikelihood(Tensor x, Tensor means, Tensor logScales)
    {
        if (!x.shape.SequenceEqual(means.shape) || !x.shape.SequenceEqual(logScales.shape))
            throw new ArgumentException($"x {TensorShape.Format(x)}, means {TensorShape.Format(means)} and log-scales {TensorShape.Format(logScales)} must have one shape");
        var centered = x - means;
        var invStd = (-logScales).exp();
        var cdfPlus = ApproxStandardNormalCdf(invStd * (centered + 1.0 / 255.0));
        var cdfMin = ApproxStandardNormalCdf(invStd * (centered - 1.0 / 255.0));
        var logCdfPlus = cdfPlus.clamp(min: 1e-12).log();
        var logOneMinusCdfMin = (1.0 - cdfMin).clamp(min: 1e-12).log();
        var logCdfDelta = (cdfPlus - cdfMin).clamp(min: 1e-12).log();
        return where(x < -0.999, logCdfPlus, where(x > 0.999, logOneMinusCdfMin, logCdfDelta));
    }
}
