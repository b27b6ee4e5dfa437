using static TorchSharp.torch;

namespace TerDiT.Diffusion;

/// <summary>Classifier-free guidance as a model wrapper (DiT's <c>forward_with_cfg</c>, applied to all epsilon channels).</summary>
public static class ClassifierFreeGuidance
{
    /// <summary>
    /// Wraps <paramref name="model"/>: the batch is doubled (x, t, labels; then x, t, <paramref name="nullClass"/>),
    /// and with ε_c, ε_u the conditional / unconditional epsilon channels [0, C) the result is
    /// ε = ε_u + s·(ε_c − ε_u); channels [C, …) (learned variance) are taken from the conditional half.
    /// With <paramref name="scale"/> = 1 the model itself is returned (no doubling).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">scale is negative or not finite.</exception>
    public static DenoiserFn Wrap(DenoiserFn model, double scale, int nullClass)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!double.IsFinite(scale) || scale < 0) throw new ArgumentOutOfRangeException(nameof(scale), scale, "guidance scale must be finite and ≥ 0");
        if (scale == 1.0) return model;
        return (x, t, y) =>
        {
            using var scope = NewDisposeScope();
            using var s = new ScalarHolder();
            long n = x.shape[0], c = x.shape[1];
            var nullLabels = full_like(y, s.Of(nullClass));
            var output = model(cat([x, x], 0), cat([t, t], 0), cat([y, nullLabels], 0)); // (2N, C or 2C, H, W)
            var cond = output.narrow(0, 0, n);                                            // (N, …)
            var uncond = output.narrow(0, n, n);
            var epsC = cond.narrow(1, 0, c);                                              // (N, C, H, W)
            var epsU = uncond.narrow(1, 0, c);
            var eps = epsU.Plus(s.Of(scale) * (epsC - epsU));
            var result = cond.shape[1] == c ? eps : cat([eps, cond.narrow(1, c, cond.shape[1] - c)], 1);
            return scope.MoveToOuter(result);
        };
    }
}
