using TerDiT.Runtime;
using TerDiT.Runtime.Config;

namespace TerDiT.Model;

/// <summary>
/// Byte estimates of the TorchSharp model's memory (fp32), for refusing work the machine cannot hold before
/// allocating it. T tokens, D width, F the SwiGLU width, h heads; attention is counted with its h·T² score
/// matrix (libtorch's math path; its fused CPU kernel needs less). Calibrated on the CPU from the peak RSS of
/// <c>terdit train</c> at two batch sizes: TerDiT-Tiny takes 5.8 MB per image of the batch (batch 16 vs 64; the
/// estimate says 6.3 MB), TerDiT-S 152 MB (batch 4 vs 12; estimate 179 MB).
/// </summary>
public static class ActivationMemory
{
    /// <summary>Floats one block keeps per image for the backward pass: ≈ 10·T·D + 9·T·F + h·T².</summary>
    static long TrainingFloatsPerBlock(TerDiTConfig c)
    {
        long t = c.Tokens;
        return 10 * t * c.HiddenSize + 9 * t * c.FfnHidden + (long)c.NumHeads * t * t;
    }

    /// <summary>Activation bytes per image of a training batch (forward activations kept for the backward pass).</summary>
    public static long TrainingBytesPerImage(TerDiTConfig c) => 4 * (c.Depth * TrainingFloatsPerBlock(c) + 4L * c.Tokens * c.PatchFeatures);

    /// <summary>
    /// Bytes of a training run with <paramref name="batch"/> images per process: <see cref="TrainingStateBytes"/> +
    /// batch · <see cref="TrainingBytesPerImage"/>, saturating at <see cref="long.MaxValue"/>.
    /// </summary>
    public static long Training(TerDiTConfig c, long batch)
    {
        long activations = MemoryBudget.Multiply(batch, TrainingBytesPerImage(c));
        return activations > long.MaxValue - TrainingStateBytes(c) ? long.MaxValue : activations + TrainingStateBytes(c);
    }

    /// <summary>
    /// Bytes of training whatever the batch: weights, gradients, two AdamW moments, the EMA and the ternarized
    /// weight temporaries of a step (six fp32 copies of the parameters).
    /// </summary>
    public static long TrainingStateBytes(TerDiTConfig c) => 6 * 4 * ParameterSchema.ParameterCount(c);

    /// <summary>Bytes of one no-grad forward per image: the widest live tensors of a block, ≈ T·(8·D + 3·F) + h·T² floats.</summary>
    public static long InferenceBytesPerImage(TerDiTConfig c)
    {
        long t = c.Tokens;
        return 4 * (t * (8L * c.HiddenSize + 3L * c.FfnHidden + 2L * c.PatchFeatures) + (long)c.NumHeads * t * t);
    }
}
