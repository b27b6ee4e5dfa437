using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.Unicode;
using TorchSharp;
using static TorchSharp.torch;
using TerDiT.Runtime;

namespace TerDiT.Training;

/// <summary>
/// The checkpoint container: a JSON header and raw tensors, sealed with a SHA-256 of everything
/// before it, so a truncated or altered file is refused rather than half-loaded.
/// <code>
/// 0            8 bytes   magic "TDITCKPT"
/// 8            4 bytes   format version (uint32 LE) = 1
/// 12           8 bytes   header length H (int64 LE)
/// 20           H bytes   header: UTF-8 JSON object; its "tensors" array lists
///                        {name, dtype, shape, offset, length}, offsets relative to the data start
/// 20+H         D bytes   tensor data, row-major, little-endian, in "tensors" order
/// 20+H+D       32 bytes  SHA-256 of bytes [0, 20+H+D)
/// </code>
/// Files are written to a temporary name beside the target and renamed into place.
/// </summary>
public static class CheckpointFile
{
    static readonly byte[] Magic = "TDITCKPT"u8.ToArray();
    const uint Version = 1;
    const int PrefixBytes = 20, HashBytes = 32;

    /// <summary>
    /// Writes <paramref name="header"/> (its "tensors" key is set here) and <paramref name="tensors"/>
    /// (any device; copied to the CPU) to <paramref name="path"/> atomically.
    /// </summary>
    public static void Write(string path, JsonObject header, IEnumerable<(string Name, Tensor Value)> tensors)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>();
        var entries = new JsonArray();
        long offset = 0;
        foreach (var (name, t) in list)
        {
            if (!names.Add(name)) throw new ArgumentException($"tensor name '{name}' appears twice");
            if (!DTypes.ContainsKey(t.dtype.ToString())) throw new ArgumentException($"tensor '{name}' has dtype {t.dtype}, which a checkpoint does not hold");
            long length = t.NumberOfElements * t.ElementSize;
            entries.Add(new JsonObject
            {
                ["name"] = name, ["dtype"] = t.dtype.ToString(), ["shape"] = new JsonArray(t.shape.Select(s => (JsonNode)s).ToArray()),
                ["offset"] = offset, ["length"] = length,
            });
            offset += length;
        }
        header = (JsonObject)header.DeepClone();
        header["tensors"] = entries;
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());

        AtomicFile.Write(path, file =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            void Put(ReadOnlySpan<byte> b) { file.Write(b); hash.AppendData(b); }
            Span<byte> prefix = stackalloc byte[PrefixBytes];
            Magic.CopyTo(prefix);
            BinaryPrimitives.WriteUInt32LittleEndian(prefix[8..], Version);
            BinaryPrimitives.WriteInt64LittleEndian(prefix[12..], headerBytes.Length);
            Put(prefix);
            Put(headerBytes);
            foreach (var (_, t) in list)
            {
                using var cpu = t.detach().cpu().contiguous();
                Put(cpu.bytes);
            }
            file.Write(hash.GetHashAndReset());
        });
    }

    /// <summary>
    /// The tensor dtypes a checkpoint may hold, by their header spelling, with bytes per element. Any
    /// other spelling (a number such as "-1" included) is refused before libtorch sees it.
    /// </summary>
    static readonly IReadOnlyDictionary<string, (ScalarType Type, int Size)> DTypes = new Dictionary<string, (ScalarType, int)>
    {
        ["Float32"] = (ScalarType.Float32, 4), ["Float64"] = (ScalarType.Float64, 8), ["Float16"] = (ScalarType.Float16, 2),
        ["BFloat16"] = (ScalarType.BFloat16, 2), ["Int64"] = (ScalarType.Int64, 8), ["Int32"] = (ScalarType.Int32, 4),
        ["Int16"] = (ScalarType.Int16, 2), ["Int8"] = (ScalarType.Int8, 1), ["Byte"] = (ScalarType.Byte, 1), ["Bool"] = (ScalarType.Bool, 1),
    };

    /// <summary>
    /// Reads a checkpoint: its header (without "tensors") and its tensors on the CPU, by name. Before any
    /// tensor is allocated, the file's checksum is verified, every tensor entry is checked (name, dtype from
    /// <see cref="DTypes"/>, non-negative shape whose byte size, computed with overflow checks, equals its
    /// length, and offsets that tile the data section in order: no gap, no overlap, nothing past its end),
    /// and then <paramref name="check"/> (if given) sees the header and the entries and may refuse them.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a checkpoint, another version, truncated, failing its checksum,
    /// a malformed tensor list, or refused by <paramref name="check"/>.</exception>
    public static (JsonObject Header, Dictionary<string, Tensor> Tensors) Read(string path,
        Action<JsonObject, IReadOnlyList<CheckpointTensorInfo>>? check = null)
    {
        if (Directory.Exists(path)) throw new InvalidDataException($"{path} is a directory, not a checkpoint file");
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint {path} not found", path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        long size = file.Length;
        var prefix = new byte[PrefixBytes];
        if (size < PrefixBytes + HashBytes)
            throw new InvalidDataException($"{path}: {size} bytes is too short for a TerDiT checkpoint (truncated?)");
        file.ReadExactly(prefix);
        if (!prefix.AsSpan(0, 8).SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a TerDiT checkpoint (magic 'TDITCKPT' missing)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(prefix.AsSpan(8));
        if (version != Version) throw new InvalidDataException($"{path}: checkpoint format version {version}, this build reads version {Version}");
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(prefix.AsSpan(12));
        if (headerLength <= 0 || headerLength > size - PrefixBytes - HashBytes)
            throw new InvalidDataException($"{path}: header length {headerLength} does not fit the file's {size} bytes (truncated?)");
        VerifyHash(file, path, size);

        file.Position = PrefixBytes;
        var headerBytes = new byte[headerLength];
        file.ReadExactly(headerBytes);
        if (!Utf8.IsValid(headerBytes)) throw new InvalidDataException($"{path}: checkpoint header is not valid UTF-8");
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes)!.AsObject(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
        {
            throw new InvalidDataException($"{path}: checkpoint header is not a JSON object ({e.Message})");
        }

        long dataStart = PrefixBytes + headerLength, dataLength = size - HashBytes - dataStart;
        List<CheckpointTensorInfo> entries;
        // JsonNode reads lazily: a repeated key (ArgumentException) or an escaped lone surrogate (InvalidOperationException) surfaces here.
        try { entries = ParseTensorList(header, dataLength, what => new InvalidDataException($"{path}: {what}")); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: checkpoint header is malformed ({e.Message})");
        }
        header.Remove("tensors");
        check?.Invoke(header, entries);

        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in entries)
            {
                var buffer = new byte[e.Length];
                file.Position = dataStart + e.Offset;
                file.ReadExactly(buffer);
                var t = torch.empty(e.Shape, e.DType);
                tensors.Add(e.Name, t);
                t.bytes = buffer;
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return (header, tensors);
    }

    /// <summary>The header's "tensors" array, validated against a data section of <paramref name="dataLength"/> bytes.</summary>
    static List<CheckpointTensorInfo> ParseTensorList(JsonObject header, long dataLength, Func<string, InvalidDataException> bad)
    {
        if (header["tensors"] is not JsonArray list) throw bad("header has no \"tensors\" array");
        var entries = new List<CheckpointTensorInfo>(list.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        long next = 0;
        foreach (var node in list)
        {
            if (node is not JsonObject e) throw bad($"tensor entry {entries.Count} is not a JSON object");
            string at = $"tensor entry {entries.Count}";
            foreach (var (key, _) in e)
                if (key is not ("name" or "dtype" or "shape" or "offset" or "length")) throw bad($"{at} has an unknown field '{key}'");
            string name = Get<string>(e, "name", at, bad);
            if (name.Length == 0 || !names.Add(name)) throw bad($"{at} has an empty or repeated name '{name}'");
            at = $"tensor '{name}'";
            string dtypeName = Get<string>(e, "dtype", at, bad);
            if (!DTypes.TryGetValue(dtypeName, out var dtype))
                throw bad($"{at} has dtype '{dtypeName}'; a checkpoint holds {string.Join(", ", DTypes.Keys)}");
            if (e["shape"] is not JsonArray shapeNode || shapeNode.Count > 8) throw bad($"{at} has no shape array of at most 8 dimensions");
            var shape = new long[shapeNode.Count];
            for (int i = 0; i < shape.Length; i++)
            {
                if (shapeNode[i] is not JsonValue v || !v.TryGetValue(out long d) || d < 0)
                    throw bad($"{at} has a shape that is not a list of non-negative integers");
                shape[i] = d;
            }
            long offset = Get<long>(e, "offset", at, bad), length = Get<long>(e, "length", at, bad);
            long bytes;
            try { bytes = checked(shape.Aggregate((long)dtype.Size, (a, b) => a * b)); }
            catch (OverflowException) { throw bad($"{at}: shape [{string.Join(", ", shape)}] overflows a 64-bit byte count"); }
            if (bytes != length) throw bad($"{at} of shape [{string.Join(", ", shape)}] {dtypeName} is {bytes} bytes, its entry says {length}");
            if (offset != next) throw bad($"{at} starts at data offset {offset}, expected {next} (tensors must follow each other without gap or overlap)");
            if (length > dataLength - offset) throw bad($"{at} runs past the end of the {dataLength}-byte data section (truncated?)");
            next = offset + length;
            entries.Add(new CheckpointTensorInfo(name, dtype.Type, shape, offset, length));
        }
        if (next != dataLength) throw bad($"the tensors cover {next} bytes of the {dataLength}-byte data section");
        return entries;
    }

    /// <summary>A required field of a JSON object as a string or a 64-bit integer.</summary>
    static T Get<T>(JsonObject o, string key, string at, Func<string, InvalidDataException> bad) =>
        o[key] is JsonValue v && v.TryGetValue(out T? value) && value is not null ? value
            : throw bad($"{at} has no {(typeof(T) == typeof(string) ? "string" : "integer")} field '{key}'");

    static void VerifyHash(FileStream file, string path, long size)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        file.Position = 0;
        for (long left = size - HashBytes; left > 0;)
        {
            int n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n <= 0) throw new InvalidDataException($"{path}: unexpected end of file");
            hash.AppendData(buffer, 0, n);
            left -= n;
        }
        var stored = new byte[HashBytes];
        file.ReadExactly(stored);
        if (!hash.GetHashAndReset().AsSpan().SequenceEqual(stored))
            throw new InvalidDataException($"{path}: checksum mismatch — the checkpoint is truncated or corrupt");
    }
}

/// <summary>One tensor of a checkpoint as its validated header declares it: <paramref name="Offset"/> and
/// <paramref name="Length"/> in bytes, relative to the data section.</summary>
public sealed record CheckpointTensorInfo(string Name, ScalarType DType, long[] Shape, long Offset, long Length);
