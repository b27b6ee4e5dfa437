using System.Text.Json;

namespace TerDiT.Evaluation;

/// <summary>
/// Sample-quality metrics of <paramref name="N"/> generated images against <paramref name="ReferenceN"/> real ones,
/// in the feature space of <see cref="FeatureClassifier"/> (see docs/EVAL.md).
/// </summary>
/// <param name="Fid">Fréchet distance between the Gaussians of generated and reference features (lower is better;
/// not comparable to Inception FID).</param>
/// <param name="Precision">Fraction of generated images inside the reference manifold (k-NN balls).</param>
/// <param name="Recall">Fraction of reference images inside the generated manifold.</param>
/// <param name="ClassAccuracy">Fraction of generated images the classifier assigns to the requested class.</param>
/// <param name="N">Number of generated images.</param>
/// <param name="ReferenceN">Number of reference images used for FID.</param>
/// <param name="PrecisionRecallReferenceN">Reference images used for precision/recall: min(N, ReferenceN), the first
/// ones, so both manifolds are built from equally many points.</param>
/// <param name="K">Neighbour index of the manifold radii.</param>
public sealed record EvalResult(double Fid, double Precision, double Recall, double ClassAccuracy, int N, int ReferenceN,
    int PrecisionRecallReferenceN, int K)
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses a result written by <see cref="ToJson"/>; malformed JSON becomes <see cref="FormatException"/>.</summary>
    public static EvalResult FromJson(string json)
    {
        try { return JsonSerializer.Deserialize<EvalResult>(json, Json) ?? throw new FormatException("eval result is null"); }
        catch (JsonException e) { throw new FormatException($"eval result is not valid JSON: {e.Message}", e); }
    }
}
