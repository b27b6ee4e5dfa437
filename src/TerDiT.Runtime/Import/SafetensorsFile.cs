using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using TerDiT.Runtime.Format;

namespace TerDiT.Runtime.Import;

/// <summary>
/// A safetensors file from outside (a diffusers VAE's <c>diffusion_pytorch_model.safetensors</c>, test
/// fixtures): 8-byte little-endian header length N, N bytes of JSON (<c>__metadata__</c> of strings and
/// one <c>{dtype, shape, data_offsets}</c> entry per tensor), then the data. Everything is validated
/// before <see cref="Read"/> returns — N within the cap and the file, then <see cref="SafetensorsHeader"/>
/// (the header, every tensor entry, offsets tiling the data section) — and every error is an
/// <see cref="ImportFormatException"/> naming the file. Tensor bytes are read in place.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    readonly ByteSource _file;
    readonly long _dataStart;

    public string Name => _file.Name;
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Tensors { get; }

    SafetensorsFile(ByteSource file, long dataStart, IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, SafetensorsEntry> tensors) =>
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
        if (n > SafetensorsHeader.MaxHeaderBytes) throw Bad($"header length {n} exceeds the {SafetensorsHeader.MaxHeaderBytes}-byte cap (not a safetensors file?)");
        if ((long)n > file.Length - 8) throw Bad($"header length {n} runs past the end of the {file.Length}-byte file (truncated file?)");
        long dataStart = 8 + (long)n, dataLength = file.Length - dataStart;
        var (metadata, entries) = SafetensorsHeader.Parse(file.Slice(8, (int)n), Bad);
        SafetensorsHeader.CheckTiling(entries, dataLength, Bad);
        var tensors = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        foreach (var t in entries) tensors.Add(t.Name, t);
        return new SafetensorsFile(file, dataStart, metadata ?? new Dictionary<string, string>(), tensors);
    }

    /// <summary>The tensor's entry; an <see cref="ImportFormatException"/> naming it when absent.</summary>
    public SafetensorsEntry Tensor(string name) =>
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
    /// Writes a safetensors file atomically (<see cref="AtomicFile"/>): the
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
            if (!SafetensorsHeader.DTypeSizes.TryGetValue(dtype, out int size)) throw new ArgumentException($"unknown dtype '{dtype}'");
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
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            stream.Write(length);
            stream.Write(header);
            for (int i = header.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var t in list) stream.Write(t.Data.Span);
        });
    }

    public void Dispose() => _file.Dispose();
}
