using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Model;

/// <summary>
/// Where a <see cref="RuntimeModel"/> gets its weights, by the names of
/// <see cref="ParameterSchema"/>: full-precision tensors as floats, ternary layers as ready
/// linear kernels (a packed file hands out kernels over its packed bytes, tests hand out dense
/// references). Implementations validate names and sizes and throw with the offending name.
/// </summary>
public interface IWeightSource
{
    TerDiTConfig Config { get; }

    /// <summary>A full-precision tensor, flattened row-major (element count as in the schema).</summary>
    float[] Full(string name);

    /// <summary>
    /// The ternary linear <c>{prefix}.weight</c> (trits) with scale <c>{prefix}.alpha</c> as a kernel
    /// computing <c>y = alpha · (x · W_tᵀ) + bias</c>.
    /// </summary>
    ILinearKernel TernaryLinear(string prefix, float[]? bias, RuntimeOptions options);

    /// <summary>The packed trits of <c>{prefix}.weight</c> with scale <c>{prefix}.alpha</c> (for backends with their own kernels).</summary>
    PackedTernaryMatrix TernaryWeight(string prefix);
}
