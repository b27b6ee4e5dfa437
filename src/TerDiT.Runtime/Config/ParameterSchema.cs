namespace TerDiT.Runtime.Config;

/// <summary>What a parameter is, for quantization and packing.</summary>
public enum ParameterKind
{
    /// <summary>Full-precision tensor (embeddings, norms, biases, the final layer).</summary>
    Full,
    /// <summary>Latent weight of a ternary linear layer (packed to 2 bits for deployment).</summary>
    TernaryWeight,
    /// <summary>The learnable scalar scale alpha of a ternary layer, shape (1).</summary>
    TernaryScale,
}

public sealed record ParameterSpec(string Name, long[] Shape, ParameterKind Kind)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Every parameter a TerDiT model has, by name and shape, computed from the config without
/// allocating anything. The single source of truth for parameter counts, for the TorchSharp
/// module tree (tested to match it exactly) and for the packed format's validation.
/// </summary>
public static class ParameterSchema
{
    public static IEnumerable<ParameterSpec> Enumerate(TerDiTConfig c)
    {
        long d = c.HiddenSize, cd = c.CondDim, f = c.FfnHidden;
        ParameterSpec Full(string n, params long[] s) => new(n, s, ParameterKind.Full);

        yield return Full("x_embedder.weight", d, c.PatchFeatures);
        yield return Full("x_embedder.bias", d);
        yield return Full("t_embedder.fc1.weight", cd, 256);
        yield return Full("t_embedder.fc1.bias", cd);
        yield return Full("t_embedder.fc2.weight", cd, cd);
        yield return Full("t_embedder.fc2.bias", cd);
        yield return Full("y_embedder.embedding_table.weight", c.NumClasses + 1, cd);

        for (int i = 0; i < c.Depth; i++)
        {
            string b = $"blocks.{i}.";
            yield return Full(b + "attention_norm.weight", d);
            foreach (var w in new[] { "wq", "wk", "wv", "wo" })
                foreach (var p in Linear(c, b + "attention." + w, d, d)) yield return p;
            if (c.QkNorm)
            {
                yield return Full(b + "attention.q_norm.weight", d);
                yield return Full(b + "attention.q_norm.bias", d);
                yield return Full(b + "attention.k_norm.weight", d);
                yield return Full(b + "attention.k_norm.bias", d);
            }
            yield return Full(b + "ffn_norm.weight", d);
            foreach (var p in Linear(c, b + "feed_forward.w1", f, d)) yield return p;
            foreach (var p in Linear(c, b + "feed_forward.w2", d, f)) yield return p;
            foreach (var p in Linear(c, b + "feed_forward.w3", f, d)) yield return p;
            foreach (var p in Linear(c, b + "adaLN_modulation", 6 * d, cd)) yield return p;
            yield return Full(b + "adaLN_modulation.bias", 6 * d);
            if (c.AdaLnNorm) yield return Full(b + "adaLN_norm.weight", 6 * d);
        }

        yield return Full("final_layer.adaLN_modulation.weight", 2 * d, cd);
        yield return Full("final_layer.adaLN_modulation.bias", 2 * d);
        yield return Full("final_layer.linear.weight", (long)c.PatchSize * c.PatchSize * c.OutChannels, d);
        yield return Full("final_layer.linear.bias", (long)c.PatchSize * c.PatchSize * c.OutChannels);
    }

    /// <summary>The weight (and, when ternary, alpha) of a bias-free block linear.</summary>
    static IEnumerable<ParameterSpec> Linear(TerDiTConfig c, string name, long outFeatures, long inFeatures)
    {
        if (!c.Ternary)
        {
            yield return new(name + ".weight", [outFeatures, inFeatures], ParameterKind.Full);
            yield break;
        }
        yield return new(name + ".weight", [outFeatures, inFeatures], ParameterKind.TernaryWeight);
        yield return new(name + ".alpha", [1], ParameterKind.TernaryScale);
    }

    /// <summary>All learnable parameters (alphas included).</summary>
    public static long ParameterCount(TerDiTConfig c) => Enumerate(c).Sum(p => p.Elements);

    /// <summary>Weights that are ternary (alphas and biases not counted).</summary>
    public static long TernaryParameterCount(TerDiTConfig c) =>
        Enumerate(c).Where(p => p.Kind == ParameterKind.TernaryWeight).Sum(p => p.Elements);
}
