using System.Text.Json;
using System.Text.Unicode;

namespace TerDiT.Runtime.Format;

/// <summary>One tensor entry of a safetensors header: bytes [Begin, End) of the data section.</summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// The safetensors header, validated as untrusted input: the JSON after the 8-byte length, read by both the
/// <c>.tdit</c> reader (<see cref="TditFile"/>) and the reader of outside files
/// (<c>Import.SafetensorsFile</c>). <see cref="Parse"/> checks UTF-8, a JSON object, unique keys,
/// <c>__metadata__</c> of strings, and per tensor exactly dtype/shape/data_offsets with a known dtype,
/// non-negative 64-bit dimensions and a byte count (checked arithmetic) equal to its offset span;
/// <see cref="CheckTiling"/> that the offsets tile the data section exactly.
/// </summary>
public static class SafetensorsHeader
{
    /// <summary>Largest header accepted (safetensors' own cap).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Bytes per element of every safetensors dtype this code reads.</summary>
    public static readonly IReadOnlyDictionary<string, int> DTypeSizes = new Dictionary<string, int>
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <summary>
    /// The metadata (null when the header has no <c>__metadata__</c>) and the tensor entries in header order.
    /// <paramref name="refuseDType"/>, when given, names why a dtype is not accepted (null: accepted).
    /// </summary>
    public static (Dictionary<string, string>? Metadata, List<SafetensorsEntry> Tensors) Parse(ReadOnlySpan<byte> header, Func<string, Exception> bad,
        Func<string, string?>? refuseDType = null)
    {
        if (!Utf8.IsValid(header)) throw bad("header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e) { throw bad($"header is not valid JSON: {e.Message}"); }
        using (doc)
        {
            // A JSON string may escape a lone UTF-16 surrogate, which reading it as .NET text refuses.
            try { return ParseRoot(doc.RootElement, bad, refuseDType); }
            catch (InvalidOperationException e) { throw bad($"header holds a string that is not valid Unicode: {e.Message}"); }
        }
    }

    static (Dictionary<string, string>? Metadata, List<SafetensorsEntry> Tensors) ParseRoot(JsonElement root, Func<string, Exception> bad,
        Func<string, string?>? refuseDType)
    {
        if (root.ValueKind != JsonValueKind.Object) throw bad($"header is a JSON {root.ValueKind}, expected an object of tensors");
        Dictionary<string, string>? metadata = null;
        var tensors = new List<SafetensorsEntry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in root.EnumerateObject())
            if (!seen.Add(p.Name)) throw bad($"header has the key '{p.Name}' twice");
        foreach (var p in root.EnumerateObject())
        {
            if (p.Name == "__metadata__") metadata = ParseMetadata(p.Value, bad);
            else tensors.Add(ParseTensor(p.Name, p.Value, bad, refuseDType));
        }
        return (metadata, tensors);
    }

    /// <summary>Offsets must lie in the data section and tile it exactly: no gap, no overlap, nothing after.</summary>
    public static void CheckTiling(IEnumerable<SafetensorsEntry> tensors, long dataLength, Func<string, Exception> bad)
    {
        var list = tensors.ToList();
        foreach (var t in list)
            if (t.End > dataLength)
                throw bad($"tensor '{t.Name}' data_offsets [{t.Begin}, {t.End}] run past the end of the {dataLength}-byte data section (truncated file?)");
        long at = 0;
        string? previous = null;
        foreach (var t in list.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin > at) throw bad($"gap: bytes [{at}, {t.Begin}) of the data section belong to no tensor (before '{t.Name}')");
            if (t.Begin < at) throw bad($"tensor '{t.Name}' data_offsets [{t.Begin}, {t.End}] overlap tensor '{previous}' (ending at {at})");
            at = t.End;
            previous = t.Name;
        }
        if (at != dataLength) throw bad($"the data section has {dataLength - at} bytes after the last tensor (ends at {at} of {dataLength})");
    }

    static Dictionary<string, string> ParseMetadata(JsonElement e, Func<string, Exception> bad)
    {
        if (e.ValueKind != JsonValueKind.Object) throw bad($"__metadata__ is a JSON {e.ValueKind}, expected an object of strings");
        var m = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String) throw bad($"__metadata__ '{p.Name}' is a JSON {p.Value.ValueKind}; safetensors metadata values are strings");
            if (!m.TryAdd(p.Name, p.Value.GetString()!)) throw bad($"__metadata__ has the key '{p.Name}' twice");
        }
        return m;
    }

    static SafetensorsEntry ParseTensor(string name, JsonElement e, Func<string, Exception> bad, Func<string, string?>? refuseDType)
    {
        if (e.ValueKind != JsonValueKind.Object) throw bad($"tensor '{name}' is a JSON {e.ValueKind}, expected {{dtype, shape, data_offsets}}");
        string? dtype = null;
        long[]? shape = null, offsets = null;
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype" when dtype is null && p.Value.ValueKind == JsonValueKind.String: dtype = p.Value.GetString(); break;
                case "shape" when shape is null: shape = Longs(p.Value, $"tensor '{name}' shape", bad); break;
                case "data_offsets" when offsets is null: offsets = Longs(p.Value, $"tensor '{name}' data_offsets", bad); break;
                default: throw bad($"tensor '{name}' has an unexpected or repeated entry '{p.Name}'");
            }
        }
        if (dtype is null || shape is null || offsets is null) throw bad($"tensor '{name}' lacks one of dtype, shape, data_offsets");
        if (refuseDType?.Invoke(dtype) is { } why) throw bad($"tensor '{name}' has dtype '{dtype}'; {why}");
        if (!DTypeSizes.TryGetValue(dtype, out int size)) throw bad($"tensor '{name}' has unknown dtype '{dtype}'");
        if (offsets.Length != 2 || offsets[0] > offsets[1])
            throw bad($"tensor '{name}' data_offsets {TditSchema.Shape(offsets)} are not [begin, end] with begin <= end");
        long bytes;
        try { bytes = checked(shape.Aggregate(1L, (a, b) => a * b) * size); }
        catch (OverflowException) { throw bad($"tensor '{name}' shape {TditSchema.Shape(shape)} overflows a 64-bit byte count"); }
        if (bytes != offsets[1] - offsets[0])
            throw bad($"tensor '{name}' is {dtype} {TditSchema.Shape(shape)} = {bytes} bytes but its data_offsets {TditSchema.Shape(offsets)} span {offsets[1] - offsets[0]}");
        return new SafetensorsEntry(name, dtype, shape, offsets[0], offsets[1]);
    }

    /// <summary>A JSON array of non-negative 64-bit integers.</summary>
    static long[] Longs(JsonElement e, string what, Func<string, Exception> bad)
    {
        if (e.ValueKind != JsonValueKind.Array) throw bad($"{what} is a JSON {e.ValueKind}, expected an array of non-negative integers");
        var r = new long[e.GetArrayLength()];
        int i = 0;
        foreach (var x in e.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out r[i]) || r[i] < 0)
                throw bad($"{what} has {x.GetRawText()}, expected a non-negative 64-bit integer");
            i++;
        }
        return r;
    }
}
