using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Format;

/// <summary>Options of <see cref="TditFile.Open"/>.</summary>
public sealed record TditReadOptions
{
    /// <summary>Hash the data section and compare with the stored checksum (one pass over the file).</summary>
    public bool VerifyChecksum { get; init; } = true;
}

/// <summary>
/// A validated, memory-mapped <c>.tdit</c> file. <see cref="Open"/> checks everything before
/// returning — header bounds, JSON shape, format name and version, dtypes, shapes against byte
/// spans (checked arithmetic), offsets tiling the data section, metadata, the tensor set against
/// the config's <see cref="ParameterSchema"/> (ternary weights in the packed shape of the file's
/// <c>ternary_layout</c>, a row of <see cref="TernaryLayouts"/>), the SHA-256 checksum, and every
/// ternary weight's bytes with its layout's <see cref="TernaryLayout.Validate"/> — and throws
/// <see cref="TditFormatException"/> naming the file and the fault. Tensor bytes are views of the
/// mapping, valid until <see cref="Dispose"/>; the file must not be modified while open (replacing it
/// by rename, as <see cref="TditWriter"/> does, is safe).
/// </summary>
public sealed unsafe class TditFile : IDisposable
{
    /// <summary>Largest header accepted (safetensors' own cap).</summary>
    public const long MaxHeaderBytes = SafetensorsHeader.MaxHeaderBytes;

    readonly MemoryMappedFile map;
    readonly MemoryMappedViewAccessor view;
    readonly Dictionary<string, TditTensorInfo> byName;
    byte* data;  // start of the data section; null once disposed

    public string Path { get; }
    /// <summary>The raw <c>__metadata__</c> strings (format, format_version, checksum included).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>The metadata, parsed.</summary>
    public TditMetadata Info { get; }
    public TerDiTConfig Config => Info.Config;
    /// <summary>The layout of the ternary weights (the row named by <c>ternary_layout</c>); null for a full-precision model.</summary>
    public TernaryLayout? TernaryLayout { get; }
    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<TditTensorInfo> Tensors { get; }
    public TditSizes Sizes { get; }

    TditFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* data, IReadOnlyDictionary<string, string> metadata,
        TditMetadata info, TernaryLayout? ternaryLayout, IReadOnlyList<TditTensorInfo> tensors, TditSizes sizes)
    {
        (Path, this.map, this.view, Metadata, Info, TernaryLayout, Tensors, Sizes) = (path, map, view, metadata, info, ternaryLayout, tensors, sizes);
        this.data = data;
        byName = tensors.ToDictionary(t => t.Name);
    }

    /// <summary>Opens and validates a file; see the class summary.</summary>
    /// <exception cref="TditFormatException">The file is not a valid packed model; the message says why.</exception>
    public static TditFile Open(string path, TditReadOptions? options = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException(".tdit files are little-endian; this machine is not");
        options ??= new();
        string where = System.IO.Path.GetFileName(path);
        TditFormatException Bad(string what) => new($"{where}: {what}");

        if (Directory.Exists(path)) throw Bad("is a directory, not a packed model file");
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = stream.Length;
        if (fileLength < 8)
        {
            stream.Dispose();
            throw Bad($"file is {fileLength} bytes, too short for the 8-byte header length (empty or truncated file)");
        }
        MemoryMappedFile map;
        try { map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false); }
        catch { stream.Dispose(); throw; }
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* basePtr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            acquired = true;
            basePtr += view.PointerOffset;

            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(basePtr, 8));
            if (n > MaxHeaderBytes) throw Bad($"header length {n} exceeds the {MaxHeaderBytes}-byte cap (not a .tdit file?)");
            if ((long)n > fileLength - 8) throw Bad($"header length {n} runs past the end of the {fileLength}-byte file (truncated file?)");
            long dataStart = 8 + (long)n, dataLength = fileLength - dataStart;

            var header = new ReadOnlySpan<byte>(basePtr + 8, (int)n);
            var (parsedMetadata, entries) = SafetensorsHeader.Parse(header, Bad,
                dtype => TditDTypes.TryParse(dtype, out _) ? null : "a .tdit file uses U8, F16 and F32 only");
            var metadata = parsedMetadata ?? throw Bad("header has no __metadata__ (a plain safetensors file, not a .tdit packed model?)");
            var decls = entries.Select(e => new Decl(e.Name, TditDTypes.TryParse(e.DType, out var t) ? t : throw Bad($"dtype '{e.DType}'") /* Parse refused every other dtype */, e.Shape, e.Begin, e.End)).ToList();

            if (!metadata.TryGetValue(TditKeys.Format, out var format) || format != TditKeys.FormatName)
                throw Bad($"not a TerDiT packed model: __metadata__ 'format' is {(format is null ? "missing" : $"'{format}'")}, expected '{TditKeys.FormatName}'");
            if (!metadata.TryGetValue(TditKeys.FormatVersion, out var version) || !TditKeys.SupportedVersions.Contains(version))
                throw Bad($"unsupported format_version {(version is null ? "(missing)" : $"'{version}'")}; this reader supports {string.Join(", ", TditKeys.SupportedVersions)}");

            SafetensorsHeader.CheckTiling(entries, dataLength, Bad);
            var info = TditMetadata.FromStrings(metadata, where);
            var ternaryLayout = info.TernaryLayout is null ? null : TernaryLayouts.Get(info.TernaryLayout, Bad);
            var kinds = TditSchema.Match(info.Config, info.TernaryLayout, decls.ToDictionary(d => d.Name, d => (d.DType, d.Shape)), Bad);
            var tensors = decls.OrderBy(d => d.Begin).Select(d => new TditTensorInfo(d.Name, d.DType, d.Shape, kinds[d.Name], d.Begin, d.End)).ToList();

            if (!metadata.TryGetValue(TditKeys.Checksum, out var checksum)) throw Bad("__metadata__ has no 'checksum' entry");
            if (!checksum.StartsWith(TditLayout.ChecksumPrefix, StringComparison.Ordinal) || checksum.Length != TditLayout.ChecksumLength)
                throw Bad($"checksum '{checksum}' is not '{TditLayout.ChecksumPrefix}' followed by 64 hex digits");
            if (options.VerifyChecksum)
            {
                string actual = TditLayout.ChecksumPrefix + Convert.ToHexStringLower(Sha256(basePtr + dataStart, dataLength));
                if (!string.Equals(actual, checksum, StringComparison.OrdinalIgnoreCase))
                    throw Bad($"checksum mismatch: the {dataLength}-byte data section hashes to {actual}, the header says {checksum} (corrupted file?)");
            }
            if (ternaryLayout is not null) ValidateTernary(info.Config, ternaryLayout, decls, basePtr + dataStart, Bad);
            return new TditFile(path, map, view, basePtr + dataStart, metadata, info, ternaryLayout, tensors, TditSizes.Of(info.Config, dataStart, tensors));
        }
        catch
        {
            if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Whether the file has a tensor of that name.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>The tensor's entry; <see cref="KeyNotFoundException"/> naming it when absent.</summary>
    public TditTensorInfo Tensor(string name) =>
        byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{System.IO.Path.GetFileName(Path)} has no tensor '{name}'");

    /// <summary>The tensor's bytes, a view of the mapped file valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        var t = Tensor(name);
        if (data == null) throw new ObjectDisposedException(nameof(TditFile));
        if (t.ByteLength > int.MaxValue) throw new NotSupportedException($"tensor '{name}' ({t.ByteLength} bytes) is larger than a span");
        return new ReadOnlySpan<byte>(data + t.Begin, (int)t.ByteLength);
    }

    /// <summary>An F32 tensor's values, a view of the mapped file (no copy); F16 and U8 tensors throw.</summary>
    public ReadOnlySpan<float> Floats(string name)
    {
        var t = Tensor(name);
        if (t.DType != TditDType.F32) throw new InvalidOperationException($"tensor '{name}' is {t.DType.Name()}, not F32; use ReadFloats to convert F16");
        return MemoryMarshal.Cast<byte, float>(Bytes(name));
    }

    /// <summary>A new array with an F32 tensor's values, or an F16 tensor's widened to float.</summary>
    public float[] ReadFloats(string name)
    {
        var t = Tensor(name);
        switch (t.DType)
        {
            case TditDType.F32: return Floats(name).ToArray();
            case TditDType.F16:
                var result = new float[t.Elements];
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(Bytes(name)), result);
                return result;
            default: throw new InvalidOperationException($"tensor '{name}' is {t.DType.Name()} (packed ternary), not a float tensor");
        }
    }

    public void Dispose()
    {
        if (data == null) return;
        data = null;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }

    sealed record Decl(string Name, TditDType DType, long[] Shape, long Begin, long End);

    /// <summary>Every ternary weight's bytes through its layout's validator (the tensor set already matches the schema).</summary>
    static void ValidateTernary(TerDiTConfig config, TernaryLayout layout, List<Decl> decls, byte* data, Func<string, TditFormatException> bad)
    {
        var byName = decls.ToDictionary(d => d.Name);
        foreach (var p in ParameterSchema.Enumerate(config))
        {
            if (p.Kind != ParameterKind.TernaryWeight) continue;
            var d = byName[p.Name];
            if (d.End - d.Begin > int.MaxValue) throw bad($"ternary weight '{p.Name}' ({d.End - d.Begin} bytes) is larger than this reader handles");
            var problem = layout.Validate(new ReadOnlySpan<byte>(data + d.Begin, (int)(d.End - d.Begin)), (int)p.Shape[0], (int)p.Shape[1]);
            if (problem is not null) throw bad($"ternary weight '{p.Name}' is not valid {layout.Name} data: {problem}");
        }
    }

    static byte[] Sha256(byte* p, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long done = 0; done < length;)
        {
            int n = (int)Math.Min(1 << 30, length - done);
            hash.AppendData(new ReadOnlySpan<byte>(p + done, n));
            done += n;
        }
        return hash.GetHashAndReset();
    }
}
