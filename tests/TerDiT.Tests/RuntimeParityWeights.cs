using TerDiT.Model;
using TerDiT.Quantization;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Model;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary>
/// Moves a TorchSharp <see cref="TerDiTModel"/>'s weights into the runtime: every parameter by its
/// schema name, full-precision tensors as float32 arrays, ternary weights as the trits
/// <see cref="TernaryLinear.Ternarize"/> gives (exactly what the TorchSharp forward uses) with the
/// layer's alpha as their scale.
/// </summary>
static class RuntimeParityWeights
{
    public static InMemoryWeights FromModel(TerDiTModel model)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var weights = new InMemoryWeights(model.Config);
        foreach (var spec in ParameterSchema.Enumerate(model.Config))
        {
            var p = parameters[spec.Name];
            switch (spec.Kind)
            {
                case ParameterKind.Full:
                    weights.SetFull(spec.Name, Floats(p));
                    break;
                case ParameterKind.TernaryWeight:
                    string prefix = spec.Name[..^".weight".Length];
                    var (trits, _) = TernaryLinear.Ternarize(p);
                    using (trits)
                        weights.SetTernary(prefix, trits.cpu().data<sbyte>().ToArray(), parameters[prefix + ".alpha"].cpu().item<float>());
                    break;
            }
        }
        return weights;
    }

    static float[] Floats(Tensor t)
    {
        using var f = t.detach().to(ScalarType.Float32, CPU).contiguous();
        return f.data<float>().ToArray();
    }
}
