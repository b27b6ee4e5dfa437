using TerDiT.Model;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Model;
using static TorchSharp.torch;

namespace TerDiT.Packing;

/// <summary>
/// Moves TorchSharp weights into the pure-C# runtime without a file: every parameter by its schema
/// name, full-precision tensors as float32 arrays, ternary weights as the trits the TorchSharp forward
/// uses with the layer's alpha as their scale. The same conversion <see cref="ModelPacker"/> writes.
/// </summary>
public static class RuntimeWeights
{
    /// <summary>The model's current parameters as runtime weights.</summary>
    public static InMemoryWeights FromModel(TerDiTModel model) =>
        FromTensors(model.Config, model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter));

    /// <summary>
    /// Runtime weights from tensors by parameter name (exactly the schema of <paramref name="config"/>;
    /// see <see cref="ModelPacker.CheckWeights"/> for the refusals).
    /// </summary>
    public static InMemoryWeights FromTensors(TerDiTConfig config, IReadOnlyDictionary<string, Tensor> weights)
    {
        ModelPacker.CheckWeights(config, weights);
        var result = new InMemoryWeights(config);
        foreach (var spec in ParameterSchema.Enumerate(config))
        {
            switch (spec.Kind)
            {
                case ParameterKind.Full:
                    result.SetFull(spec.Name, TensorExport.Floats(spec.Name, weights[spec.Name]));
                    break;
                case ParameterKind.TernaryWeight:
                    string prefix = spec.Name[..^".weight".Length];
                    result.SetTernary(prefix, TensorExport.Trits(spec.Name, weights[spec.Name]), TensorExport.Scalar(prefix + ".alpha", weights[prefix + ".alpha"]));
                    break;
            }
        }
        return result;
    }
}
