using TerDiT.Runtime.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>The linears of a transformer block: ternary when the config says so, plain otherwise (both <see cref="IComputePrecision"/>).</summary>
static class BlockLinear
{
    public static nn.Module<Tensor, Tensor> Create(TerDiTConfig config, long inFeatures, long outFeatures, bool hasBias = false) =>
        config.Ternary ? new TernaryLinear(inFeatures, outFeatures, hasBias) : new FullPrecisionLinear(inFeatures, outFeatures, hasBias);
}
