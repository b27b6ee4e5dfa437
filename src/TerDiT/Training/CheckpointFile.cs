using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

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

        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".{Environment.ProcessId}.tmp";
        try
        {
            using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
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
                file.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// Reads a checkpoint: its header (without "tensors") and its tensors on the CPU, by name.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a checkpoint, another version, truncated, or failing its checksum.</exception>
    public static (JsonObject Header, Dictionary<string, Tensor> Tensors) Read(string path)
    {
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
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes)!.AsObject(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
        {
            throw new InvalidDataException($"{path}: checkpoint header is not a JSON object ({e.Message})");
        }

        long dataStart = PrefixBytes + headerLength, dataLength = size - HashBytes - dataStart;
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var entry in header["tensors"]?.AsArray() ?? throw new InvalidDataException($"{path}: header lists no tensors"))
            {
                var e = entry!.AsObject();
                string name = (string)e["name"]!;
                var dtype = Enum.Parse<ScalarType>((string)e["dtype"]!);
                long[] shape = e["shape"]!.AsArray().Select(s => (long)s!).ToArray();
                long offset = (long)e["offset"]!, length = (long)e["length"]!;
                if (offset < 0 || length < 0 || offset + length > dataLength)
                    throw new InvalidDataException($"{path}: tensor '{name}' lies outside the data section");
                var t = torch.empty(shape, dtype);
                if (t.NumberOfElements * t.ElementSize != length)
                    throw new InvalidDataException($"{path}: tensor '{name}' of shape [{string.Join(", ", shape)}] {dtype} cannot hold {length} bytes");
                var buffer = new byte[length];
                file.Position = dataStart + offset;
                file.ReadExactly(buffer);
                t.bytes = buffer;
                tensors.Add(name, t);
            }
        }
        catch (Exception e)
        {
            foreach (var t in tensors.Values) t.Dispose();
            if (e is InvalidDataException) throw;
            throw new InvalidDataException($"{path}: malformed tensor list in the checkpoint header ({e.Message})", e);
        }
        header.Remove("tensors");
        return (header, tensors);
    }

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
