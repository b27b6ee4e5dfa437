namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// Classifier-free guidance of one image's epsilon: <c>ε = ε_u + s·(ε_c − ε_u)</c> on the first
/// <c>guidedChannels</c> channels, ε_c (the conditional prediction) on the rest. All channels is the
/// standard rule and our default; DiT and the TerDiT authors guide only the first 3 of their 4 latent
/// channels (a reproducibility quirk of their code, docs/PAPER.md), which <c>guidedChannels = 3</c> reproduces.
/// </summary>
public static class Guidance
{
    /// <param name="cond">ε_c (C, H, W).</param>
    /// <param name="uncond">ε_u (C, H, W).</param>
    /// <param name="scale">s.</param>
    /// <param name="plane">H·W.</param>
    /// <param name="guidedChannels">Channels [0, guidedChannels) are guided, 1 ≤ guidedChannels ≤ C.</param>
    /// <param name="eps">Result (C, H, W).</param>
    public static void Combine(ReadOnlySpan<float> cond, ReadOnlySpan<float> uncond, float scale, int plane, int guidedChannels, Span<float> eps)
    {
        int per = cond.Length;
        if (uncond.Length != per || eps.Length != per || plane <= 0 || per % plane != 0)
            throw new ArgumentException($"guidance operands hold {cond.Length}, {uncond.Length}, {eps.Length} floats for planes of {plane}");
        if (guidedChannels < 1 || guidedChannels > per / plane)
            throw new ArgumentOutOfRangeException(nameof(guidedChannels), guidedChannels, $"guided channels must be in 1..{per / plane}");
        int guided = guidedChannels * plane;
        for (int e = 0; e < guided; e++) eps[e] = uncond[e] + scale * (cond[e] - uncond[e]);
        cond[guided..].CopyTo(eps[guided..]);
    }
}
