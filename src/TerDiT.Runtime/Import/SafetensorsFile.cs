using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;

namespace TerDiT.Runtime.Import;

/// <summary>A tensor of a <see cref="SafetensorsFile"/>: bytes [Begin, End) of the data section.</summary>
public sealed record SafetensorsTensor(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A safetensors file from outside (a diffusers VAE's <c>diffusion_pytorch_model.safetensors</c>, test
/// fixtures): 8-byte little-endian header length N, N bytes of JSON (<c>__metadata__</c> of strings and
/// one <c>{dtype, shape, data_offsets}</c> entry per tensor), then the data. Everything is validated
/// before <see cref="Read"/> returns — N within the cap and the file, UTF-8 JSON object, unique keys, known
/// dtypes, non-negative shapes whose byte counts (checked arithmetic) equal their offset spans, offsets
/// tiling the data section with no gap or overlap — and every error is an <see cref="ImportFormatException"/>
/// naming the file. Tensor bytes are read in place.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (safetensors' own cap).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    static readonly IReadOnlyDictionary<string, int> DTypeSizes = new Dictionary<string, int>
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    readonly ByteSource _file;
    readonly long _dataStart;

    public string Name => _file.Name;
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyDictionary<string, SafetensorsTensor> Tensors { get; }

    SafetensorsFile(ByteSource file, long dataStart, IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, SafetensorsTensor> tensors) =>
        (_file, _dataStart, Metadata, Tensors) = (file, dataStart, metadata, tensors);

    /// <summary>Maps and validates a file.</summary>
    /// <exception cref="ImportFormatException">The file is not valid safetensors.</exception>
    public static SafetensorsFile Open(string path)
    {
        var file = ByteSource.MapFile(path);
        try { return Read(file); }
        catch { file.Dispose(); throw; }
    }

    /// <summary>Validates a file's bytes; takes ownership of <paramref name="file"/>.</summary>
    /// <exception cref="ImportFormatException">The bytes are not valid safetensors.</exception>
    public static SafetensorsFile Read(ByteSource file)
    {
        ImportFormatException Bad(string what) => new($"{file.Name}: {what}");
        if (file.Length < 8) throw Bad($"file is {file.Length} bytes, too short for the 8-byte header length (empty or truncated file)");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file.Slice(0, 8));
        if (n > MaxHeaderBytes) throw Bad($"header length {n} exceeds the {MaxHeaderBytes}-byte cap (not a safetensors file?)");
        if ((long)n > file.Length - 8) throw Bad($"header length {n} runs past the end of the {file.Length}-byte file (truncated file?)");
        long dataStart = 8 + (long)n, dataLength = file.Length - dataStart;
        var header = file.Slice(8, (int)n);
        if (!Utf8.IsValid(header)) throw Bad("header is not valid UTF-8");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e) { throw Bad($"header is not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad($"header is a JSON {doc.RootElement.ValueKind}, expected an object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(p.Name)) throw Bad($"header has the key '{p.Name}' twice");
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object of strings");
                    foreach (var m in p.Value.EnumerateObject())
                        if (m.Value.ValueKind != JsonValueKind.String || !metadata.TryAdd(m.Name, m.Value.GetString()!))
                            throw Bad($"__metadata__ '{m.Name}' is repeated or not a string");
                }
                else tensors.Add(p.Name, ParseTensor(p.Name, p.Value, Bad));
            }
        }

        long at = 0;
        foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin != at) throw Bad(t.Begin > at ? $"gap: bytes [{at}, {t.Begin}) of the data section belong to no tensor" : $"tensor '{t.Name}' overlaps the one before it");
            at = t.End;
        }
        if (at != dataLength) throw Bad(at > dataLength ? $"tensors need {at} bytes of data but the file has {dataLength} (truncated file?)" : $"{dataLength - at} bytes after the last tensor");
        return new SafetensorsFile(file, dataStart, metadata, tensors);
    }

    static SafetensorsTensor ParseTensor(string name, JsonElement e, Func<string, ImportFormatException> bad)
    {
        if (e.ValueKind != JsonValueKind.Object) throw bad($"tensor '{name}' is not an object");
        string? dtype = null;
        long[]? shape = null, offsets = null;
        foreach (var p in e.EnumerateObject())
            switch (p.Name)
            {
                case "dtype" when dtype is null && p.Value.ValueKind == JsonValueKind.String: dtype = p.Value.GetString(); break;
                case "shape" when shape is null: shape = Longs(p.Value, $"tensor '{name}' shape", bad); break;
                case "data_offsets" when offsets is null: offsets = Longs(p.Value, $"tensor '{name}' data_offsets", bad); break;
                default: throw bad($"tensor '{name}' has an unexpected or repeated entry '{p.Name}'");
            }
        if (dtype is null || shape is null || offsets is null) throw bad($"tensor '{name}' lacks one of dtype, shape, data_offsets");
        if (!DTypeSizes.TryGetValue(dtype, out int size)) throw bad($"tensor '{name}' has unknown dtype '{dtype}'");
        if (offsets.Length != 2 || offsets[0] > offsets[1]) throw bad($"tensor '{name}' data_offsets are not [begin, end] with begin <= end");
        long bytes;
        try { bytes = checked(shape.Aggregate(1L, (a, b) => a * b) * size); }
        catch (OverflowException) { throw bad($"tensor '{name}' shape overflows a 64-bit byte count"); }
        if (bytes != offsets[1] - offsets[0]) throw bad($"tensor '{name}' is {dtype} [{string.Join(", ", shape)}] = {bytes} bytes but its data_offsets span {offsets[1] - offsets[0]}");
        return new SafetensorsTensor(name, dtype, shape, offsets[0], offsets[1]);
    }

    static long[] Longs(JsonElement e, string what, Func<string, ImportFormatException> bad)
    {
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() > 64) throw bad($"{what} is not a short array of non-negative integers");
        return e.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out long v) && v >= 0 ? v
            : throw bad($"{what} has {x.GetRawText()}, expected a non-negative 64-bit integer")).ToArray();
    }

    /// <summary>The tensor's entry; an <see cref="ImportFormatException"/> naming it when absent.</summary>
    public SafetensorsTensor Tensor(string name) =>
        Tensors.TryGetValue(name, out var t) ? t : throw new ImportFormatException($"{Name}: no tensor '{name}'");

    /// <summary>The tensor's bytes, read in place (valid until <see cref="Dispose"/>).</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        var t = Tensor(name);
        if (t.End - t.Begin > int.MaxValue) throw new ImportFormatException($"{Name}: tensor '{name}' is larger than 2 GB");
        return _file.Slice(_dataStart + t.Begin, (int)(t.End - t.Begin));
    }

    /// <summary>A floating-point tensor's values as float32 (F32, F16, BF16; F64 rounded).</summary>
    public float[] ReadFloats(string name)
    {
        var t = Tensor(name);
        var bytes = Bytes(name);
        var result = new float[t.Elements];
        switch (t.DType)
        {
            case "F32": MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result); break;
            case "F16": TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), result); break;
            case "BF16":
                var u = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = BitConverter.Int32BitsToSingle(u[i] << 16);
                break;
            case "F64":
                var d = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = (float)d[i];
                break;
            default: throw new ImportFormatException($"{Name}: tensor '{name}' is {t.DType}, not a floating-point tensor");
        }
        return result;
    }

    /// <summary>An integer tensor's values (I64, I32).</summary>
    public long[] ReadIntegers(string name)
    {
        var t = Tensor(name);
        return t.DType switch
        {
            "I64" => MemoryMarshal.Cast<byte, long>(Bytes(name)).ToArray(),
            "I32" => MemoryMarshal.Cast<byte, int>(Bytes(name)).ToArray().Select(v => (long)v).ToArray(),
            _ => throw new ImportFormatException($"{Name}: tensor '{name}' is {t.DType}, not I64 or I32"),
        };
    }

    /// <summary>
    /// Writes a safetensors file atomically (temp file next to <paramref name="path"/>, then rename): the
    /// header (<c>__metadata__</c>, then the tensors in the order given, offsets back to back), padded with
    /// spaces to a multiple of 8 bytes, then each tensor's little-endian bytes.
    /// </summary>
    /// <param name="tensors">(name, dtype name such as "F32", shape, bytes); the byte count must match.</param>
    public static void Write(string path, IReadOnlyDictionary<string, string> metadata,
        IEnumerable<(string Name, string DType, long[] Shape, ReadOnlyMemory<byte> Data)> tensors)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian; this machine is not");
        var list = tensors.ToList();
        var json = new JsonObject();
        var meta = new JsonObject();
        foreach (var (k, v) in metadata) meta[k] = v;
        json["__metadata__"] = meta;
        long offset = 0;
        foreach (var (name, dtype, shape, data) in list)
        {
            if (!DTypeSizes.TryGetValue(dtype, out int size)) throw new ArgumentException($"unknown dtype '{dtype}'");
            long bytes = checked(shape.Aggregate(1L, (a, b) => a * b) * size);
            if (bytes != data.Length) throw new ArgumentException($"tensor '{name}' is {dtype} [{string.Join(", ", shape)}] = {bytes} bytes, got {data.Length}");
            json[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var header = Encoding.UTF8.GetBytes(json.ToJsonString());
        int padded = (header.Length + 7) / 8 * 8;
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
                stream.Write(length);
                stream.Write(header);
                for (int i = header.Length; i < padded; i++) stream.WriteByte((byte)' ');
                foreach (var t in list) stream.Write(t.Data.Span);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally { File.Delete(temp); }
    }

    public void Dispose() => _file.Dispose();
}
