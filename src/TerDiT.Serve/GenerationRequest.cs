using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Serve;

/// <summary>
/// The body of <c>POST /v1/generations</c>. Every field is optional except the classes (give <see cref="Classes"/>
/// or <see cref="Class"/>); a class is its name (as <c>GET /v1/model</c> lists it, case-insensitive) or its label.
/// </summary>
/// <param name="Classes">Classes, one grid row each, by name or label.</param>
/// <param name="Class">One class, by name or label (instead of <paramref name="Classes"/>).</param>
/// <param name="PerClass">Images per class (grid columns), default 1.</param>
/// <param name="Steps">Sampling steps (model calls), default 10; at most 999 with dpm++2m.</param>
/// <param name="Sampler">dpm++2m (DPM-Solver++(2M), default), ddim (eta 0) or ddpm.</param>
/// <param name="Cfg">Classifier-free guidance scale ≥ 1 (1: none), default 1.5.</param>
/// <param name="Seed">Seed of the noise, 0..2⁶⁴−1; drawn at random below 2⁵³ when left out.</param>
/// <param name="Mode">exact or a8; default: the service's.</param>
public sealed record GenerationRequest(JsonElement[]? Classes = null, JsonElement? Class = null, int? PerClass = null, int? Steps = null,
    string? Sampler = null, double? Cfg = null, ulong? Seed = null, string? Mode = null)
{
    public const int DefaultPerClass = 1;
    public const double DefaultCfg = 1.5;

    /// <summary>
    /// Checks the request against the model and the limits: the settings, or the errors by field (400), or
    /// <paramref name="tooLarge"/> set when it asks for more images than a request may (413).
    /// </summary>
    internal GenerationSettings? Validate(ServedModel model, ServeLimits limits, out Dictionary<string, string[]> errors, out string? tooLarge)
    {
        var found = new Dictionary<string, string[]>();
        void Error(string field, string message) => found[field] = [message];
        tooLarge = null;

        var classes = new List<int>();
        if (Classes is not null && Class is not null) Error("class", "give classes or class, not both");
        else if (Classes is null && Class is null) Error("classes", "give the classes to generate (classes: [names or labels]) or one class");
        else if (Classes is { Length: 0 }) Error("classes", "the list of classes is empty");
        else
        {
            var items = Classes ?? [Class!.Value];
            for (int i = 0; i < items.Length; i++)
            {
                string field = Classes is null ? "class" : $"classes[{i}]";
                if (ResolveClass(items[i], model) is int label) classes.Add(label);
                else Error(field, $"{Quote(items[i])} is not a class of this model (names: {string.Join(", ", model.ClassNames)}; or a label 0..{model.Config.NumClasses - 1})");
            }
        }
        int perClass = PerClass ?? DefaultPerClass, steps = Steps ?? SamplerNames.DefaultSteps;
        if (perClass < 1) Error("per_class", $"images per class must be at least 1, not {perClass}");
        string sampler = Sampler ?? SamplerNames.Default, mode = Mode ?? model.DefaultMode;
        var kind = SamplerNames.Find(sampler);
        if (kind is null) Error("sampler", $"'{sampler}' is not a sampler (one of {string.Join(", ", ServedModel.Samplers)})");
        int maxSteps = kind is SamplerKind k ? Math.Min(limits.MaxSteps, model.Diffusion.MaxSteps(k)) : limits.MaxSteps;
        if (steps < 1 || steps > maxSteps) Error("steps", $"steps must be in 1..{maxSteps}{(maxSteps < limits.MaxSteps ? $" with {sampler}" : "")}, not {steps}");
        if (!model.Denoisers.ContainsKey(mode)) Error("mode", $"'{mode}' is not a mode of this model (one of {string.Join(", ", model.Denoisers.Keys)})");
        double cfg = Cfg ?? DefaultCfg;
        if (!double.IsFinite(cfg)) Error("cfg", $"the guidance scale must be a finite number, not {cfg.ToString(CultureInfo.InvariantCulture)}");
        else if (cfg < 1) Error("cfg", $"the guidance scale must be ≥ 1 (1: no guidance), not {cfg.ToString(CultureInfo.InvariantCulture)}");

        errors = found;
        if (found.Count > 0) return null;
        long images = (long)classes.Count * perClass;
        if (images > limits.MaxImagesPerRequest)
        {
            tooLarge = $"the request asks for {images} images ({classes.Count} classes × per_class {perClass}); the limit is {limits.MaxImagesPerRequest}";
            return null;
        }
        ulong seed = Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) >> 11; // below 2⁵³: exact in JavaScript
        return new GenerationSettings(classes.ToArray(), perClass, steps, sampler, cfg, seed, mode);
    }

    /// <summary>The item as the request wrote it, or a description where its string is not valid UTF-8.</summary>
    static string Quote(JsonElement item)
    {
        try { return item.GetRawText(); }
        catch (InvalidOperationException) { return "a string that is not valid UTF-8"; }
    }

    static int? ResolveClass(JsonElement item, ServedModel model)
    {
        if (item.ValueKind == JsonValueKind.Number)
            return item.TryGetInt32(out int label) && label >= 0 && label < model.Config.NumClasses ? label : null;
        if (item.ValueKind != JsonValueKind.String) return null;
        string name;
        try { name = item.GetString()!; }
        catch (InvalidOperationException) { return null; } // invalid UTF-8 or an escaped lone surrogate: no class's name
        for (int k = 0; k < model.ClassNames.Count; k++)
            if (string.Equals(model.ClassNames[k], name, StringComparison.OrdinalIgnoreCase)) return k;
        return null;
    }
}
